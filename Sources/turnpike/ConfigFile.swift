import Broker
import EventLoop
import Foundation
import TOMLKit

/// Reads `turnpike.toml`. Every key is checked: an unknown key or a value of the wrong type is
/// an error naming the file and the key, so a typo never silently falls back to a default.
struct ConfigFile {
    struct Error: Swift.Error, CustomStringConvertible {
        let description: String
    }

    /// The documented keys, by table, and how each applies to the configuration.
    private static let server: [String: (inout BrokerConfiguration, any TOMLValueConvertible) -> Bool] = [
        "bind": { c, v in guard let s = v.string else { return false }; c.listeners[0].bind = s; return true },
        "port": { c, v in guard let i = v.int, (0...65535).contains(i) else { return false }; c.listeners[0].port = i; return true },
        "threads": { c, v in guard let i = v.int, i >= 1, i <= 256 else { return false }; c.threads = i; return true },
        "sys_interval": { c, v in guard let i = v.int, i >= 0 else { return false }; c.sysInterval = i; return true },
        "data_dir": { c, v in guard let s = v.string else { return false }; c.dataDirectory = s; return true },
        "log_level": { _, v in v.string.map { LogLevelName.isValid($0) } ?? false },
        "log_format": { _, v in v.string == "text" || v.string == "json" },
    ]

    private static func intLimit(_ range: ClosedRange<Int>, _ set: @escaping (inout BrokerConfiguration.Limits, Int) -> Void)
        -> (inout BrokerConfiguration, any TOMLValueConvertible) -> Bool {
        { c, v in
            guard let i = v.int, range.contains(i) else { return false }
            set(&c.limits, i)
            return true
        }
    }

    private static let limits: [String: (inout BrokerConfiguration, any TOMLValueConvertible) -> Bool] = [
        "max_connections": intLimit(0...Int(Int32.max)) { $0.maxConnections = $1 },
        "max_packet_size": intLimit(20...268_435_460) { $0.maxPacketSize = $1 },
        "max_inflight": intLimit(1...65535) { $0.maxInflight = $1 },
        "max_queued_messages": intLimit(0...Int(Int32.max)) { $0.maxQueuedMessages = $1 },
        "max_keepalive": intLimit(1...65535) { $0.maxKeepalive = $1 },
        "max_topic_levels": intLimit(1...65535) { $0.maxTopicLevels = $1 },
        "max_subscriptions_per_client": intLimit(0...Int(Int32.max)) { $0.maxSubscriptionsPerClient = $1 },
        "max_topic_alias": intLimit(0...65535) { $0.maxTopicAlias = $1 },
        "receive_maximum": intLimit(1...65535) { $0.receiveMaximum = $1 },
        "max_session_expiry": intLimit(0...0xFFFF_FFFF) { $0.maxSessionExpiry = UInt32($1) },
        "connect_timeout": intLimit(1...3600) { $0.connectTimeout = $1 },
        "accept_rate": intLimit(0...1_000_000) { $0.acceptRate = $1 },
        "max_publish_rate": intLimit(0...Int(Int32.max)) { $0.maxPublishRate = $1 },
        "max_publish_bytes_rate": intLimit(0...Int(Int32.max)) { $0.maxPublishBytesRate = $1 },
        "flapping_max_connects": intLimit(0...Int(Int32.max)) { $0.flappingMaxConnects = $1 },
        "flapping_window": intLimit(1...86_400) { $0.flappingWindow = $1 },
        "flapping_ban": intLimit(1...31_536_000) { $0.flappingBan = $1 },
        "ack_timeout": intLimit(1...3600) { $0.ackTimeout = $1 },
        "strict_utf8": { c, v in guard let b = v.bool else { return false }; c.limits.strictUTF8 = b; return true },
    ]

    /// `[storage]`: how much acknowledgements promise (Persistence.swift).
    private static let storage: [String: (inout BrokerConfiguration, any TOMLValueConvertible) -> Bool] = [
        "durability": { c, v in
            guard let s = v.string, let d = Durability(rawValue: s) else { return false }
            c.storage.durability = d
            return true
        },
        "commit_interval_ms": { c, v in
            guard let i = v.int, (0...60_000).contains(i) else { return false }
            c.storage.commitIntervalMs = i
            return true
        },
    ]

    typealias ListenerKey = (inout BrokerConfiguration.ListenerConfiguration, any TOMLValueConvertible) -> Bool

    private static func tlsKey(_ set: @escaping (inout TLSConfiguration, any TOMLValueConvertible) -> Bool) -> ListenerKey {
        { l, v in
            var t = l.tls ?? TLSConfiguration()
            guard set(&t, v) else { return false }
            l.tls = t
            return true
        }
    }

