/// One column of SELECT or DO: `*`, or an expression with an optional `AS alias`.
public struct SelectItem: Sendable, CustomStringConvertible {
    public enum Kind: Sendable {
        case all
        case expression(Expression, alias: String?, text: String)
    }

    public var kind: Kind
    public var location: SourceLocation

    public var description: String {
        switch kind {
        case .all: return "*"
        case .expression(let e, let alias, _):
            return alias.map { "\(e) AS \($0)" } ?? e.description
        }
    }
}
