/// One `INTO` target as written: `republish(topic = '…', qos = 1)`, `kafka.fleet(…)`.
public struct ActionCall: Sendable, CustomStringConvertible {
    /// `republish`, `log`, or the bridge kind (`kafka`, `postgres`, `webhook`).
    public var name: String
    /// The bridge name after the dot, if any.
    public var bridge: String?
    public var arguments: [ActionArgument]
    public var location: SourceLocation

    public var description: String {
        let head = bridge.map { "\(name).\($0)" } ?? name
        return "\(head)(\(arguments.map(\.description).joined(separator: ", ")))"
    }
}

/// `name = literal` inside an action's parentheses.
public struct ActionArgument: Sendable, CustomStringConvertible {
    public var name: String
    public var value: Literal
    public var location: SourceLocation
    /// Where the value starts (a template error points inside it).
    public var valueLocation: SourceLocation

    public var description: String { "\(name) = \(value)" }
}
