import RuleEngine
import Synchronization

/// EMQX's per-rule counters, published under `$SYS/rules/<name>/…`.
public final class RuleMetrics: Sendable {
    /// The FROM matched.
    public let matched = Atomic<Int>(0)
    /// WHERE passed and rows were produced.
    public let passed = Atomic<Int>(0)
    /// failed = failed.exception + failed.no_result.
    public let failed = Atomic<Int>(0)
    public let failedException = Atomic<Int>(0)
    /// WHERE (or INCASE) left no row.
    public let failedNoResult = Atomic<Int>(0)
    public let actionsTotal = Atomic<Int>(0)
    public let actionsSuccess = Atomic<Int>(0)
    public let actionsFailed = Atomic<Int>(0)

    static func bump(_ a: borrowing Atomic<Int>) { a.wrappingAdd(1, ordering: .relaxed) }

    var snapshot: [(String, Int)] {
        [("matched", matched.load(ordering: .relaxed)), ("passed", passed.load(ordering: .relaxed)),
         ("failed", failed.load(ordering: .relaxed)), ("failed.exception", failedException.load(ordering: .relaxed)),
         ("failed.no_result", failedNoResult.load(ordering: .relaxed)),
         ("actions.total", actionsTotal.load(ordering: .relaxed)), ("actions.success", actionsSuccess.load(ordering: .relaxed)),
         ("actions.failed", actionsFailed.load(ordering: .relaxed))]
    }
}

/// A loaded, immutable set of rules with their topic index; replaced whole on reload (SIGHUP),
/// so a loop sees either the old set or the new one, never a mix.
public final class RuleSet: Sendable {
    public let rules: [Rule]
    let index: RuleIndex
    /// Rules listening to each `$events/…` topic.
    let eventRules: [RuleEvent: [Int]]
    public let metrics: [RuleMetrics]
    /// Whether any rule listens to message_delivered / message_acked / message_dropped: checked
    /// per delivery, so a plain Bool rather than a dictionary look-up.
    let listensToMessageEvents: Bool

    public init(rules: [Rule]) {
        self.rules = rules
        index = RuleIndex(filters: rules.map { r in r.filters.filter { RuleEvent(eventTopic: $0) == nil } })
        var events: [RuleEvent: [Int]] = [:]
        for (i, r) in rules.enumerated() {
            for e in r.events { events[e, default: []].append(i) }
        }
        eventRules = events
        listensToMessageEvents = events[.messageDelivered] != nil || events[.messageAcked] != nil || events[.messageDropped] != nil
        metrics = rules.map { _ in RuleMetrics() }
    }

    public static let empty = RuleSet(rules: [])
}
