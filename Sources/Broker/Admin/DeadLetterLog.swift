/// A dead letter as the admin API shows it: where it went (`$dlq/rules/<rule>`,
/// `$dlq/bridges/<kind>.<name>`), why, and where it came from.
public struct DeadLetterInfo: Sendable {
    public var topic: String
    public var error: String
    /// The rule that produced it (a bridge's record) or failed on it.
    public var rule: String
    /// The topic of the message a rule failed on; empty for a bridge's record.
    public var originTopic: String
    public var clientId: String
    public var payloadBytes: Int
    /// Wall-clock ms.
    public var at: Int64
}

/// One loop's dead letters: how many went to each `$dlq` topic, and the last `capacity` of
/// them in a ring. Loop-confined like the rest of `LoopContext` (written by the loop that
/// publishes the dead letter, read by the admin API through `execute`), so it needs no lock.
/// Dead letters are the failure path: the ordinary PUBLISH path never writes here.
struct DeadLetterLog {
    static let capacity = 32

    private(set) var counts: [String: Int] = [:]
    private var ring: [DeadLetterInfo] = []
    /// Where the next entry goes once the ring is full.
    private var next = 0

    mutating func record(_ d: DeadLetterInfo) {
        counts[d.topic, default: 0] += 1
        if ring.count < Self.capacity {
            ring.append(d)
        } else {
            ring[next] = d
            next = (next + 1) % Self.capacity
        }
    }

    /// Oldest first.
    var recent: [DeadLetterInfo] { Array(ring[next...] + ring[..<next]) }
}

/// Every loop's dead letters, merged.
public struct DeadLetterSummary: Sendable {
    /// `$dlq` topic → dead letters since start.
    public var counts: [String: Int]
    /// The most recent ones, newest first (at most `DeadLetterLog.capacity` per loop).
    public var recent: [DeadLetterInfo]
}

extension Broker {
    /// Dead letters by `$dlq` topic and the latest of them, from every loop that answers.
    public func deadLetters(timeoutMilliseconds: Int = 1000) -> DeadLetterSummary {
        let answers = askLoops(timeoutMilliseconds: timeoutMilliseconds) { ctx in (ctx.deadLetters.counts, ctx.deadLetters.recent) }
        var counts: [String: Int] = [:]
        var recent: [DeadLetterInfo] = []
        for case let (c, r)? in answers {
            counts.merge(c, uniquingKeysWith: +)
            recent += r
        }
        recent.sort { $0.at > $1.at }
        return DeadLetterSummary(counts: counts, recent: recent)
    }
}
