import MQTTCodec
import Synchronization

/// An application message as it travels through the broker: decoded once, its payload copied
/// once, then shared (by reference) by every delivery, the retained store and the rule engine.
public final class Message: @unchecked Sendable {
    public let topic: String
    public let payload: [UInt8]
    /// QoS the publisher used; each delivery is capped by the subscription's QoS.
    public let qos: QoS
    public let retain: Bool
    /// The properties passed through to subscribers unchanged (payload format, content type,
    /// response topic, correlation data, user properties). Per-delivery ones are added when sending.
    public let properties: Properties
    /// Monotonic millisecond deadline from the Message Expiry Interval, or nil.
    public let expiresAt: UInt64?
    /// The publishing session's identity, for No Local.
    public let publisher: ObjectIdentifier?
    public let publisherClientId: String
    /// The publisher's user name and address, for the rule engine's `username` and `peerhost`.
    public let publisherUsername: String?
    public let peerhost: String
    /// Wall-clock seconds at receipt.
    public let receivedAt: Int64
    /// Its record in the durable store, shared by every stored delivery of it (Persistence).
    let storeRef = Atomic<UInt64>(0)

    public init(topic: String, payload: [UInt8], qos: QoS, retain: Bool, properties: Properties,
                expiresAt: UInt64?, publisher: ObjectIdentifier?, publisherClientId: String, receivedAt: Int64,
                publisherUsername: String? = nil, peerhost: String = "") {
        self.publisherUsername = publisherUsername; self.peerhost = peerhost
        self.topic = topic; self.payload = payload; self.qos = qos; self.retain = retain
        self.properties = properties; self.expiresAt = expiresAt; self.publisher = publisher
        self.publisherClientId = publisherClientId; self.receivedAt = receivedAt
    }

    /// The same publication, as far as a subscriber can tell (a session's handover between
    /// nodes merges what came both ways).
    func sameContent(as o: Message) -> Bool {
        topic == o.topic && qos == o.qos && payload == o.payload && publisherClientId == o.publisherClientId
    }

    @inline(__always)
    public func isExpired(now: UInt64) -> Bool {
        if let e = expiresAt { return now >= e }
        return false
    }

    /// Seconds left of the Message Expiry Interval, rounded up, for the copy sent at `now`.
    func remainingExpiry(now: UInt64) -> UInt32? {
        guard let e = expiresAt else { return nil }
        if now >= e { return 0 }
        return UInt32((e - now + 999) / 1000)
    }

    /// Keeps only the properties a subscriber receives as published (MQTT 5.0 §3.3.2.3).
    static func passthrough(_ p: Properties) -> Properties {
        var out = Properties()
        out.payloadFormatIndicator = p.payloadFormatIndicator
        out.contentType = p.contentType
        out.responseTopic = p.responseTopic
        out.correlationData = p.correlationData
        out.userProperties = p.userProperties
        return out
    }
}
