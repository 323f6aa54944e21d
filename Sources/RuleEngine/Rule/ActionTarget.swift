/// Where an action sends the rows.
public enum ActionTarget: Sendable, Hashable {
    /// Publish back into the broker.
    case republish
    /// Write the row to the broker's log.
    case log
    /// A bridge named in the config file: `kind` is `kafka`, `postgres` or `webhook`.
    case bridge(kind: String, name: String)
}
