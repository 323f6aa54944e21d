import Bridges
import Broker
import TOMLKit

extension ConfigFile {
    /// Bridges read from `[bridges.<kind>.<name>]` by the last `load`.
    nonisolated(unsafe) static var bridges: [Bridges.Definition] = []
    /// Each bridge's table as read (by id): a reload restarts the bridges whose table changed.
    nonisolated(unsafe) static var bridgeFingerprints: [String: String] = [:]

    /// The buffer knobs every bridge table takes.
    private static let bufferKeys: [String: (inout BufferSettings, any TOMLValueConvertible) -> Bool] = [
        "batch_size": { b, v in guard let i = v.int, (1...10_000).contains(i) else { return false }; b.batchSize = i; return true },
        "batch_time": { b, v in guard let i = v.int, (0...60_000).contains(i) else { return false }; b.batchTimeMs = i; return true },
        "inflight_window": { b, v in guard let i = v.int, (1...10_000).contains(i) else { return false }; b.inflightWindow = i; return true },
        "max_buffer_messages": { b, v in guard let i = v.int, i >= 1 else { return false }; b.maxBufferMessages = i; return true },
        "max_buffer_bytes": { b, v in guard let i = v.int, i >= 1 else { return false }; b.maxBufferBytes = i; return true },
        "buffer": { b, v in
            switch v.string {
            case "memory": b.disk = false
            case "disk": b.disk = true
            default: return false
            }
            return true
        },
        "on_full": { b, v in
            guard let s = v.string, let o = BufferSettings.OnFull(rawValue: s) else { return false }
            b.onFull = o
            return true
        },
        "max_retries": { b, v in guard let i = v.int, i >= 0 else { return false }; b.maxRetries = i; return true },
        "retry_backoff": { b, v in guard let i = v.int, (1...30_000).contains(i) else { return false }; b.retryBackoffMs = i; return true },
        "request_ttl": { b, v in guard let i = v.int, i >= 0 else { return false }; b.requestTTL = i; return true },
        "health_check_interval": { b, v in guard let i = v.int, (1...3600).contains(i) else { return false }; b.healthCheckInterval = i; return true },
    ]

    /// What is accepted for a key, for the error message.
    private static let expected: [String: String] = [
        "buffer": "\"memory\" or \"disk\"",
        "on_full": "\"drop_oldest\" or \"backpressure\"",
        "retry_backoff": "milliseconds, 1 to 30000",
        "batch_time": "milliseconds, 0 to 60000",
        "url": "an http:// or https:// URL",
        "headers": "a table of strings, e.g. { Authorization = \"Bearer abc\" }",
        "acks": "\"all\", \"leader\" or \"none\"",
        "idempotence": "true or false",
        "compression": "\"none\", \"gzip\", \"snappy\", \"lz4\" or \"zstd\"",
        "properties": "a table of librdkafka properties, e.g. { \"linger.ms\" = \"10\" }",
        "bootstrap_servers": "\"host:port[,host:port…]\"",
        "dsn": "a libpq connection string, e.g. \"host=127.0.0.1 dbname=fleet user=turnpike\"",
    ]

    static func loadBridges(_ section: TOMLTable, path: String) throws -> [Bridges.Definition] {
        var out: [Bridges.Definition] = []
        for kind in section.keys.sorted() {
            guard let byName = section[kind]?.table else {
                throw Error(description: "\(path): [bridges.\(kind)] must be a table of bridges by name ([bridges.\(kind).NAME])")
            }
            guard kind == "webhook" || kind == "kafka" || kind == "postgres" else {
                throw Error(description: "\(path): unknown bridge kind [bridges.\(kind)] (expected webhook, kafka or postgres)")
            }
            for name in byName.keys.sorted() {
                guard let t = byName[name]?.table else {
                    throw Error(description: "\(path): [bridges.\(kind).\(name)] must be a table")
                }
                let at = "[bridges.\(kind).\(name)]"
                bridgeFingerprints["\(kind).\(name)"] = t.convert(to: .json)
                switch kind {
                case "webhook": out.append(try webhook(t, name: name, at: at, path: path))
                case "kafka": out.append(try kafka(t, name: name, at: at, path: path))
                default: out.append(try postgres(t, name: name, at: at, path: path))
                }
            }
        }
        return out
    }

    private static func invalid(_ key: String, _ at: String, _ path: String) -> Error {
        Error(description: "\(path): invalid value for '\(key)' in \(at)" + (expected[key].map { ": expected \($0)" } ?? ""))
    }

    private static func buffer(_ key: String, _ v: any TOMLValueConvertible, _ b: inout BufferSettings, _ at: String, _ path: String) throws {
        guard let apply = bufferKeys[key] else {
            throw Error(description: "\(path): unknown key '\(key)' in \(at)")
        }
        guard apply(&b, v) else { throw invalid(key, at, path) }
    }

