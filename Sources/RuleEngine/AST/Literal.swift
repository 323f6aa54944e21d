/// A constant written in the rule.
public enum Literal: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case integer(Int64)
    case float(Double)
    case bool(Bool)
    case null

    public var description: String {
        switch self {
        case .string(let s): return "'\(Literal.escape(s))'"
        case .integer(let i): return String(i)
        case .float(let d): return d.description
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        }
    }

    /// The literal as a runtime value.
    var value: Value {
        switch self {
        case .string(let s): return .string(s)
        case .integer(let i): return .int(i)
        case .float(let d): return .float(d)
        case .bool(let b): return .bool(b)
        case .null: return .null
        }
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "'": out += "\\'"
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}
