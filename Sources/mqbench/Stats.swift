import Histogram
import Synchronization

/// Counters one loop updates and the main thread reads once a second (relaxed atomics on a
/// per-loop object, so loops never share a cache line for them).
final class LoopStats: Sendable {
    let started = Atomic<Int>(0)
    let open = Atomic<Int>(0)
    let connected = Atomic<Int>(0)
    let connectOK = Atomic<Int>(0)
    let connectFailed = Atomic<Int>(0)
    let subscribed = Atomic<Int>(0)
    let sent = Atomic<Int>(0)
    let acked = Atomic<Int>(0)
    let publishFailed = Atomic<Int>(0)
    let received = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    /// Publishers that reached their limit with nothing in flight, or that closed.
    let finished = Atomic<Int>(0)
    let commandsSent = Atomic<Int>(0)
    let commandsReceived = Atomic<Int>(0)
    let commandsRoundTripped = Atomic<Int>(0)

    @inline(__always) static func inc(_ a: borrowing Atomic<Int>, _ n: Int = 1) {
        a.wrappingAdd(n, ordering: .relaxed)
    }
}

/// A snapshot summed over loops.
struct Totals {
    var started = 0, open = 0, connected = 0, connectOK = 0, connectFailed = 0, subscribed = 0
    var sent = 0, acked = 0, publishFailed = 0, received = 0, errors = 0, finished = 0
    var commandsSent = 0, commandsReceived = 0, commandsRoundTripped = 0

    init() {}

    init(_ all: [LoopStats]) {
        for s in all {
            started += s.started.load(ordering: .relaxed)
            open += s.open.load(ordering: .relaxed)
            connected += s.connected.load(ordering: .relaxed)
            connectOK += s.connectOK.load(ordering: .relaxed)
            connectFailed += s.connectFailed.load(ordering: .relaxed)
            subscribed += s.subscribed.load(ordering: .relaxed)
            sent += s.sent.load(ordering: .relaxed)
            acked += s.acked.load(ordering: .relaxed)
            publishFailed += s.publishFailed.load(ordering: .relaxed)
            received += s.received.load(ordering: .relaxed)
            errors += s.errors.load(ordering: .relaxed)
            finished += s.finished.load(ordering: .relaxed)
            commandsSent += s.commandsSent.load(ordering: .relaxed)
            commandsReceived += s.commandsReceived.load(ordering: .relaxed)
            commandsRoundTripped += s.commandsRoundTripped.load(ordering: .relaxed)
        }
    }
}

/// Latencies of the messages sent in one interval: how many, and the largest (µs).
struct SecondStats {
    var count: UInt64 = 0
    var max: UInt64 = 0
    @inline(__always) mutating func add(_ v: UInt64) {
        count &+= 1
        if v > max { max = v }
    }
}

/// Microsecond latencies up to one hour, three significant digits.
typealias LatencyHistogram = Histogram<UInt64>

func makeHistogram() -> LatencyHistogram {
    LatencyHistogram(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
}

extension Histogram where Count == UInt64 {
    /// Records, clamping to the trackable range.
    @inline(__always) mutating func recordClamped(_ v: UInt64) {
        _ = record(Swift.min(Swift.max(v, 1), highestTrackableValue))
    }
}
