/// now_timestamp now_rfc3339 unix_ts_to_rfc3339 rfc3339_to_unix_ts format_date.
/// Units are `second` (default), `millisecond`, `microsecond`, `nanosecond`. RFC 3339 output is
/// UTC written with a `+00:00` offset (EMQX writes the node's local offset; Turnpike has no time
/// zone database and runs in UTC). format_date takes `%Y %m %d %H %M %S %N %3N %6N %z %:z %::z %%`;
/// its offset is `'Z'`, `'local'` (UTC here), `'+08:00'`/`'-0530'`, or seconds as an integer.
enum TimeFunctions {
    /// Nanoseconds in one `unit`.
    static func unitScale(_ f: String, _ v: Value) throws(EvalError) -> Int64 {
        switch try Arguments.string(f, v) {
        case "second", "s": return 1_000_000_000
        case "millisecond", "ms": return 1_000_000
        case "microsecond", "us": return 1_000
        case "nanosecond", "ns": return 1
        case let other: throw EvalError("\(f): unknown time unit '\(other)' (second, millisecond, microsecond, nanosecond)")
        }
    }

    static func digits(forScale scale: Int64) -> Int {
        switch scale {
        case 1_000_000: return 3
        case 1_000: return 6
        case 1: return 9
        default: return 0
        }
    }

    static func offsetSeconds(_ f: String, _ v: Value) throws(EvalError) -> Int {
        if case .int(let i) = v { return Int(i) }
        let s = try Arguments.string(f, v)
        if s == "Z" || s == "z" || s == "local" || s == "" { return 0 }
        let c = Array(s.utf8)
        guard c.count >= 5, c[0] == UInt8(ascii: "+") || c[0] == UInt8(ascii: "-") else {
            throw EvalError("\(f): bad offset '\(s)' (expected 'Z', 'local', '+hh:mm' or seconds)")
        }
        let rest = c[1...].filter { $0 != UInt8(ascii: ":") }
        guard rest.count == 4, rest.allSatisfy({ $0 &- 48 < 10 }) else {
            throw EvalError("\(f): bad offset '\(s)' (expected 'Z', 'local', '+hh:mm' or seconds)")
        }
        let r = Array(rest).map { Int($0 - 48) }
        let seconds = (r[0] * 10 + r[1]) * 3600 + (r[2] * 10 + r[3]) * 60
        return c[0] == UInt8(ascii: "-") ? -seconds : seconds
    }

    static func format(_ format: String, _ t: CivilTime) throws(EvalError) -> String {
        var out = ""
        let c = Array(format)
        var i = 0
        while i < c.count {
            guard c[i] == "%", i + 1 < c.count else { out.append(c[i]); i += 1; continue }
            i += 1
            switch c[i] {
            case "Y": out += CivilTime.pad(t.year, 4)
            case "m": out += CivilTime.pad(Int64(t.month), 2)
            case "d": out += CivilTime.pad(Int64(t.day), 2)
            case "H": out += CivilTime.pad(Int64(t.hour), 2)
            case "M": out += CivilTime.pad(Int64(t.minute), 2)
            case "S": out += CivilTime.pad(Int64(t.second), 2)
            case "N": out += CivilTime.pad(Int64(t.nanosecond), 9)
            case "3" where i + 1 < c.count && c[i + 1] == "N": out += CivilTime.pad(Int64(t.nanosecond / 1_000_000), 3); i += 1
            case "6" where i + 1 < c.count && c[i + 1] == "N": out += CivilTime.pad(Int64(t.nanosecond / 1_000), 6); i += 1
            case "z": out += CivilTime.offsetText(t.offset, colon: false)
            case ":" where i + 1 < c.count && c[i + 1] == "z": out += CivilTime.offsetText(t.offset); i += 1
            case ":" where i + 2 < c.count && c[i + 1] == ":" && c[i + 2] == "z":
                out += CivilTime.offsetText(t.offset, seconds: true); i += 2
            case "%": out += "%"
            default: throw EvalError("format_date: unsupported directive '%\(c[i])'")
            }
            i += 1
        }
        return out
    }

    static let all: [BuiltinFunction] = [
        BuiltinFunction("now_timestamp", arity: 0...1, pure: false) { args throws(EvalError) in
            let scale = args.isEmpty ? 1_000_000_000 : try unitScale("now_timestamp", args[0])
            return .int(CivilTime.nowNanoseconds() / scale)
        },
        BuiltinFunction("now_rfc3339", arity: 0...1, pure: false) { args throws(EvalError) in
            let scale = args.isEmpty ? 1_000_000_000 : try unitScale("now_rfc3339", args[0])
            let now = CivilTime.nowNanoseconds() / scale * scale
            return .string(CivilTime(unixNanoseconds: now, offset: 0).rfc3339(fractionDigits: digits(forScale: scale)))
        },
        BuiltinFunction("unix_ts_to_rfc3339", arity: 1...2) { args throws(EvalError) in
            let ts = try Arguments.integer("unix_ts_to_rfc3339", args[0])
            let scale = args.count == 2 ? try unitScale("unix_ts_to_rfc3339", args[1]) : 1_000_000_000
            let (ns, overflow) = ts.multipliedReportingOverflow(by: scale)
            guard !overflow else { throw EvalError("unix_ts_to_rfc3339: timestamp \(ts) is out of range") }
            return .string(CivilTime(unixNanoseconds: ns, offset: 0).rfc3339(fractionDigits: digits(forScale: scale)))
        },
        BuiltinFunction("rfc3339_to_unix_ts", arity: 1...2) { args throws(EvalError) in
            let text = try Arguments.string("rfc3339_to_unix_ts", args[0])
            let scale = args.count == 2 ? try unitScale("rfc3339_to_unix_ts", args[1]) : 1_000_000_000
            guard let t = CivilTime.parseRFC3339(text) else {
                throw EvalError("rfc3339_to_unix_ts: '\(text)' is not an RFC 3339 date-time")
            }
            let ns = t.unixNanoseconds
            var q = ns / scale
            if ns % scale < 0 { q -= 1 }
            return .int(q)
        },
        BuiltinFunction("format_date", arity: 3...4, pure: false) { args throws(EvalError) in
            let scale = try unitScale("format_date", args[0])
            let offset = try offsetSeconds("format_date", args[1])
            let fmt = try Arguments.string("format_date", args[2])
            let ns: Int64
            if args.count == 4 {
                let ts = try Arguments.integer("format_date", args[3])
                let (v, overflow) = ts.multipliedReportingOverflow(by: scale)
                guard !overflow else { throw EvalError("format_date: timestamp \(ts) is out of range") }
                ns = v
            } else {
                ns = CivilTime.nowNanoseconds()
            }
            return .string(try format(fmt, CivilTime(unixNanoseconds: ns, offset: offset)))
        },
    ]
}
