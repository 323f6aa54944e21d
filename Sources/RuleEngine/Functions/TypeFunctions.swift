/// Type checks (is_*) and conversions (int float str bool).
/// `int` of a float floors it (EMQX's `erlang:floor`); `int`/`float` of a string parse it;
/// `str` prints like a template; `bool` accepts true/false, 'true'/'false' and 1/0.
enum TypeFunctions {
    private static func check(_ name: String, _ test: @escaping @Sendable (Value) -> Bool) -> BuiltinFunction {
        .unary(name) { v throws(EvalError) in .bool(test(v)) }
    }

    static func toInt(_ v: Value) throws(EvalError) -> Value {
        switch v {
        case .int: return v
        case .float(let d):
            let f = d.rounded(.down)
            guard f.isFinite, Swift.abs(f) < 9.2e18 else { throw EvalError("int: \(d) is out of range") }
            return .int(Int64(f))
        case .bool(let b): return .int(b ? 1 : 0)
        case .string, .binary:
            let s = try Arguments.string("int", v)
            guard let n = NumberParser.parse(s) else { throw EvalError("int: '\(s)' is not a number") }
            return try toInt(n)
        default: throw EvalError.type("int", "a number, string or boolean", v)
        }
    }

    static func toFloat(_ v: Value) throws(EvalError) -> Double {
        switch v {
        case .int(let i): return Double(i)
        case .float(let d): return d
        case .string, .binary:
            let s = try Arguments.string("float", v)
            guard let n = NumberParser.parse(s) else { throw EvalError("float: '\(s)' is not a number") }
            return try toFloat(n)
        default: throw EvalError.type("float", "a number or string", v)
        }
    }

    static let all: [BuiltinFunction] = [
        check("is_null") { $0.isNull },
        check("is_not_null") { !$0.isNull },
        check("is_num") { if case .int = $0 { return true }; if case .float = $0 { return true }; return false },
        check("is_int") { if case .int = $0 { return true }; return false },
        check("is_float") { if case .float = $0 { return true }; return false },
        check("is_str") { if case .string = $0 { return true }; if case .binary = $0 { return true }; return false },
        check("is_bool") { if case .bool = $0 { return true }; return false },
        check("is_map") { if case .map = $0 { return true }; return false },
        check("is_array") { if case .array = $0 { return true }; return false },
        .unary("int") { v throws(EvalError) in try toInt(v) },
        BuiltinFunction("float", arity: 1...2) { args throws(EvalError) in
            let d = try toFloat(args[0])
            guard args.count == 2 else { return .float(d) }
            let decimals = try Arguments.int("float", args[1])
            guard decimals >= 0 && decimals <= 15 else { throw EvalError("float: decimals must be 0…15") }
            var scale = 1.0
            for _ in 0..<decimals { scale *= 10 }
            return .float((d * scale).rounded(.toNearestOrAwayFromZero) / scale)
        },
        .unary("str") { v throws(EvalError) in .string(ValueFormatter.text(v)) },
        .unary("str_utf8") { v throws(EvalError) in .string(ValueFormatter.text(v)) },
        .unary("bool") { v throws(EvalError) in
            switch v {
            case .bool: return v
            case .int(1): return .bool(true)
            case .int(0): return .bool(false)
            case .string("true"): return .bool(true)
            case .string("false"): return .bool(false)
            default: throw EvalError("bool: cannot convert \(v.typeName) \(ValueFormatter.text(v)) to a boolean")
            }
        },
    ]
}