    private static func webhook(_ t: TOMLTable, name: String, at: String, path: String) throws -> Bridges.Definition {
        guard let url = t["url"]?.string else {
            throw Error(description: "\(path): \(at) needs url")
        }
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else { throw invalid("url", at, path) }
        var w = WebhookSettings(url: url)
        var buffer = BufferSettings()
        buffer.batchSize = 1
        for key in t.keys {
            guard let v = t[key] else { continue }
            switch key {
            case "url": continue
            case "pool_size":
                guard let i = v.int, (1...1024).contains(i) else { throw invalid(key, at, path) }
                w.poolSize = i
            case "request_timeout":
                guard let i = v.int, (1...3600).contains(i) else { throw invalid(key, at, path) }
                w.requestTimeout = i
            case "headers":
                guard let h = v.table else { throw invalid(key, at, path) }
                w.headers = try h.keys.sorted().map { k in
                    guard let s = h[k]?.string else { throw invalid(key, at, path) }
                    return (k, s)
                }
            default:
                try Self.buffer(key, v, &buffer, at, path)
            }
        }
        return Bridges.Definition(name: name, kind: .webhook(w), buffer: buffer)
    }

    private static func kafka(_ t: TOMLTable, name: String, at: String, path: String) throws -> Bridges.Definition {
        guard let servers = t["bootstrap_servers"]?.string else {
            throw Error(description: "\(path): \(at) needs bootstrap_servers")
        }
        guard !servers.isEmpty else { throw invalid("bootstrap_servers", at, path) }
        var k = KafkaSettings(bootstrapServers: servers)
        var buffer = BufferSettings()
        // Records per request go to librdkafka's queue at once (it batches per partition);
        // several requests in its queue keep it busy while reports come back (the order is
        // librdkafka's to keep: KafkaSettings.librdkafkaProperties).
        buffer.batchSize = 1000
        buffer.inflightWindow = 8
        var idempotenceSet = false
        for key in t.keys {
            guard let v = t[key] else { continue }
            switch key {
            case "bootstrap_servers": continue
            case "acks":
                guard let s = v.string, let a = KafkaSettings.Acks(rawValue: s) else { throw invalid(key, at, path) }
                k.acks = a
            case "idempotence":
                guard let b = v.bool else { throw invalid(key, at, path) }
                k.idempotence = b
                idempotenceSet = true
            case "compression":
                guard let s = v.string, let c = KafkaSettings.Compression(rawValue: s) else { throw invalid(key, at, path) }
                k.compression = c
            case "properties":
                guard let p = v.table else { throw invalid(key, at, path) }
                k.properties = try p.keys.sorted().map { name in
                    guard let value = p[name] else { throw invalid(key, at, path) }
                    if KafkaSettings.ownedProperties.contains(name) {
                        throw Error(description: "\(path): \(at).properties: '\(name)' is set from request_ttl (librdkafka retries a record until then, keeping each car's order)")
                    }
                    // librdkafka takes strings; numbers and booleans are accepted as written.
                    if let s = value.string { return (name, s) }
                    if let i = value.int { return (name, String(i)) }
                    if let b = value.bool { return (name, String(b)) }
                    throw Error(description: "\(path): invalid value for '\(name)' in \(at).properties: expected a string, an integer or a boolean")
                }
            default:
                try Self.buffer(key, v, &buffer, at, path)
            }
        }
        // The idempotent producer needs acks = all: with another acks it is off unless asked for.
        if k.acks != .all {
            if idempotenceSet && k.idempotence {
                throw Error(description: "\(path): \(at): idempotence = true needs acks = \"all\"")
            }
            k.idempotence = false
        }
        k.requestTTL = buffer.requestTTL
        k.maxInflightRecords = buffer.inflightWindow * buffer.batchSize
        do {
            try k.validate()
        } catch {
            throw Error(description: "\(path): \(at).properties: \(error)")
        }
        return Bridges.Definition(name: name, kind: .kafka(k), buffer: buffer)
    }

    private static func postgres(_ t: TOMLTable, name: String, at: String, path: String) throws -> Bridges.Definition {
        guard let dsn = t["dsn"]?.string else {
            throw Error(description: "\(path): \(at) needs dsn")
        }
        var p = PostgresSettings(dsn: dsn)
        var buffer = BufferSettings()
        // One transaction per request of up to batch_size records, one per connection at a time.
        buffer.batchSize = 100
        for key in t.keys {
            guard let v = t[key] else { continue }
            switch key {
            case "dsn": continue
            case "pool_size":
                guard let i = v.int, (1...64).contains(i) else {
                    throw Error(description: "\(path): invalid value for 'pool_size' in \(at): expected 1 to 64 connections")
                }
                p.poolSize = i
            case "inflight_window":
                throw Error(description: "\(path): 'inflight_window' in \(at): a PostgreSQL bridge has one transaction in flight per connection; set pool_size")
            default:
                try Self.buffer(key, v, &buffer, at, path)
            }
        }
        do {
            try p.validate()
        } catch {
            throw Error(description: "\(path): invalid value for 'dsn' in \(at): \(error)")
        }
        return Bridges.Definition(name: name, kind: .postgres(p), buffer: buffer)
    }
}
