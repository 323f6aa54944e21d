import Glibc
import Logging

/// `[server] log_format = "json"`: one JSON object a line on standard error, for log shippers
/// (Loki, Elasticsearch, Vector). `ts` (UTC, milliseconds), `level`, `source` (the module),
/// `msg`, then every metadata field as a member of its own (`clientid`, `username`, `peer`, …).
struct JSONLogHandler: LogHandler {
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    let label: String

    init(label: String) { self.label = label }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String,
             file: String, function: String, line: UInt) {
        var out = "{\"ts\":\"" + Self.timestamp() + "\",\"level\":\"" + level.rawValue + "\""
        out += ",\"source\":"; Self.append(string: source, to: &out)
        out += ",\"msg\":"; Self.append(string: message.description, to: &out)
        var fields = metadata
        if let explicit { fields.merge(explicit) { _, new in new } }
        for key in fields.keys.sorted() where !["ts", "level", "source", "msg"].contains(key) {
            out += ","
            Self.append(string: key, to: &out)
            out += ":"
            Self.append(value: fields[key]!, to: &out)
        }
        out += "}\n"
        // One write per line, so lines from several threads never interleave.
        out.withCString { p in _ = fputs(p, stderr) }
    }

    static func append(value: Logger.Metadata.Value, to out: inout String) {
        switch value {
        case .string(let s): append(string: s, to: &out)
        case .stringConvertible(let c): append(string: c.description, to: &out)
        case .array(let a):
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += "," }
                append(value: v, to: &out)
            }
            out += "]"
        case .dictionary(let d):
            out += "{"
            for (i, k) in d.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                append(string: k, to: &out)
                out += ":"
                append(value: d[k]!, to: &out)
            }
            out += "}"
        }
    }

    /// A JSON string: quotes, backslashes and control characters escaped (RFC 8259 §7).
    static func append(string s: String, to out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20 || u.value == 0x7F:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }

    static func timestamp() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var t = tv.tv_sec
        var parts = tm()
        gmtime_r(&t, &parts)
        var buf = [CChar](repeating: 0, count: 32)
        let n = strftime(&buf, buf.count, "%Y-%m-%dT%H:%M:%S", &parts)
        let ms = Int(tv.tv_usec) / 1000
        let base = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return base + "." + (ms < 10 ? "00" : ms < 100 ? "0" : "") + String(ms) + "Z"
    }
}
