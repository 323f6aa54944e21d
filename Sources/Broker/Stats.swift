import Synchronization

/// Broker-wide counters for `$SYS`. Relaxed atomics: each is bumped by the loop that saw the
/// event and read only by the `$SYS` publisher.
public final class BrokerStats: Sendable {
    public let clientsConnected = Atomic<Int>(0)
    /// Accepted sockets not yet closed, CONNECTed or not (what max_connections bounds).
    public let socketsOpen = Atomic<Int>(0)
    /// Sessions that exist, connected or not (mosquitto's clients/total).
    public let sessions = Atomic<Int>(0)
    public let clientsMaximum = Atomic<Int>(0)
    public let messagesReceived = Atomic<Int>(0)
    public let messagesSent = Atomic<Int>(0)
    public let publishReceived = Atomic<Int>(0)
    public let publishSent = Atomic<Int>(0)
    public let publishDropped = Atomic<Int>(0)
    /// PUBLISH packets refused by the ACL.
    public let publishDenied = Atomic<Int>(0)
    /// Times a client was slowed down for publishing past max_publish_rate / max_publish_bytes_rate.
    public let publishThrottled = Atomic<Int>(0)
    public let bytesReceived = Atomic<Int>(0)
    public let bytesSent = Atomic<Int>(0)
    public let subscriptions = Atomic<Int>(0)
    public let retained = Atomic<Int>(0)
    public let messagesStored = Atomic<Int>(0)

    public init() {}

    @inline(__always)
    static func add(_ a: borrowing Atomic<Int>, _ n: Int) {
        a.wrappingAdd(n, ordering: .relaxed)
    }
}
