/// What one rule evaluation reads: a published message or an event, with EMQX's field names.
/// Fields an event does not have keep their defaults and are rejected at compile time for rules
/// whose FROM cannot supply them. Build one with `.publish(…)` or an event factory.
public struct RuleInput: Sendable {
    public var event: RuleEvent
    /// Message id (EMQX uses a hex GUID; any unique text will do).
    public var id: String = ""
    public var clientid: String = ""
    /// nil renders as `null`.
    public var username: String?
    public var topic: String = ""
    public var qos: Int = 0
    public var retain: Bool = false
    public var dup: Bool = false
    /// Raw payload; JSON-decoded lazily, once per context, when a rule reads `payload.x`.
    public var payload: [UInt8] = []
    public var peerhost: String = ""
    /// Milliseconds since the Unix epoch when the event happened / the message arrived.
    public var timestamp: Int64 = 0
    public var publishReceivedAt: Int64 = 0
    /// MQTT 5 user properties in order (`pub_props.'User-Property'` is a map of them).
    public var userProperties: [(name: String, value: String)] = []
    public var node: String = "turnpike@127.0.0.1"
    public var peername: String = ""
    public var sockname: String = ""
    public var protoName: String = "MQTT"
    public var protoVer: Int = 4
    public var keepalive: Int = 0
    public var cleanStart: Bool = true
    public var expiryInterval: Int64 = 0
    public var connectedAt: Int64 = 0
    public var disconnectedAt: Int64 = 0
    public var reason: String = ""
    public var fromClientid: String = ""
    public var fromUsername: String?

    public init(event: RuleEvent) {
        self.event = event
    }

    /// A message publish (`FROM "cars/+/telemetry"`).
    public static func publish(id: String = "", clientid: String, username: String? = nil, topic: String,
                               qos: Int = 0, retain: Bool = false, dup: Bool = false, payload: [UInt8],
                               peerhost: String = "", timestamp: Int64, publishReceivedAt: Int64? = nil,
                               userProperties: [(name: String, value: String)] = []) -> RuleInput {
        var input = RuleInput(event: .messagePublish)
        input.id = id; input.clientid = clientid; input.username = username; input.topic = topic
        input.qos = qos; input.retain = retain; input.dup = dup; input.payload = payload
        input.peerhost = peerhost; input.timestamp = timestamp
        input.publishReceivedAt = publishReceivedAt ?? timestamp
        input.userProperties = userProperties
        return input
    }

    public static func clientConnected(clientid: String, username: String? = nil, peername: String,
                                       sockname: String, protoName: String = "MQTT", protoVer: Int,
                                       keepalive: Int, cleanStart: Bool, expiryInterval: Int64 = 0,
                                       connectedAt: Int64, timestamp: Int64? = nil) -> RuleInput {
        var input = RuleInput(event: .clientConnected)
        input.clientid = clientid; input.username = username; input.peername = peername
        input.sockname = sockname; input.protoName = protoName; input.protoVer = protoVer
        input.keepalive = keepalive; input.cleanStart = cleanStart; input.expiryInterval = expiryInterval
        input.connectedAt = connectedAt; input.timestamp = timestamp ?? connectedAt
        return input
    }

    /// `reason` uses EMQX's words: `normal`, `kicked`, `discarded`, `takenover`, `keepalive_timeout`, …
    public static func clientDisconnected(clientid: String, username: String? = nil, reason: String,
                                          peername: String = "", sockname: String = "",
                                          disconnectedAt: Int64, timestamp: Int64? = nil) -> RuleInput {
        var input = RuleInput(event: .clientDisconnected)
        input.clientid = clientid; input.username = username; input.reason = reason
        input.peername = peername; input.sockname = sockname
        input.disconnectedAt = disconnectedAt; input.timestamp = timestamp ?? disconnectedAt
        return input
    }

    /// `session_subscribed` or `session_unsubscribed`; `topic` is the filter.
    public static func session(_ event: RuleEvent, clientid: String, username: String? = nil,
                               peerhost: String = "", topic: String, qos: Int, timestamp: Int64) -> RuleInput {
        precondition(event == .sessionSubscribed || event == .sessionUnsubscribed)
        var input = RuleInput(event: event)
        input.clientid = clientid; input.username = username; input.peerhost = peerhost
        input.topic = topic; input.qos = qos; input.timestamp = timestamp
        return input
    }

    /// `message_delivered`, `message_acked` or `message_dropped` (with `reason`, e.g. `no_subscribers`).
    public static func messageEvent(_ event: RuleEvent, message: RuleInput, clientid: String,
                                    username: String? = nil, reason: String = "", timestamp: Int64) -> RuleInput {
        precondition(event == .messageDelivered || event == .messageAcked || event == .messageDropped)
        var input = message
        input.event = event
        input.fromClientid = message.clientid
        input.fromUsername = message.username
        if event != .messageDropped {
            input.clientid = clientid
            input.username = username
        }
        input.reason = reason
        input.timestamp = timestamp
        return input
    }
}