    /// Keys of one `[[listeners]]` entry. Any TLS key makes it a TLS listener (`tls = true` alone
    /// is not enough: it needs certfile and keyfile).
    private static let listenerKeys: [String: ListenerKey] = [
        "bind": { l, v in guard let s = v.string else { return false }; l.bind = s; return true },
        "port": { l, v in guard let i = v.int, (0...65535).contains(i) else { return false }; l.port = i; return true },
        "max_connections": { l, v in guard let i = v.int, i >= 0 else { return false }; l.maxConnections = i; return true },
        "accept_rate": { l, v in guard let i = v.int, (0...1_000_000).contains(i) else { return false }; l.acceptRate = i; return true },
        "tls": { l, v in
            guard let b = v.bool else { return false }
            l.tls = b ? (l.tls ?? TLSConfiguration()) : nil
            return true
        },
        "certfile": tlsKey { t, v in guard let s = v.string else { return false }; t.certificateChainFile = s; return true },
        "keyfile": tlsKey { t, v in guard let s = v.string else { return false }; t.privateKeyFile = s; return true },
        "cafile": tlsKey { t, v in guard let s = v.string else { return false }; t.caFile = s; return true },
        "require_certificate": tlsKey { t, v in guard let b = v.bool else { return false }; t.requireClientCertificate = b; return true },
        "tls_version": tlsKey { t, v in
            guard let s = v.string, let version = TLSConfiguration.Version(rawValue: s) else { return false }
            t.minimumVersion = version
            return true
        },
        "ciphers": tlsKey { t, v in guard let s = v.string else { return false }; t.ciphers = s; return true },
        "ciphersuites": tlsKey { t, v in guard let s = v.string else { return false }; t.ciphersuites = s; return true },
        "allow_anonymous": { l, v in guard let b = v.bool else { return false }; l.allowAnonymous = b; return true },
        "use_identity_as_username": { l, v in guard let b = v.bool else { return false }; l.useIdentityAsUsername = b; return true },
        "use_subject_as_username": { l, v in guard let b = v.bool else { return false }; l.useSubjectAsUsername = b; return true },
    ]

    private static func loadListeners(_ value: any TOMLValueConvertible, path: String) throws -> [BrokerConfiguration.ListenerConfiguration] {
        guard let array = value.array else {
            throw Error(description: "\(path): 'listeners' must be an array of tables ([[listeners]])")
        }
        var out: [BrokerConfiguration.ListenerConfiguration] = []
        for (i, item) in array.enumerated() {
            guard let t = item.table else {
                throw Error(description: "\(path): listeners entry \(i + 1) must be a table ([[listeners]])")
            }
            var l = BrokerConfiguration.ListenerConfiguration()
            for name in t.keys {
                guard let apply = listenerKeys[name] else {
                    throw Error(description: "\(path): unknown key '\(name)' in [[listeners]] entry \(i + 1)")
                }
                guard let v = t[name], apply(&l, v) else {
                    throw Error(description: "\(path): invalid value for '\(name)' in [[listeners]] entry \(i + 1)")
                }
            }
            if var t = l.tls {
                // Relative paths are relative to the configuration file, as in [auth].
                let dir = (path as NSString).deletingLastPathComponent
                func resolve(_ p: String?) -> String? {
                    guard let p, !p.hasPrefix("/"), !dir.isEmpty else { return p }
                    return dir + "/" + p
                }
                t.certificateChainFile = resolve(t.certificateChainFile)
                t.privateKeyFile = resolve(t.privateKeyFile)
                t.caFile = resolve(t.caFile)
                l.tls = t
            }
            if l.tls != nil && (l.tls?.certificateChainFile == nil || l.tls?.privateKeyFile == nil) {
                throw Error(description: "\(path): TLS listener entry \(i + 1) needs certfile and keyfile")
            }
            if (l.useIdentityAsUsername || l.useSubjectAsUsername) && l.tls?.caFile == nil {
                throw Error(description: "\(path): listeners entry \(i + 1): use_identity_as_username/use_subject_as_username need a TLS listener with cafile")
            }
            out.append(l)
        }
        if out.isEmpty { throw Error(description: "\(path): [[listeners]] is empty") }
        return out
    }

    /// `[rules]`: `dir` (relative to this file) and `dead_letter`.
    private static func loadRules(_ section: TOMLTable, path: String, into config: inout BrokerConfiguration) throws {
        for name in section.keys {
            let value = section[name]
            switch name {
            case "dir":
                guard let s = value?.string else { throw Error(description: "\(path): invalid value for 'dir' in [rules]") }
                let dir = (path as NSString).deletingLastPathComponent
                config.rules.directory = s.hasPrefix("/") || dir.isEmpty ? s : dir + "/" + s
                explicitRulesDirectory = true
            case "dead_letter":
                guard let b = value?.bool else { throw Error(description: "\(path): invalid value for 'dead_letter' in [rules]") }
                config.rules.deadLetter = b
            default:
                throw Error(description: "\(path): unknown key '\(name)' in [rules]")
            }
        }
    }

