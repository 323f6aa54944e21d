/// A built-in function resolved at compile time: its arity and its body as a plain function
/// value (fixed-arity shapes avoid building an argument array per call).
struct BuiltinFunction: Sendable {
    typealias Nullary = @Sendable () throws(EvalError) -> Value
    typealias Unary = @Sendable (Value) throws(EvalError) -> Value
    typealias Binary = @Sendable (Value, Value) throws(EvalError) -> Value
    typealias Ternary = @Sendable (Value, Value, Value) throws(EvalError) -> Value
    typealias Variadic = @Sendable ([Value]) throws(EvalError) -> Value

    enum Body: Sendable {
        case nullary(Nullary)
        case unary(Unary)
        case binary(Binary)
        case ternary(Ternary)
        /// Anything else; receives exactly the evaluated arguments.
        case variadic(Variadic)
    }

    let name: String
    let minArity: Int
    /// `Int.max` for open-ended functions like `concat`.
    let maxArity: Int
    let body: Body
    /// False for `now_*`, `uuid_v4`: never folded at compile time.
    let isPure: Bool

    init(_ name: String, _ body: Body, pure: Bool = true) {
        self.name = name
        self.body = body
        self.isPure = pure
        switch body {
        case .nullary: minArity = 0; maxArity = 0
        case .unary: minArity = 1; maxArity = 1
        case .binary: minArity = 2; maxArity = 2
        case .ternary: minArity = 3; maxArity = 3
        case .variadic: minArity = 0; maxArity = Int.max
        }
    }

    init(_ name: String, arity: ClosedRange<Int>, pure: Bool = true, _ body: @escaping Variadic) {
        self.name = name
        self.minArity = arity.lowerBound
        self.maxArity = arity.upperBound
        self.body = .variadic(body)
        self.isPure = pure
    }

    static func unary(_ name: String, _ f: @escaping Unary) -> BuiltinFunction { BuiltinFunction(name, .unary(f)) }
    static func binary(_ name: String, _ f: @escaping Binary) -> BuiltinFunction { BuiltinFunction(name, .binary(f)) }
    static func ternary(_ name: String, _ f: @escaping Ternary) -> BuiltinFunction { BuiltinFunction(name, .ternary(f)) }

    var arityDescription: String {
        if minArity == maxArity { return minArity == 1 ? "1 argument" : "\(minArity) arguments" }
        if maxArity == Int.max { return "at least \(minArity) argument\(minArity == 1 ? "" : "s")" }
        return "\(minArity) to \(maxArity) arguments"
    }
}
