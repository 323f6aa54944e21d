import Admin
import ArgumentParser
import Bridges
import Broker
import Cluster
import CSystemShims
import EventLoop
import Foundation
import Logging

@main
struct Turnpike: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "turnpike",
        abstract: "An MQTT 3.1.1/5.0 broker for connected-car fleets.",
        version: Broker.version,
        subcommands: [Serve.self, Passwd.self, Rules.self, StorageCommand.self],
        defaultSubcommand: Serve.self)
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the broker (the default command).")

    @Option(name: .long, help: "Configuration file (TOML). Default: ./turnpike.toml when present, else the embedded defaults.")
    var config: String?

    @Option(name: .long, help: "Port for plain MQTT (0 picks a free one). Default 1883.")
    var port: Int?

    @Option(name: .long, help: "Address to listen on. Default 0.0.0.0.")
    var bind: String?

    @Option(name: .long, help: "Reactor threads. Default: one per core.")
    var threads: Int?

    @Option(name: .long, help: "Directory for persistent data. Default ./data.")
    var data: String?

    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical. Default info.")
    var logLevel: String?

    /// The embedded default serves TLS on 8883 with the development certificates from
    /// `certs/make-dev-certs.sh` (`make run` creates them) when they are there.
    static func addDevelopmentTLSListener(to cfg: inout BrokerConfiguration) {
        let fm = FileManager.default
        guard fm.fileExists(atPath: "certs/server.crt"), fm.fileExists(atPath: "certs/server.key") else {
            FileHandle.standardError.write(Data("turnpike: no TLS on 8883: certs/server.crt and certs/server.key are missing (certs/make-dev-certs.sh makes development ones)\n".utf8))
            return
        }
        var tls = TLSConfiguration()
        tls.certificateChainFile = "certs/server.crt"
        tls.privateKeyFile = "certs/server.key"
        if fm.fileExists(atPath: "certs/ca.crt") { tls.caFile = "certs/ca.crt" }
        cfg.listeners.append(BrokerConfiguration.ListenerConfiguration(bind: "0.0.0.0", port: 8883, tls: tls))
    }

    /// 24 random letters and digits.
    static func randomSecret() -> String {
        let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var g = SystemRandomNumberGenerator()
        return String((0..<24).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &g)] })
    }

    func validate() throws {
        if let p = port, !(0...65535).contains(p) { throw ValidationError("--port must be 0...65535") }
        if let t = threads, t < 1 || t > 256 { throw ValidationError("--threads must be 1...256") }
        if let l = logLevel, !LogLevelName.isValid(l) {
            throw ValidationError("--log-level must be one of \(LogLevelName.all.joined(separator: ", "))")
        }
    }

    /// What `turnpike.toml` and the command line say, read at start and again on SIGHUP.
    struct Loaded {
        var cfg: BrokerConfiguration
        var fileLevel: String?
        var bridges: [Bridges.Definition]
        var bridgeFingerprints: [String: String]
        var cluster: ClusterSettings?
        /// The admin listener (and the development key the embedded default makes at start).
        var admin: AdminConfiguration?
        var developmentKey: AdminConfiguration.APIKey?
        /// `[rules] dir` was given (then the directory must exist).
        var explicitRules: Bool
    }

    /// A configuration that cannot be used: the message names file, line and column.
    struct ConfigProblem: Error, CustomStringConvertible { var description: String }

    func loadConfiguration() throws(ConfigProblem) -> Loaded {
        var cfg = BrokerConfiguration()
        cfg.threads = EventLoopGroup.coreCount
        var fileLevel: String?
        let path = config ?? (FileManager.default.fileExists(atPath: "turnpike.toml") ? "turnpike.toml" : nil)
        ConfigFile.bridges = []
        ConfigFile.bridgeFingerprints = [:]
        ConfigFile.cluster = nil
        ConfigFile.admin = nil
        ConfigFile.explicitRulesDirectory = false
        ConfigFile.logFormat = "text"
        if let path {
            do {
                fileLevel = try ConfigFile.load(path: path, into: &cfg)
            } catch {
                throw ConfigProblem(description: "\(error)")
            }
        }
        if path == nil { Self.addDevelopmentTLSListener(to: &cfg) }
        // The embedded default has an admin listener on loopback with a key made now (logged
        // below); a configuration file has one only with an [admin] table.
        var developmentKey: AdminConfiguration.APIKey?
        var adminConfiguration = path == nil ? AdminConfiguration() : ConfigFile.admin
        if path == nil {
            let key = AdminConfiguration.APIKey(key: "admin", secret: Self.randomSecret())
            adminConfiguration?.apiKeys = [key]
            developmentKey = key
        }
        // --port and --bind set the first plain listener.
        if let i = cfg.listeners.firstIndex(where: { $0.tls == nil }) {
            if let port { cfg.listeners[i].port = port }
            if let bind { cfg.listeners[i].bind = bind }
        } else if port != nil || bind != nil {
            throw ConfigProblem(description: "--port/--bind need a plain (non-TLS) listener in the configuration")
        }
        if let threads { cfg.threads = threads }
        if let data { cfg.dataDirectory = data }
        // Without [rules] dir, rules/ is next to the configuration file (or in the working
        // directory for the embedded default): a config file elsewhere never picks up ./rules.
        if let path, !ConfigFile.explicitRulesDirectory {
            let dir = (path as NSString).deletingLastPathComponent
            cfg.rules.directory = dir.isEmpty ? "rules" : dir + "/rules"
        }
        return Loaded(cfg: cfg, fileLevel: fileLevel, bridges: ConfigFile.bridges, bridgeFingerprints: ConfigFile.bridgeFingerprints,
                      cluster: ConfigFile.cluster, admin: adminConfiguration, developmentKey: developmentKey,
                      explicitRules: ConfigFile.explicitRulesDirectory)
    }

    func run() throws {
        let loaded: Loaded
        do {
            loaded = try loadConfiguration()
        } catch {
            FileHandle.standardError.write(Data("turnpike: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let cfg = loaded.cfg
        let level = Logger.Level(rawValue: logLevel ?? loaded.fileLevel ?? "info") ?? .info
        let json = ConfigFile.logFormat == "json"
        LoggingSystem.bootstrap { label in
            if json {
                var h = JSONLogHandler(label: label)
                h.logLevel = level
                return h
            }
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "turnpike")

        // Signals are blocked before any loop thread exists (threads inherit the mask) and taken
        // here with sigwait, so no handler ever runs on a loop thread.
        cshim_block_signals()
        // A bad rule file stops the start with file:line:col; on SIGHUP it keeps the old rules.
        let rulesPath = cfg.rules.directory
        let mustExist = loaded.explicitRules
        let rules: RuleSet
        do {
            rules = RuleSet(rules: try RuleFiles.load(path: rulesPath, bridges: Set(loaded.bridges.map(\.id)), mustExist: mustExist))
        } catch {
            FileHandle.standardError.write(Data("turnpike: rules: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let broker: Broker
        do {
            broker = try Broker(configuration: cfg, logger: logger)
            broker.installBridges(try Bridges.start(loaded.bridges, broker: broker, loops: cfg.threads, logger: logger))
            if let c = loaded.cluster {
                let node = try ClusterNode(settings: c, broker: broker, loops: cfg.threads, logger: logger)
                try node.start(initialInterest: broker.attachCluster(node))
            }
            try broker.start()
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(1)
        }
        broker.replaceRules(rules)
        let reloader = Reloader(serve: self, broker: broker, logger: logger, rulesPath: rulesPath, mustExist: mustExist,
                                fingerprints: loaded.bridgeFingerprints)
        var admin: AdminServer?
        if let adminConfiguration = loaded.admin {
            let server = AdminServer(configuration: adminConfiguration, broker: broker, logger: logger,
                                     reload: { reloader.reload(trigger: "POST /api/v5/reload") })
            do {
                try server.start()
                admin = server
            } catch {
                logger.critical("cannot start: \(error)")
                broker.shutdown()
                throw ExitCode(1)
            }
            if let k = loaded.developmentKey {
                logger.notice("admin: development API key '\(k.key)', secret '\(k.secret)' (made at start; set [admin] api_key and api_secret in turnpike.toml to choose your own), e.g. curl -u \(k.key):\(k.secret) http://127.0.0.1:\(adminConfiguration.port)/api/v5/stats")
            }
        }
        while true {
            let sig = cshim_wait_signal()
            if sig == SIGHUP {
                _ = reloader.reload(trigger: "SIGHUP")
                continue
            }
            logger.info("signal \(sig) received")
            break
        }
        admin?.stop()
        broker.shutdown()
    }
}