    /// Set when the configuration names the rules directory: then it must exist.
    nonisolated(unsafe) static var explicitRulesDirectory = false
    /// `[server] log_format`: "text" (default) or "json".
    nonisolated(unsafe) static var logFormat = "text"

    /// Applies the file at `path` on top of `config`; returns the log level it names, if any.
    static func load(path: String, into config: inout BrokerConfiguration) throws -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw Error(description: "\(path): cannot read the file")
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            throw Error(description: "\(path):\(e.source.begin.line):\(e.source.begin.column): \(e.description)")
        }
        var logLevel: String?
        for key in table.keys where key == "listeners" {
            if let server = table["server"]?.table, server.contains(key: "bind") || server.contains(key: "port") {
                throw Error(description: "\(path): set bind and port in [[listeners]] entries, not in [server], when [[listeners]] is present")
            }
            config.listeners = try loadListeners(table[key]!, path: path)
        }
        for key in table.keys where key != "listeners" {
            guard let section = table[key]?.table else {
                throw Error(description: "\(path): '\(key)' must be a table ([server] or [limits])")
            }
            let known: [String: (inout BrokerConfiguration, any TOMLValueConvertible) -> Bool]
            switch key {
            case "auth":
                try loadAuth(section, path: path, into: &config) // ConfigFile+Auth.swift
                continue
            case "bans":
                try loadBans(section, path: path, into: &config)
                continue
            case "rules":
                try loadRules(section, path: path, into: &config)
                continue
            case "storage": known = storage
            case "bridges":
                bridges = try loadBridges(section, path: path)   // ConfigFile+Bridges.swift
                continue
            case "cluster":
                cluster = try loadCluster(section, path: path)   // ConfigFile+Cluster.swift
                continue
            case "admin":
                admin = try loadAdmin(section, path: path, text: text)   // ConfigFile+Admin.swift
                continue
            case "server": known = server
            case "limits": known = limits
            default: throw Error(description: "\(path): unknown table [\(key)] (expected [server], [limits], [auth], [bans], [rules], [storage], [bridges.*], [admin], [cluster] or [[listeners]])")
            }
            for name in section.keys {
                guard let apply = known[name] else {
                    throw Error(description: "\(path): unknown key '\(name)' in [\(key)]")
                }
                guard let value = section[name], apply(&config, value) else {
                    throw Error(description: "\(path): invalid value for '\(name)' in [\(key)]")
                }
                if key == "server" && name == "log_level" { logLevel = value.string }
                if key == "server" && name == "log_format" { logFormat = value.string ?? "text" }
            }
        }
        if config.storage.durability == .none, let d = bridges.first(where: { $0.buffer.disk }) {
            throw Error(description: "\(path): [bridges.\(d.id)] buffer = \"disk\" needs the durable store, but [storage] durability is \"none\" (use \"sync\" or \"periodic\", or buffer = \"memory\")")
        }
        return logLevel
    }
}

extension ConfigFile {
    /// `[bans]`: `client_ids`, `usernames` and `cidrs` (IPv4/IPv6 networks or single addresses),
    /// each an array of non-empty strings.
    static func loadBans(_ section: TOMLTable, path: String, into config: inout BrokerConfiguration) throws {
        func strings(_ name: String) throws -> [String] {
            guard let v = section[name] else { return [] }
            guard let array = v.array else {
                throw Error(description: "\(path): invalid value for '\(name)' in [bans]: expected an array of strings")
            }
            return try array.map { item in
                guard let s = item.string, !s.isEmpty else {
                    throw Error(description: "\(path): invalid value for '\(name)' in [bans]: expected non-empty strings")
                }
                return s
            }
        }
        for name in section.keys where !["client_ids", "usernames", "cidrs"].contains(name) {
            throw Error(description: "\(path): unknown key '\(name)' in [bans]")
        }
        config.bans.clientIds = Set(try strings("client_ids"))
        config.bans.usernames = Set(try strings("usernames"))
        config.bans.networks = try strings("cidrs").map { text in
            guard let net = IPNetwork(text) else {
                throw Error(description: "\(path): invalid value for 'cidrs' in [bans]: '\(text)' is not an IPv4 or IPv6 address or network (like 10.0.0.0/8 or 2001:db8::/32)")
            }
            return net
        }
    }
}

enum LogLevelName {
    static let all = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
    static func isValid(_ s: String) -> Bool { all.contains(s) }
}
