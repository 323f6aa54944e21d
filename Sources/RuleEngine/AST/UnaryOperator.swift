/// Prefix operators: `NOT x` and `-x`.
public enum UnaryOperator: String, Sendable {
    case not = "NOT"
    case negate = "-"
}
