import CMicroHTTPD
#if canImport(Glibc)
import Glibc
#endif

/// Owns one libmicrohttpd daemon: its internal threads accept, parse HTTP and call `handler`
/// with each complete request (body included). Every libmicrohttpd type stays in this file.
///
/// Threads: `handler` runs on the daemon's threads (`threads` of them), never on a reactor loop.
final class MHDServer: @unchecked Sendable {
    typealias Handler = @Sendable (HTTPRequest) -> HTTPResponse

    struct StartError: Error, CustomStringConvertible {
        let description: String
    }

    /// Largest request body accepted; a larger one is answered 413 and the connection closed.
    static let maxBodyBytes = 1 << 20

    private let handler: Handler
    private let log: @Sendable (String) -> Void
    private var daemon: OpaquePointer?
    /// PEM text handed to the library, alive as long as the daemon.
    private var pemCopies: [UnsafeMutablePointer<CChar>] = []
    /// Where the daemon's log lines go (shim.h), alive as long as the daemon.
    private let logger = UnsafeMutablePointer<cmhd_logger>.allocate(capacity: 1)

    init(handler: @escaping Handler, log: @escaping @Sendable (String) -> Void) {
        self.handler = handler
        self.log = log
    }

    /// Whether this libmicrohttpd was built with TLS (Debian's is, with GnuTLS).
    static var supportsTLS: Bool { MHD_is_feature_supported(.FEATURE_TLS) == .YES }

    /// Starts serving on an already listening socket (`Socket.listen`), which the daemon then owns.
    func start(listenFD: Int32, threads: Int, connectionLimit: Int, tlsPEM: (certificate: String, key: String)?) throws {
        var flags = UInt32(MHD_USE_INTERNAL_POLLING_THREAD.rawValue) | UInt32(MHD_USE_EPOLL.rawValue)
            | UInt32(MHD_USE_ERROR_LOG.rawValue)
        if tlsPEM != nil { flags |= UInt32(MHD_USE_TLS.rawValue) }
        func item(_ o: MHD_OPTION, _ value: Int = 0, _ pointer: UnsafeMutableRawPointer? = nil) -> MHD_OptionItem {
            MHD_OptionItem(option: o, value: value, ptr_value: pointer)
        }
        let me = Unmanaged.passUnretained(self).toOpaque()
        var options = [
            item(.LISTEN_SOCKET, Int(listenFD)),
            item(.THREAD_POOL_SIZE, max(1, threads)),
            item(.CONNECTION_LIMIT, max(1, connectionLimit)),
            item(.CONNECTION_TIMEOUT, 30),
            // Two-argument options: the function goes in `value`, its argument in `ptr_value`.
            item(.UNESCAPE_CALLBACK, unsafeBitCast(keepEscapes, to: Int.self)),
            item(.NOTIFY_COMPLETED, unsafeBitCast(requestCompleted, to: Int.self)),
        ]
        if let tlsPEM {
            let key = strdup(tlsPEM.key)!, cert = strdup(tlsPEM.certificate)!
            pemCopies = [key, cert]
            options.append(item(.HTTPS_MEM_KEY, 0, UnsafeMutableRawPointer(key)))
            options.append(item(.HTTPS_MEM_CERT, 0, UnsafeMutableRawPointer(cert)))
        }
        options.append(item(.END))
        logger.pointee = cmhd_logger(fn: daemonLog, cls: me)
        daemon = options.withUnsafeMutableBufferPointer { cmhd_start(flags, accessHandler, me, $0.baseAddress, logger) }
        guard daemon != nil else {
            for p in pemCopies { free(p) }
            pemCopies = []
            throw StartError(description: "libmicrohttpd refused to start (see the log line before this one)")
        }
    }

    /// Stops the daemon's threads and closes its sockets (the listening one too).
    func stop() {
        guard let d = daemon else { return }
        daemon = nil
        MHD_stop_daemon(d)
        for p in pemCopies { free(p) }
        pemCopies = []
    }

    deinit {
        stop()
        logger.deallocate()
    }

    fileprivate func logLine(_ s: String) { log(s) }

    fileprivate func respond(_ request: HTTPRequest) -> HTTPResponse { handler(request) }
}

/// A request's body, collected over the calls libmicrohttpd makes while it arrives.
private final class RequestState {
    var body: [UInt8] = []
    var tooLarge = false
}

