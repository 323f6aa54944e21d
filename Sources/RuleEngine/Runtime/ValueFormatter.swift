/// Values as text, the way `str()` and `${…}` templates print them: strings as they are,
/// numbers in decimal (floats shortest round-trip), booleans `true`/`false`, `null` as `null`,
/// `undefined` as `undefined` (EMQX), maps and arrays as JSON.
enum ValueFormatter {
    static func float(_ d: Double) -> String {
        d.description
    }

    static func text(_ value: Value) -> String {
        switch value {
        case .undefined: return "undefined"
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .float(let d): return float(d)
        case .string(let s): return s
        case .binary(let b): return String(decoding: b, as: UTF8.self)
        case .array, .map: return JSONWriter.string(value)
        }
    }
}
