import MQTTCodec

/// Counts per QoS level.
public struct QoSCounts: Sendable {
    public var qos0 = 0
    public var qos1 = 0
    public var qos2 = 0

    public init() {}

    @inline(__always)
    mutating func add(_ qos: QoS, _ n: Int = 1) {
        switch qos {
        case .atMostOnce: qos0 &+= n
        case .atLeastOnce: qos1 &+= n
        case .exactlyOnce: qos2 &+= n
        }
    }

    public subscript(qos: Int) -> Int { qos == 0 ? qos0 : qos == 1 ? qos1 : qos2 }

    static func + (a: QoSCounts, b: QoSCounts) -> QoSCounts {
        var r = a
        r.qos0 &+= b.qos0; r.qos1 &+= b.qos1; r.qos2 &+= b.qos2
        return r
    }
}

/// Counters of one loop, bumped on that loop's thread with plain adds (no atomics, no shared
/// cache lines) and read by the admin listener through the loop's `execute`, which sums the
/// loops' copies on each scrape.
public struct LoopCounters: Sendable {
    /// Application messages (PUBLISH) accepted from clients, and their payload bytes.
    public var messagesReceived = QoSCounts()
    public var payloadBytesReceived = QoSCounts()
    /// Application messages sent to clients, and their payload bytes.
    public var messagesSent = QoSCounts()
    public var payloadBytesSent = QoSCounts()
    /// Deliveries dropped: a session's queue at `max_queued_messages`, a client not reading
    /// (QoS 0 with 8 MiB pending), a message expired before it could leave.
    public var droppedQueueFull = 0
    public var droppedClientSlow = 0
    public var droppedExpired = 0
    /// Published messages no session subscribed to.
    public var droppedNoSubscribers = 0
    /// PUBLISH packets the ACL refused.
    public var droppedDenied = 0
    /// TLS handshakes completed and failed.
    public var tlsHandshakes = 0
    public var tlsHandshakeFailures = 0
    /// CONNECTs refused for their credentials (or anonymous where that is not allowed).
    public var authFailures = 0
    /// CONNECTs refused by a ban.
    public var bannedRefusals = 0

    public init() {}

    public static func + (a: LoopCounters, b: LoopCounters) -> LoopCounters {
        var r = a
        r.messagesReceived = a.messagesReceived + b.messagesReceived
        r.payloadBytesReceived = a.payloadBytesReceived + b.payloadBytesReceived
        r.messagesSent = a.messagesSent + b.messagesSent
        r.payloadBytesSent = a.payloadBytesSent + b.payloadBytesSent
        r.droppedQueueFull &+= b.droppedQueueFull
        r.droppedClientSlow &+= b.droppedClientSlow
        r.droppedExpired &+= b.droppedExpired
        r.droppedNoSubscribers &+= b.droppedNoSubscribers
        r.droppedDenied &+= b.droppedDenied
        r.tlsHandshakes &+= b.tlsHandshakes
        r.tlsHandshakeFailures &+= b.tlsHandshakeFailures
        r.authFailures &+= b.authFailures
        r.bannedRefusals &+= b.bannedRefusals
        return r
    }
}
