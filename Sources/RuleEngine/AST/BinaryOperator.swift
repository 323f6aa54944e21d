/// Infix operators of rule SQL. Their binding powers live in `Parser/Precedence.swift`.
public enum BinaryOperator: String, Sendable, CaseIterable {
    case or = "OR", and = "AND"
    case equal = "=", notEqual = "!=", less = "<", lessEqual = "<=", greater = ">", greaterEqual = ">="
    case match = "=~"
    case add = "+", subtract = "-", multiply = "*", divide = "/", intDivide = "DIV", modulo = "MOD"
}
