/// Argument checks shared by the built-ins: each returns the Swift value or throws the
/// "expected X, got Y" evaluation error for that function.
enum Arguments {
    static func number(_ f: String, _ v: Value) throws(EvalError) -> Double {
        switch v {
        case .int(let i): return Double(i)
        case .float(let d): return d
        default: throw EvalError.type(f, "a number", v)
        }
    }

    static func integer(_ f: String, _ v: Value) throws(EvalError) -> Int64 {
        switch v {
        case .int(let i): return i
        case .float(let d) where d.rounded() == d && abs(d) < 9.2e18: return Int64(d)
        default: throw EvalError.type(f, "an integer", v)
        }
    }

    static func int(_ f: String, _ v: Value) throws(EvalError) -> Int {
        Int(try integer(f, v))
    }

    static func string(_ f: String, _ v: Value) throws(EvalError) -> String {
        switch v {
        case .string(let s): return s
        case .binary(let b): return String(decoding: b, as: UTF8.self)
        default: throw EvalError.type(f, "a string", v)
        }
    }

    static func bytes(_ f: String, _ v: Value) throws(EvalError) -> [UInt8] {
        switch v {
        case .string(let s): return Array(s.utf8)
        case .binary(let b): return b
        default: throw EvalError.type(f, "a string", v)
        }
    }

    /// Any scalar as text (numbers, booleans, strings); maps and arrays as JSON; undefined fails.
    static func text(_ f: String, _ v: Value) throws(EvalError) -> String {
        if v.isUndefined { throw EvalError.type(f, "a value", v) }
        return ValueFormatter.text(v)
    }

    static func array(_ f: String, _ v: Value) throws(EvalError) -> [Value] {
        if case .array(let a) = v { return a }
        if case .string = v, case .array(let a) = v.decodedJSON() { return a }
        throw EvalError.type(f, "an array", v)
    }

    static func map(_ f: String, _ v: Value) throws(EvalError) -> ValueMap {
        if case .map(let m) = v { return m }
        if case .string = v, case .map(let m) = v.decodedJSON() { return m }
        throw EvalError.type(f, "a map", v)
    }

    /// One of a fixed set of option words (`'leading'`, `'trailing'`…).
    static func option(_ f: String, _ v: Value, _ allowed: [String]) throws(EvalError) -> String {
        let s = try string(f, v)
        guard allowed.contains(s) else {
            throw EvalError("\(f): expected one of \(allowed.map { "'\($0)'" }.joined(separator: ", ")), got '\(s)'")
        }
        return s
    }

    static func float(_ d: Double, _ f: String) throws(EvalError) -> Value {
        guard d.isFinite else { throw EvalError("\(f): result is not a finite number") }
        return .float(d)
    }
}
