import Broker
import EventLoop
import Foundation
import Logging

/// The admin listener: libmicrohttpd's threads serving `AdminAPI` on `[admin]`'s address.
public final class AdminServer: @unchecked Sendable {
    public struct Error: Swift.Error, CustomStringConvertible {
        public let description: String
    }

    public let configuration: AdminConfiguration
    private let api: AdminAPI
    private let server: MHDServer
    private let logger: Logger

    /// - Parameter reload: runs the reload SIGHUP runs (the executable's, serialized with
    ///   SIGHUP) for `POST /api/v5/reload`, on an HTTP thread; nil answers that route 503.
    public init(configuration: AdminConfiguration, broker: Broker, logger: Logger,
                reload: (@Sendable () -> ReloadReport)? = nil) {
        self.configuration = configuration
        self.logger = logger
        let api = AdminAPI(broker: broker, configuration: configuration, logger: logger, reload: reload)
        self.api = api
        server = MHDServer(handler: { api.handle($0) }, log: { [logger] line in logger.warning("admin: \(line)") })
    }

    /// Binds and starts serving; returns the bound port. Fails when the port is taken or the
    /// TLS files do not load.
    @discardableResult
    public func start() throws -> Int {
        var pem: (certificate: String, key: String)?
        if let cert = configuration.certificateFile, let key = configuration.privateKeyFile {
            guard MHDServer.supportsTLS else { throw Error(description: "admin: this libmicrohttpd was built without TLS") }
            guard let c = try? String(contentsOfFile: cert, encoding: .utf8) else { throw Error(description: "admin: cannot read certfile \(cert)") }
            guard let k = try? String(contentsOfFile: key, encoding: .utf8) else { throw Error(description: "admin: cannot read keyfile \(key)") }
            pem = (c, k)
        }
        let (fd, port) = try Socket.listen(host: configuration.bind, port: configuration.port, backlog: 128)
        do {
            try server.start(listenFD: fd, threads: configuration.threads, connectionLimit: configuration.connectionLimit, tlsPEM: pem)
        } catch {
            Socket.close(fd)
            throw Error(description: "admin: \(error)")
        }
        let scheme = pem == nil ? "http" : "https"
        if pem == nil, !["127.0.0.1", "::1", "localhost"].contains(configuration.bind) {
            logger.warning("admin: \(configuration.bind):\(port) is plain HTTP beyond loopback: API keys and tokens cross the network in clear text (set certfile and keyfile in [admin])")
        }
        let auth = configuration.apiKeys.isEmpty && configuration.tokens.isEmpty
            ? "no API key or token is configured, so only the public routes answer"
            : "\(configuration.apiKeys.count) API key(s), \(configuration.tokens.count) token(s)"
        logger.info("admin listener on \(scheme)://\(configuration.bind):\(port) (/metrics\(configuration.metricsAuth ? " with credentials" : " open"), /api/v5; \(auth))")
        return port
    }

    public func stop() {
        server.stop()
    }

    /// Answers one request without the network (tests).
    public func handle(_ request: HTTPRequest) -> HTTPResponse { api.handle(request) }
}
