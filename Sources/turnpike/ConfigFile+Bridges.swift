import Bridges
import Broker
import TOMLKit

extension ConfigFile {
    /// Bridges read from `[bridges.<kind>.<name>]` by the last `load`.
    nonisolated(unsafe) static var bridges: [Bridges.Definition] = []

    /// The buffer knobs every bridge table takes.
    private static let bufferKeys: [String: (inout BufferSettings, any TOMLValueConvertible) -> Bool] = [
        "batch_size": { b, v in guard let i = v.int, (1...10_000).contains(i) else { return false }; b.batchSize = i; return true },
        "batch_time": { b, v in guard let i = v.int, (0...60_000).contains(i) else { return false }; b.batchTimeMs = i; return true },
        "inflight_window": { b, v in guard let i = v.int, (1...10_000).contains(i) else { return false }; b.inflightWindow = i; return true },
        "max_buffer_messages": { b, v in guard let i = v.int, i >= 1 else { return false }; b.maxBufferMessages = i; return true },
        "max_buffer_bytes": { b, v in guard let i = v.int, i >= 1 else { return false }; b.maxBufferBytes = i; return true },
        "buffer": { _, v in v.string == "memory" },
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
        "buffer": "\"memory\" (a disk buffer is not available yet)",
        "on_full": "\"drop_oldest\" or \"backpressure\"",
        "retry_backoff": "milliseconds, 1 to 30000",
        "batch_time": "milliseconds, 0 to 60000",
        "url": "an http:// or https:// URL",
        "headers": "a table of strings, e.g. { Authorization = \"Bearer abc\" }",
    ]

    static func loadBridges(_ section: TOMLTable, path: String) throws -> [Bridges.Definition] {
        var out: [Bridges.Definition] = []
        for kind in section.keys.sorted() {
            guard let byName = section[kind]?.table else {
                throw Error(description: "\(path): [bridges.\(kind)] must be a table of bridges by name ([bridges.\(kind).NAME])")
            }
            guard kind == "webhook" else {
                if kind == "kafka" || kind == "postgres" {
                    throw Error(description: "\(path): [bridges.\(kind)]: \(kind) bridges are not available in this build yet (webhook is)")
                }
                throw Error(description: "\(path): unknown bridge kind [bridges.\(kind)] (expected webhook)")
            }
            for name in byName.keys.sorted() {
                guard let t = byName[name]?.table else {
                    throw Error(description: "\(path): [bridges.\(kind).\(name)] must be a table")
                }
                let at = "[bridges.\(kind).\(name)]"
                func invalid(_ key: String) -> Error {
                    Error(description: "\(path): invalid value for '\(key)' in \(at)" + (expected[key].map { ": expected \($0)" } ?? ""))
                }
                guard let url = t["url"]?.string else {
                    throw Error(description: "\(path): \(at) needs url")
                }
                guard url.hasPrefix("http://") || url.hasPrefix("https://") else { throw invalid("url") }
                var w = WebhookSettings(url: url)
                var buffer = BufferSettings()
                buffer.batchSize = 1
                for key in t.keys {
                    guard let v = t[key] else { continue }
                    switch key {
                    case "url": continue
                    case "pool_size":
                        guard let i = v.int, (1...1024).contains(i) else { throw invalid(key) }
                        w.poolSize = i
                    case "request_timeout":
                        guard let i = v.int, (1...3600).contains(i) else { throw invalid(key) }
                        w.requestTimeout = i
                    case "headers":
                        guard let h = v.table else { throw invalid(key) }
                        w.headers = try h.keys.sorted().map { k in
                            guard let s = h[k]?.string else { throw invalid(key) }
                            return (k, s)
                        }
                    default:
                        guard let apply = bufferKeys[key] else {
                            throw Error(description: "\(path): unknown key '\(key)' in \(at)")
                        }
                        guard apply(&buffer, v) else { throw invalid(key) }
                    }
                }
                out.append(Bridges.Definition(name: name, kind: .webhook(w), buffer: buffer))
            }
        }
        return out
    }
}
