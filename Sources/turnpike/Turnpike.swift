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
        var bridgeIds = Set(loaded.bridges.map(\.id))
        var fingerprints = loaded.bridgeFingerprints
        let mustExist = loaded.explicitRules
        let rules: RuleSet
        do {
            rules = RuleSet(rules: try RuleFiles.load(path: rulesPath, bridges: bridgeIds, mustExist: mustExist))
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
        var admin: AdminServer?
        if let adminConfiguration = loaded.admin {
            let server = AdminServer(configuration: adminConfiguration, broker: broker, logger: logger)
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
                logger.info("SIGHUP: reloading the configuration, TLS certificates and rules")
                var removed: [String] = []
                if let fresh = reload(broker, logger: logger) {
                    removed = reloadBridges(broker, fresh, running: &fingerprints, rulesPath: rulesPath, mustExist: mustExist, logger: logger)
                    bridgeIds = Set(fingerprints.keys)
                }
                broker.reloadTLS()
                do {
                    broker.replaceRules(RuleSet(rules: try RuleFiles.load(path: rulesPath, bridges: bridgeIds, mustExist: mustExist)))
                } catch {
                    logger.error("rules not reloaded, the previous rules stay active:\n\(error)")
                }
                // Bridges the configuration dropped go once no rule names them any more.
                if !removed.isEmpty { removeBridges(broker, removed, logger: logger) }
                continue
            }
            logger.info("signal \(sig) received")
            break
        }
        admin?.stop()
        broker.shutdown()
    }

    /// SIGHUP: the configuration file again (with its password and ACL files). A file that does
    /// not load changes nothing: the running configuration stays, and the error (file, line,
    /// column) is logged.
    private func reload(_ broker: Broker, logger: Logger) -> Loaded? {
        let fresh: Loaded
        do {
            fresh = try loadConfiguration()
        } catch {
            logger.error("configuration not reloaded, the running configuration stays: \(error)")
            return nil
        }
        let later = broker.applySettings(fresh.cfg)
        logger.info("configuration reloaded: [limits], [auth] (password and ACL files) and [bans] applied")
        if !later.isEmpty {
            logger.warning("configuration reload: changes to \(later.joined(separator: ", ")) take effect at the next restart")
        }
        return fresh
    }

    /// SIGHUP, bridges: a new table starts a bridge, a removed one stops (a disk buffer's records
    /// stay in the store for when it comes back), a changed one is replaced: the loops switch to
    /// the new bridge, then the old one stops taking requests, waits for those in flight (up to
    /// 5 s) and hands every record it still holds to the new one. Nothing changes when the rule
    /// files would not load with the new set of bridges, or a new bridge does not start.
    /// Returns the ids of the bridges to stop once the new rules are in place.
    private func reloadBridges(_ broker: Broker, _ fresh: Loaded, running: inout [String: String], rulesPath: String,
                               mustExist: Bool, logger: Logger) -> [String] {
        let wanted = fresh.bridgeFingerprints
        guard wanted != running else { return [] }
        do {
            _ = try RuleFiles.load(path: rulesPath, bridges: Set(wanted.keys), mustExist: mustExist)
        } catch {
            logger.error("bridges not reloaded: the rule files do not load with the new bridges, the running bridges stay:\n\(error)")
            return []
        }
        let current = broker.bridges
        var started: [String: any BridgeSink] = [:]
        for d in fresh.bridges where running[d.id] != wanted[d.id] {
            do {
                started[d.id] = try Bridges.start(d, broker: broker, loops: fresh.cfg.threads, logger: logger)
            } catch {
                logger.error("bridges not reloaded: \(d.id) does not start (\(error)); the running bridges stay")
                for s in started.values { s.stop() }
                return []
            }
        }
        // Removed bridges stay reachable until the rules that name them are replaced.
        var next = started
        for (id, s) in current where started[id] == nil { next[id] = s }
        let switched = DispatchSemaphore(value: 0)
        broker.replaceBridges(Array(next.values)) { switched.signal() }
        switched.wait()
        var replaced: [String] = []
        for (id, old) in current.sorted(by: { $0.key < $1.key }) {
            guard let new = started[id] else { continue }
            new.restore(old.drain(timeoutMs: 5000), from: "the bridge it replaces")
            replaced.append(id)
        }
        let added = started.keys.filter { current[$0] == nil }.sorted()
        let removed = current.keys.filter { wanted[$0] == nil }.sorted()
        func list(_ ids: [String]) -> String { ids.isEmpty ? "none" : ids.joined(separator: ", ") }
        logger.info("bridges reloaded: \(list(added)) started, \(list(replaced)) replaced, \(list(removed)) to stop")
        running = wanted
        return removed
    }

    private func removeBridges(_ broker: Broker, _ ids: [String], logger: Logger) {
        let current = broker.bridges
        let switched = DispatchSemaphore(value: 0)
        broker.replaceBridges(current.filter { !ids.contains($0.key) }.map(\.value)) { switched.signal() }
        switched.wait()
        for id in ids {
            current[id]?.stop()
            logger.info("bridge \(id) stopped: the configuration no longer has it")
        }
    }
}
