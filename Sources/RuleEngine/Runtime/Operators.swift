/// The semantics of rule SQL's operators (documented in the README's "Rule SQL" section):
/// - comparisons with `undefined` are false (also `!=`); numbers compare numerically (1 = 1.0);
///   a string compared with a number is read as a number (EMQX), and if it is not one, `=` is
///   false, `!=` true and orderings false; strings order by bytes; `null = null` is true.
/// - `+ - * /` on `undefined`/`null` give `undefined`; `+` with a string operand concatenates
///   (EMQX); `/` always gives a float; `div` and `mod` need integers (`mod` takes the dividend's sign).
///   Integer overflow turns into a float. Anything else is an evaluation error.
/// - `and`, `or`, `not` take booleans; `undefined` and `null` count as false.
enum Operators {
    static func compare(_ op: BinaryOperator, _ l: Value, _ r: Value) -> Bool {
        if l.isUndefined || r.isUndefined { return false }
        guard let order = ordering(l, r) else {
            // Not comparable: only "not equal" holds.
            return op == .notEqual
        }
        switch op {
        case .equal: return order == 0
        case .notEqual: return order != 0
        case .less: return order < 0
        case .lessEqual: return order <= 0
        case .greater: return order > 0
        case .greaterEqual: return order >= 0
        default: return false
        }
    }

    /// -1/0/1, or nil when the two values cannot be compared. Maps, arrays, booleans and nulls
    /// only compare equal or unequal (returned as 0 or nil-for-order... see below).
    @inline(__always)
    static func ordering(_ l: Value, _ r: Value) -> Int? {
        switch (l, r) {
        case (.int(let a), .int(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        case (.float(let a), .float(let b)): return a < b ? -1 : (a == b ? 0 : (a > b ? 1 : nil))
        case (.int(let a), .float(let b)): return doubleOrder(Double(a), b)
        case (.float(let a), .int(let b)): return doubleOrder(a, Double(b))
        case (.string(let a), .string(let b)):
            if a == b { return 0 }
            return a.utf8.lexicographicallyPrecedes(b.utf8) ? -1 : 1
        case (.string, .binary), (.binary, .string), (.binary, .binary):
            let a = bytes(l), b = bytes(r)
            if a == b { return 0 }
            return a.lexicographicallyPrecedes(b) ? -1 : 1
        case (.string(let s), .int), (.string(let s), .float):
            guard let n = NumberParser.parse(s) else { return nil }
            return ordering(n, r)
        case (.int, .string(let s)), (.float, .string(let s)):
            guard let n = NumberParser.parse(s) else { return nil }
            return ordering(l, n)
        case (.bool(let a), .bool(let b)): return a == b ? 0 : nil
        case (.null, .null): return 0
        case (.array, .array), (.map, .map): return l == r ? 0 : nil
        default: return nil
        }
    }

    private static func doubleOrder(_ a: Double, _ b: Double) -> Int? {
        a < b ? -1 : (a == b ? 0 : (a > b ? 1 : nil))
    }

    private static func bytes(_ v: Value) -> [UInt8] {
        switch v {
        case .string(let s): return Array(s.utf8)
        case .binary(let b): return b
        default: return []
        }
    }

    static func arithmetic(_ op: BinaryOperator, _ l: Value, _ r: Value) throws(EvalError) -> Value {
        if l.isNull || r.isNull { return .undefined }
        if op == .add {
            switch (l, r) {
            case (.string, _), (_, .string), (.binary, _), (_, .binary):
                return .string(ValueFormatter.text(l) + ValueFormatter.text(r))
            default: break
            }
        }
        switch (l, r) {
        case (.int(let a), .int(let b)):
            switch op {
            case .add:
                let (v, o) = a.addingReportingOverflow(b)
                return o ? .float(Double(a) + Double(b)) : .int(v)
            case .subtract:
                let (v, o) = a.subtractingReportingOverflow(b)
                return o ? .float(Double(a) - Double(b)) : .int(v)
            case .multiply:
                let (v, o) = a.multipliedReportingOverflow(by: b)
                return o ? .float(Double(a) * Double(b)) : .int(v)
            case .divide:
                if b == 0 { throw EvalError("division by zero") }
                return .float(Double(a) / Double(b))
            case .intDivide:
                if b == 0 { throw EvalError("division by zero") }
                if a == .min && b == -1 { return .float(-Double(a)) }
                return .int(a / b)
            case .modulo:
                if b == 0 { throw EvalError("division by zero") }
                if b == -1 { return .int(0) }
                return .int(a % b)
            default: break
            }
        case (.int, .float), (.float, .int), (.float, .float):
            let a = number(l), b = number(r)
            switch op {
            case .add: return .float(a + b)
            case .subtract: return .float(a - b)
            case .multiply: return .float(a * b)
            case .divide:
                if b == 0 { throw EvalError("division by zero") }
                return .float(a / b)
            case .intDivide, .modulo:
                throw EvalError("'\(op.rawValue)' needs integers, got \(l.typeName) and \(r.typeName)")
            default: break
            }
        default: break
        }
        throw EvalError("'\(op.rawValue)' needs numbers, got \(l.typeName) and \(r.typeName)")
    }

    private static func number(_ v: Value) -> Double {
        switch v {
        case .int(let i): return Double(i)
        case .float(let d): return d
        default: return .nan
        }
    }

    static func negate(_ v: Value) throws(EvalError) -> Value {
        switch v {
        case .undefined, .null: return .undefined
        case .int(let i): return i == .min ? .float(-Double(i)) : .int(-i)
        case .float(let d): return .float(-d)
        default: throw EvalError("'-' needs a number, got \(v.typeName)")
        }
    }

    /// A boolean operand of `and`/`or`/`not`.
    static func truth(_ v: Value, _ op: String) throws(EvalError) -> Bool {
        switch v {
        case .bool(let b): return b
        case .undefined, .null: return false
        default: throw EvalError("'\(op)' needs booleans, got \(v.typeName)")
        }
    }

    /// WHERE, INCASE and CASE WHEN pass only on `true` (EMQX).
    @inline(__always)
    static func passes(_ v: Value) -> Bool {
        if case .bool(true) = v { return true }
        return false
    }
}
