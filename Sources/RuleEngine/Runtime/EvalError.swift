/// An evaluation failure inside one expression; the rule turns it into a `RuleError` of kind
/// `.evaluation` with the position of the failing call or operator.
struct EvalError: Error, Sendable {
    var message: String
    var location: SourceLocation?

    init(_ message: String, at location: SourceLocation? = nil) {
        self.message = message
        self.location = location
    }

    static func type(_ function: String, _ expected: String, _ got: Value) -> EvalError {
        EvalError("\(function): expected \(expected), got \(got.typeName)")
    }
}