/// Query arguments collected by `MHD_get_connection_values`.
private final class QueryCollector {
    var pairs: [(name: String, value: String?)] = []
}

/// libmicrohttpd would percent-decode the path before the router sees it, turning a client id
/// `a%2Fb` into two path segments: leave every escape in place (RequestTarget decodes per segment).
private let keepEscapes: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafeMutablePointer<CChar>?) -> Int = { _, _, s in
    s.map { strlen($0) } ?? 0
}

private let requestCompleted: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?, MHD_RequestTerminationCode) -> Void = { _, _, state, _ in
    guard let state, let p = state.pointee else { return }
    Unmanaged<RequestState>.fromOpaque(p).release()
    state.pointee = nil
}

private let daemonLog: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?) -> Void = { cls, line in
    guard let cls, let line else { return }
    Unmanaged<MHDServer>.fromOpaque(cls).takeUnretainedValue().logLine(String(cString: line).trimmingTrailingNewlines())
}

private let collectArgument: @convention(c) (UnsafeMutableRawPointer?, MHD_ValueKind, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> MHD_Result = { cls, _, key, value in
    guard let cls, let key else { return .YES }
    let c = Unmanaged<QueryCollector>.fromOpaque(cls).takeUnretainedValue()
    c.pairs.append((String(cString: key), value.map { String(cString: $0) }))
    return .YES
}

/// Called first with no body (a request context is made), then with each part of the body,
/// then once more with none left: only then is the request handled and answered.
///
/// Keep-alive depends on that order: a response queued in the first call, before libmicrohttpd
/// knows the request is complete, makes 0.9.75 answer `Connection: close` and close, even for
/// a GET without a body (checked with a C program answering in the first call: every response
/// closed; answering in the last call: the connection is reused, GET and POST alike).
/// HTTP/1.0 clients that do not ask for keep-alive are closed, as they should be.
private let accessHandler: MHD_AccessHandlerCallback = { cls, connection, url, method, _, upload, uploadSize, stateSlot in
    guard let cls, let connection, let stateSlot, let uploadSize else { return .NO }
    let server = Unmanaged<MHDServer>.fromOpaque(cls).takeUnretainedValue()
    guard let p = stateSlot.pointee else {
        stateSlot.pointee = Unmanaged.passRetained(RequestState()).toOpaque()
        return .YES
    }
    let state = Unmanaged<RequestState>.fromOpaque(p).takeUnretainedValue()
    if uploadSize.pointee > 0 {
        let n = uploadSize.pointee
        if state.body.count + n > MHDServer.maxBodyBytes {
            state.tooLarge = true
        } else if let upload {
            upload.withMemoryRebound(to: UInt8.self, capacity: n) { state.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: n)) }
        }
        uploadSize.pointee = 0
        return .YES
    }
    let response: HTTPResponse
    if state.tooLarge {
        response = .text(413, #"{"code":"PAYLOAD_TOO_LARGE","message":"request bodies are limited to 1 MiB"}"#, contentType: "application/json")
    } else {
        let query = QueryCollector()
        _ = MHD_get_connection_values(connection, .GET_ARGUMENT_KIND, collectArgument, Unmanaged.passUnretained(query).toOpaque())
        let authorization = MHD_lookup_connection_value(connection, .HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION).map { String(cString: $0) }
        let request = HTTPRequest(method: method.map { String(cString: $0) } ?? "GET", rawPath: url.map { String(cString: $0) } ?? "/",
                                  rawQuery: query.pairs, authorization: authorization, body: state.body)
        response = server.respond(request)
    }
    let r = response.body.withUnsafeBytes { b in
        MHD_create_response_from_buffer(b.count, UnsafeMutableRawPointer(mutating: b.baseAddress), .RESPMEM_MUST_COPY)
    }
    guard let r else { return .NO }
    if !response.contentType.isEmpty { _ = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, response.contentType) }
    for (name, value) in response.headers { _ = MHD_add_response_header(r, name, value) }
    let queued = MHD_queue_response(connection, UInt32(response.status), r)
    MHD_destroy_response(r)
    return queued
}

extension String {
    fileprivate func trimmingTrailingNewlines() -> String {
        var s = Substring(self)
        while s.last == "\n" || s.last == "\r" { s = s.dropLast() }
        return String(s)
    }
}
