#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// abs ceil floor round sqrt power exp log log10 log2 fmod, trigonometry, bit operations.
/// ceil/floor/round return integers (Erlang's); the rest return floats. Non-numbers are errors.
enum MathFunctions {
    private static func real(_ name: String, domain: @escaping @Sendable (Double) -> Bool = { _ in true },
                             _ f: @escaping @Sendable (Double) -> Double) -> BuiltinFunction {
        .unary(name) { v throws(EvalError) in
            let x = try Arguments.number(name, v)
            guard domain(x) else { throw EvalError("\(name): argument \(ValueFormatter.text(v)) is out of its domain") }
            return try Arguments.float(f(x), name)
        }
    }

    private static func rounding(_ name: String, _ rule: FloatingPointRoundingRule) -> BuiltinFunction {
        .unary(name) { v throws(EvalError) in
            switch v {
            case .int: return v
            case .float(let d):
                let r = d.rounded(rule)
                guard r.isFinite, abs(r) < 9.2e18 else { return .float(r) }
                return .int(Int64(r))
            default: throw EvalError.type(name, "a number", v)
            }
        }
    }

    private static func bits(_ name: String, _ f: @escaping @Sendable (Int64, Int64) -> Int64) -> BuiltinFunction {
        .binary(name) { a, b throws(EvalError) in .int(f(try Arguments.integer(name, a), try Arguments.integer(name, b))) }
    }

    static let all: [BuiltinFunction] = [
        .unary("abs") { v throws(EvalError) in
            switch v {
            case .int(let i): return i == .min ? .float(-Double(i)) : .int(Swift.abs(i))
            case .float(let d): return .float(Swift.abs(d))
            default: throw EvalError.type("abs", "a number", v)
            }
        },
        rounding("ceil", .up),
        rounding("floor", .down),
        rounding("round", .toNearestOrAwayFromZero),
        real("sqrt", domain: { $0 >= 0 }) { $0.squareRoot() },
        .binary("power") { a, b throws(EvalError) in
            try Arguments.float(pow(try Arguments.number("power", a), try Arguments.number("power", b)), "power")
        },
        real("exp") { exp($0) },
        real("log", domain: { $0 > 0 }) { log($0) },
        real("log10", domain: { $0 > 0 }) { log10($0) },
        real("log2", domain: { $0 > 0 }) { log2($0) },
        .binary("fmod") { a, b throws(EvalError) in
            let y = try Arguments.number("fmod", b)
            let x = try Arguments.number("fmod", a)
            guard y != 0 else { throw EvalError("fmod: division by zero") }
            return .float(fmod(x, y))
        },
        real("sin") { sin($0) }, real("cos") { cos($0) }, real("tan") { tan($0) },
        real("asin", domain: { $0 >= -1 && $0 <= 1 }) { asin($0) },
        real("acos", domain: { $0 >= -1 && $0 <= 1 }) { acos($0) },
        real("atan") { atan($0) },
        real("sinh") { sinh($0) }, real("cosh") { cosh($0) }, real("tanh") { tanh($0) },
        real("asinh") { asinh($0) },
        real("acosh", domain: { $0 >= 1 }) { acosh($0) },
        real("atanh", domain: { $0 > -1 && $0 < 1 }) { atanh($0) },
        BuiltinFunction("pi", .nullary { () throws(EvalError) in .float(Double.pi) }),
        bits("bitand") { $0 & $1 },
        bits("bitor") { $0 | $1 },
        bits("bitxor") { $0 ^ $1 },
        bits("bitsl") { $1 >= 64 || $1 < 0 ? 0 : $0 << $1 },
        bits("bitsr") { $1 >= 64 || $1 < 0 ? ($0 < 0 ? -1 : 0) : $0 >> $1 },
        .unary("bitnot") { v throws(EvalError) in .int(~(try Arguments.integer("bitnot", v))) },
    ]
}
