/// Binding powers of rule SQL's operators, loosest first; the one table the Pratt loop in
/// `Parser+Expression.swift` consults. Binary operators are left-associative.
///
///     OR  <  AND  <  NOT (prefix)  <  = != <> < <= > >= =~  <  + -  <  * / DIV MOD  <  - (prefix)
///
/// Postfix `.field` and `[index]` bind tightest of all and are parsed with the primary.
enum Precedence: Int, Comparable {
    case lowest = 0
    case or
    case and
    case not
    case comparison
    case additive
    case multiplicative
    case prefix

    static func < (a: Precedence, b: Precedence) -> Bool { a.rawValue < b.rawValue }

    /// The infix operator a token spells and how tightly it binds, or nil if it is not one.
    static func infix(_ kind: Token.Kind) -> (BinaryOperator, Precedence)? {
        switch kind {
        case .keyword(.or): return (.or, .or)
        case .keyword(.and): return (.and, .and)
        case .equal: return (.equal, .comparison)
        case .notEqual: return (.notEqual, .comparison)
        case .less: return (.less, .comparison)
        case .lessEqual: return (.lessEqual, .comparison)
        case .greater: return (.greater, .comparison)
        case .greaterEqual: return (.greaterEqual, .comparison)
        case .match: return (.match, .comparison)
        case .plus: return (.add, .additive)
        case .minus: return (.subtract, .additive)
        case .star: return (.multiply, .multiplicative)
        case .slash: return (.divide, .multiplicative)
        case .keyword(.div): return (.intDivide, .multiplicative)
        case .keyword(.mod): return (.modulo, .multiplicative)
        default: return nil
        }
    }
}
