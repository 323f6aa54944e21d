import Broker
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
        "bind": { c, v in guard let s = v.string else { return false }; c.bind = s; return true },
        "port": { c, v in guard let i = v.int, (0...65535).contains(i) else { return false }; c.port = i; return true },
        "threads": { c, v in guard let i = v.int, i >= 1, i <= 256 else { return false }; c.threads = i; return true },
        "sys_interval": { c, v in guard let i = v.int, i >= 0 else { return false }; c.sysInterval = i; return true },
        "data_dir": { c, v in guard let s = v.string else { return false }; c.dataDirectory = s; return true },
        "log_level": { _, v in v.string.map { LogLevelName.isValid($0) } ?? false },
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
    ]

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
        for key in table.keys {
            guard let section = table[key]?.table else {
                throw Error(description: "\(path): '\(key)' must be a table ([server] or [limits])")
            }
            let known: [String: (inout BrokerConfiguration, any TOMLValueConvertible) -> Bool]
            switch key {
            case "server": known = server
            case "limits": known = limits
            default: throw Error(description: "\(path): unknown table [\(key)] (expected [server] or [limits])")
            }
            for name in section.keys {
                guard let apply = known[name] else {
                    throw Error(description: "\(path): unknown key '\(name)' in [\(key)]")
                }
                guard let value = section[name], apply(&config, value) else {
                    throw Error(description: "\(path): invalid value for '\(name)' in [\(key)]")
                }
                if key == "server" && name == "log_level" { logLevel = value.string }
            }
        }
        return logLevel
    }
}

enum LogLevelName {
    static let all = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
    static func isValid(_ s: String) -> Bool { all.contains(s) }
}
