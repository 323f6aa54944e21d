import Synchronization

/// One bridge's counters, EMQX's names. Written by the bridge's thread (and `matched` /
/// `dropped` by the loops that submit), read by `$SYS` from loop 0. At every instant
/// `matched = success + failed + dropped + inflight + queuing`: a record moves from one
/// state to the next with the second counter raised before the first is lowered, so a reader
/// may see it counted twice for an instant but never lose it.
final class BridgeMetrics: @unchecked Sendable {
    let matched = Atomic<Int>(0)
    let success = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    let retried = Atomic<Int>(0)
    let dropped = Atomic<Int>(0)
    let droppedQueueFull = Atomic<Int>(0)
    let droppedExpired = Atomic<Int>(0)
    let inflight = Atomic<Int>(0)
    let queuing = Atomic<Int>(0)
    let queuingBytes = Atomic<Int>(0)
    /// 0 connecting, 1 connected, 2 disconnected.
    let status = Atomic<Int>(0)

    enum Status: Int { case connecting = 0, connected = 1, disconnected = 2 }

    static func add(_ a: borrowing Atomic<Int>, _ n: Int) { a.wrappingAdd(n, ordering: .relaxed) }

    var snapshot: [(name: String, value: Int)] {
        [("matched", matched.load(ordering: .relaxed)), ("success", success.load(ordering: .relaxed)),
         ("failed", failed.load(ordering: .relaxed)), ("retried", retried.load(ordering: .relaxed)),
         ("dropped", dropped.load(ordering: .relaxed)),
         ("dropped.queue_full", droppedQueueFull.load(ordering: .relaxed)),
         ("dropped.expired", droppedExpired.load(ordering: .relaxed)),
         ("inflight", inflight.load(ordering: .relaxed)), ("queuing", queuing.load(ordering: .relaxed)),
         ("queuing_bytes", queuingBytes.load(ordering: .relaxed)), ("status", status.load(ordering: .relaxed))]
    }
}
