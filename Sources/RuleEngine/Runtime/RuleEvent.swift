/// What a rule input describes: a published message, or one of EMQX's `$events/…` topics.
public enum RuleEvent: String, Sendable, CaseIterable {
    case messagePublish = "message.publish"
    case clientConnected = "client.connected"
    case clientDisconnected = "client.disconnected"
    case sessionSubscribed = "session.subscribed"
    case sessionUnsubscribed = "session.unsubscribed"
    case messageDelivered = "message.delivered"
    case messageAcked = "message.acked"
    case messageDropped = "message.dropped"

    /// The `FROM` topic that selects this event (nil for published messages, which use filters).
    public var topic: String? {
        switch self {
        case .messagePublish: return nil
        case .clientConnected: return "$events/client_connected"
        case .clientDisconnected: return "$events/client_disconnected"
        case .sessionSubscribed: return "$events/session_subscribed"
        case .sessionUnsubscribed: return "$events/session_unsubscribed"
        case .messageDelivered: return "$events/message_delivered"
        case .messageAcked: return "$events/message_acked"
        case .messageDropped: return "$events/message_dropped"
        }
    }

    /// The event a `$events/…` FROM topic names.
    public init?(eventTopic: String) {
        guard let e = RuleEvent.allCases.first(where: { $0.topic == eventTopic }) else { return nil }
        self = e
    }

    /// The fields this input offers, in the order `SELECT *` lists them (EMQX's columns).
    public var fields: [Field] {
        switch self {
        case .messagePublish:
            return [.id, .clientid, .username, .payload, .peerhost, .topic, .qos, .retain, .flags,
                    .pubProps, .timestamp, .publishReceivedAt, .node, .event]
        case .clientConnected:
            return [.clientid, .username, .peername, .sockname, .protoName, .protoVer, .keepalive,
                    .cleanStart, .expiryInterval, .connectedAt, .timestamp, .node, .event]
        case .clientDisconnected:
            return [.clientid, .username, .reason, .peername, .sockname, .protoName, .protoVer,
                    .disconnectedAt, .timestamp, .node, .event]
        case .sessionSubscribed, .sessionUnsubscribed:
            return [.clientid, .username, .peerhost, .topic, .qos, .timestamp, .node, .event]
        case .messageDelivered, .messageAcked:
            return [.id, .fromClientid, .fromUsername, .clientid, .username, .payload, .peerhost, .topic,
                    .qos, .flags, .pubProps, .timestamp, .publishReceivedAt, .node, .event]
        case .messageDropped:
            return [.id, .reason, .clientid, .username, .payload, .peerhost, .topic, .qos, .flags,
                    .pubProps, .timestamp, .publishReceivedAt, .node, .event]
        }
    }
}
