/// A rule-SQL value. `undefined` is a missing field (EMQX's `undefined`): comparisons with it are
/// false, arithmetic on it stays undefined, and output rows and JSON maps omit it. `null` is JSON's
/// null. Integers stay integers (`Int64`); `1 = 1.0` is still true.
public enum Value: Sendable, Equatable {
    case undefined
    case null
    case bool(Bool)
    case int(Int64)
    case float(Double)
    case string(String)
    /// Bytes that are not UTF-8 text (a binary payload, `hexstr2bin`, `base64_decode`).
    case binary([UInt8])
    case array([Value])
    case map(ValueMap)

    /// The EMQX type name used in error messages.
    public var typeName: String {
        switch self {
        case .undefined: return "undefined"
        case .null: return "null"
        case .bool: return "boolean"
        case .int: return "integer"
        case .float: return "float"
        case .string: return "string"
        case .binary: return "binary"
        case .array: return "array"
        case .map: return "map"
        }
    }

    public var isUndefined: Bool {
        if case .undefined = self { return true }
        return false
    }

    /// True for `null` and `undefined`.
    public var isNull: Bool {
        switch self {
        case .undefined, .null: return true
        default: return false
        }
    }

    /// The map's entries, or nil.
    public var mapValue: ValueMap? {
        if case .map(let m) = self { return m }
        return nil
    }

    /// A string, or a binary that is valid UTF-8, as text.
    public var stringValue: String? {
        switch self {
        case .string(let s): return s
        case .binary(let b): return String(validating: b, as: UTF8.self)
        default: return nil
        }
    }

    /// Member of a map by key (undefined when absent or not a map).
    public subscript(key: String) -> Value {
        member(key)
    }
}
