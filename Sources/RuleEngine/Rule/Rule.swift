/// A compiled rule: where it listens, what it outputs, where the rows go.
public struct Rule: Sendable {
    public let name: String
    /// The file it came from (as given to `RuleParser.parse`).
    public let file: String
    /// The parsed form, printable back to SQL.
    public let statement: RuleStatement
    /// Topic filters of FROM (published messages); `$events/…` sources are in `events`.
    public let topicFilters: [TopicFilter]
    /// Every input kind the rule listens to (`.messagePublish` when it has topic filters).
    public let events: Set<RuleEvent>
    public let actions: [Action]
    let whereClause: CompiledExpression?
    let projection: CompiledProjection
    let source: SourceText

    init(name: String, file: String, statement: RuleStatement, filters: [TopicFilter], events: Set<RuleEvent>,
         actions: [Action], whereClause: CompiledExpression?, projection: CompiledProjection, source: SourceText) {
        self.name = name
        self.file = file
        self.statement = statement
        self.topicFilters = filters
        self.events = events
        self.actions = actions
        self.whereClause = whereClause
        self.projection = projection
        self.source = source
    }

    /// FROM as written (topic filters and `$events/…` topics).
    public var filters: [String] { statement.sources.map(\.filter) }

    /// Whether this rule should see `input` (its topic matches a filter, or it is a listened event).
    public func accepts(_ input: RuleInput) -> Bool {
        if input.event == .messagePublish {
            return topicFilters.contains { $0.matches(input.topic) }
        }
        return events.contains(input.event)
    }
}
