/// A parsed rule file: `CREATE RULE name AS <query> INTO <actions>;`.
public struct RuleStatement: Sendable, CustomStringConvertible {
    public enum Projection: Sendable {
        case select([SelectItem])
        /// `FOREACH expr [AS name] [DO items] [INCASE cond]`.
        case foreach(Expression, itemName: String?, columns: [SelectItem]?, incase: Expression?)
    }

    public var name: String
    public var nameLocation: SourceLocation
    public var projection: Projection
    public var sources: [(filter: String, location: SourceLocation)]
    public var whereClause: Expression?
    public var actions: [ActionCall]

    public var description: String {
        var s = "CREATE RULE \(name) AS "
        switch projection {
        case .select(let items):
            s += "SELECT " + items.map(\.description).joined(separator: ", ")
        case .foreach(let e, let itemName, let columns, let incase):
            s += "FOREACH \(e)"
            if let itemName { s += " AS \(itemName)" }
            if let columns { s += " DO " + columns.map(\.description).joined(separator: ", ") }
            if let incase { s += " INCASE \(incase)" }
        }
        s += " FROM " + sources.map { "\"\($0.filter)\"" }.joined(separator: ", ")
        if let whereClause { s += " WHERE \(whereClause)" }
        s += " INTO " + actions.map(\.description).joined(separator: ", ") + ";"
        return s
    }
}
