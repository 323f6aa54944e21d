import RuleEngine
import Synchronization

/// EMQX's per-rule counters, published under `$SYS/rules/<name>/…` and on `/metrics`. Each loop
/// bumps a slot of its own (a relaxed add on a cache line no other loop writes); readers sum the
/// slots.
public final class RuleMetrics: Sendable {
    public enum Counter: Int, CaseIterable, Sendable {
        /// The FROM matched.
        case matched
        /// WHERE passed and rows were produced.
        case passed
        /// failed = failed.exception + failed.no_result.
        case failed
        case failedException
        /// WHERE (or INCASE) left no row.
        case failedNoResult
        case actionsTotal
        case actionsSuccess
        case actionsFailed

        /// EMQX's name.
        public var name: String {
            switch self {
            case .matched: "matched"
            case .passed: "passed"
            case .failed: "failed"
            case .failedException: "failed.exception"
            case .failedNoResult: "failed.no_result"
            case .actionsTotal: "actions.total"
            case .actionsSuccess: "actions.success"
            case .actionsFailed: "actions.failed"
            }
        }
    }

    /// One loop's counters, padded to its own 128 bytes (two cache lines, as the prefetcher pairs them).
    final class Slot: Sendable {
        let matched = Atomic<Int>(0), passed = Atomic<Int>(0), failed = Atomic<Int>(0)
        let failedException = Atomic<Int>(0), failedNoResult = Atomic<Int>(0)
        let actionsTotal = Atomic<Int>(0), actionsSuccess = Atomic<Int>(0), actionsFailed = Atomic<Int>(0)
        private let padding = (0, 0, 0, 0, 0, 0)

        func bump(_ c: Counter) {
            switch c {
            case .matched: matched.wrappingAdd(1, ordering: .relaxed)
            case .passed: passed.wrappingAdd(1, ordering: .relaxed)
            case .failed: failed.wrappingAdd(1, ordering: .relaxed)
            case .failedException: failedException.wrappingAdd(1, ordering: .relaxed)
            case .failedNoResult: failedNoResult.wrappingAdd(1, ordering: .relaxed)
            case .actionsTotal: actionsTotal.wrappingAdd(1, ordering: .relaxed)
            case .actionsSuccess: actionsSuccess.wrappingAdd(1, ordering: .relaxed)
            case .actionsFailed: actionsFailed.wrappingAdd(1, ordering: .relaxed)
            }
        }

        func value(_ c: Counter) -> Int {
            switch c {
            case .matched: matched.load(ordering: .relaxed)
            case .passed: passed.load(ordering: .relaxed)
            case .failed: failed.load(ordering: .relaxed)
            case .failedException: failedException.load(ordering: .relaxed)
            case .failedNoResult: failedNoResult.load(ordering: .relaxed)
            case .actionsTotal: actionsTotal.load(ordering: .relaxed)
            case .actionsSuccess: actionsSuccess.load(ordering: .relaxed)
            case .actionsFailed: actionsFailed.load(ordering: .relaxed)
            }
        }
    }

    let slots: [Slot]

    init(loops: Int) {
        slots = (0..<max(1, loops)).map { _ in Slot() }
    }

    @inline(__always)
    func bump(_ c: Counter, loop: Int) {
        slots[loop % slots.count].bump(c)
    }

    /// The sum over the loops (any thread).
    public func value(_ c: Counter) -> Int {
        slots.reduce(0) { $0 &+ $1.value(c) }
    }

    /// Every counter by EMQX's name.
    public var snapshot: [(String, Int)] {
        Counter.allCases.map { ($0.name, value($0)) }
    }
}

/// A loaded, immutable set of rules with their topic index; replaced whole on reload (SIGHUP)
/// or when the admin API enables or disables a rule, so a loop sees either the old set or the
/// new one, never a mix.
public final class RuleSet: Sendable {
    public let rules: [Rule]
    let index: RuleIndex
    /// Rules listening to each `$events/…` topic.
    let eventRules: [RuleEvent: [Int]]
    public let metrics: [RuleMetrics]
    /// Whether each rule runs; a disabled one keeps its place, its metrics and its SQL.
    public let enabled: [Bool]
    /// Whether any rule listens to message_delivered / message_acked / message_dropped: checked
    /// per delivery, so a plain Bool rather than a dictionary look-up.
    let listensToMessageEvents: Bool

    /// - Parameters:
    ///   - loops: how many loops bump the metrics (each gets its own slot).
    public convenience init(rules: [Rule], loops: Int = 1) {
        self.init(rules: rules, metrics: rules.map { _ in RuleMetrics(loops: loops) },
                  enabled: rules.map { _ in true })
    }

    init(rules: [Rule], metrics: [RuleMetrics], enabled: [Bool]) {
        self.rules = rules
        self.metrics = metrics
        self.enabled = enabled
        index = RuleIndex(filters: rules.enumerated().map { i, r in
            enabled[i] ? r.filters.filter { RuleEvent(eventTopic: $0) == nil } : []
        })
        var events: [RuleEvent: [Int]] = [:]
        for (i, r) in rules.enumerated() where enabled[i] {
            for e in r.events { events[e, default: []].append(i) }
        }
        eventRules = events
        listensToMessageEvents = events[.messageDelivered] != nil || events[.messageAcked] != nil || events[.messageDropped] != nil
    }

    /// The same rules and metrics with `enabled` flags from `disabled` (rule names).
    func with(disabled: Set<String>) -> RuleSet {
        RuleSet(rules: rules, metrics: metrics, enabled: rules.map { !disabled.contains($0.name) })
    }

    public static let empty = RuleSet(rules: [])
}
