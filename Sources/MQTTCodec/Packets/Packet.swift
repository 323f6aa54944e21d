/// The MQTT protocol level carried in CONNECT.
public enum ProtocolVersion: UInt8, Sendable, Comparable {
    /// MQTT 3.1 ("MQIsdp", level 3): accepted and treated as 3.1.1.
    case v3_1 = 3
    /// MQTT 3.1.1 (level 4).
    case v3_1_1 = 4
    /// MQTT 5.0 (level 5).
    case v5 = 5

    public static func < (a: ProtocolVersion, b: ProtocolVersion) -> Bool { a.rawValue < b.rawValue }
}

/// Quality of service levels.
public enum QoS: UInt8, Sendable, Comparable {
    case atMostOnce = 0
    case atLeastOnce = 1
    case exactlyOnce = 2

    public static func < (a: QoS, b: QoS) -> Bool { a.rawValue < b.rawValue }
}

/// The fourteen (v5: fifteen) control packet types, by their fixed-header type nibble.
public enum PacketType: UInt8, Sendable {
    case connect = 1, connack, publish, puback, pubrec, pubrel, pubcomp
    case subscribe, suback, unsubscribe, unsuback, pingreq, pingresp, disconnect, auth
}

/// A decoded control packet.
public enum Packet: Sendable, Equatable {
    case connect(ConnectPacket)
    case connack(ConnAckPacket)
    case publish(PublishPacket)
    /// PUBACK, PUBREC, PUBREL and PUBCOMP share one shape.
    case puback(AckPacket)
    case pubrec(AckPacket)
    case pubrel(AckPacket)
    case pubcomp(AckPacket)
    case subscribe(SubscribePacket)
    case suback(SubAckPacket)
    case unsubscribe(UnsubscribePacket)
    case unsuback(UnsubAckPacket)
    case pingreq
    case pingresp
    case disconnect(DisconnectPacket)
    case auth(AuthPacket)

    public var type: PacketType {
        switch self {
        case .connect: .connect
        case .connack: .connack
        case .publish: .publish
        case .puback: .puback
        case .pubrec: .pubrec
        case .pubrel: .pubrel
        case .pubcomp: .pubcomp
        case .subscribe: .subscribe
        case .suback: .suback
        case .unsubscribe: .unsubscribe
        case .unsuback: .unsuback
        case .pingreq: .pingreq
        case .pingresp: .pingresp
        case .disconnect: .disconnect
        case .auth: .auth
        }
    }
}

/// The will message declared in CONNECT.
public struct Will: Sendable, Equatable {
    public var topic: String
    public var payload: [UInt8]
    public var qos: QoS
    public var retain: Bool
    /// v5 will properties: will delay interval, payload format, message expiry, content type,
    /// response topic, correlation data, user properties.
    public var properties: Properties {
        get { box.value }
        set {
            if isKnownUniquelyReferenced(&box) { box.value = newValue } else { box = PropertiesBox(newValue) }
        }
    }
    /// Properties are ~250 bytes and most wills have none, while every connection and session
    /// holds its `Will?` inline: boxed (copy on write), a property-less will shares one empty box.
    private var box: PropertiesBox

    public init(topic: String, payload: [UInt8], qos: QoS = .atMostOnce, retain: Bool = false,
                properties: Properties = Properties()) {
        self.topic = topic; self.payload = payload; self.qos = qos; self.retain = retain
        self.box = properties.isEmpty ? PropertiesBox.empty : PropertiesBox(properties)
    }

    public static func == (a: Will, b: Will) -> Bool {
        a.topic == b.topic && a.payload == b.payload && a.qos == b.qos && a.retain == b.retain
            && (a.box === b.box || a.box.value == b.box.value)
    }
}

/// Copy-on-write storage for `Will.properties`; mutated only while uniquely referenced.
final class PropertiesBox: @unchecked Sendable {
    var value: Properties
    init(_ value: Properties) { self.value = value }
    static let empty = PropertiesBox(Properties())
}

/// CONNECT (MQTT 3.1.1 §3.1, 5.0 §3.1).
public struct ConnectPacket: Sendable, Equatable {
    /// "MQTT" for levels 4 and 5, "MQIsdp" for level 3.
    public var protocolName: String
    public var protocolVersion: ProtocolVersion
    /// Clean Session (v3) / Clean Start (v5).
    public var cleanStart: Bool
    public var keepAlive: UInt16
    public var clientId: String
    public var will: Will?
    public var username: String?
    public var password: [UInt8]?
    public var properties: Properties

    public init(protocolVersion: ProtocolVersion = .v3_1_1, cleanStart: Bool = true, keepAlive: UInt16 = 60,
                clientId: String, will: Will? = nil, username: String? = nil, password: [UInt8]? = nil,
                properties: Properties = Properties()) {
        self.protocolName = protocolVersion == .v3_1 ? "MQIsdp" : "MQTT"
        self.protocolVersion = protocolVersion; self.cleanStart = cleanStart; self.keepAlive = keepAlive
        self.clientId = clientId; self.will = will; self.username = username; self.password = password
        self.properties = properties
    }
}

/// CONNACK. `reasonCode` is the v3 return code (0...5) or the v5 reason code.
public struct ConnAckPacket: Sendable, Equatable {
    public var sessionPresent: Bool
    public var reasonCode: ReasonCode
    public var properties: Properties

    public init(sessionPresent: Bool = false, reasonCode: ReasonCode = .success, properties: Properties = Properties()) {
        self.sessionPresent = sessionPresent; self.reasonCode = reasonCode; self.properties = properties
    }
}

/// PUBLISH.
public struct PublishPacket: Sendable, Equatable {
    public var dup: Bool
    public var qos: QoS
    public var retain: Bool
    /// May be empty on v5 when a topic alias stands in for it.
    public var topic: String
    /// Present only when qos > 0.
    public var packetId: UInt16
    public var properties: Properties
    public var payload: [UInt8]

    public init(dup: Bool = false, qos: QoS = .atMostOnce, retain: Bool = false, topic: String,
                packetId: UInt16 = 0, properties: Properties = Properties(), payload: [UInt8] = []) {
        self.dup = dup; self.qos = qos; self.retain = retain; self.topic = topic; self.packetId = packetId
        self.properties = properties; self.payload = payload
    }
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP. On v5 the reason code and properties are omitted on the wire
/// when they are success and empty.
public struct AckPacket: Sendable, Equatable {
    public var packetId: UInt16
    public var reasonCode: ReasonCode
    public var properties: Properties

    public init(packetId: UInt16, reasonCode: ReasonCode = .success, properties: Properties = Properties()) {
        self.packetId = packetId; self.reasonCode = reasonCode; self.properties = properties
    }
}

/// The subscription options byte (v3: only the QoS bits).
public struct SubscriptionOptions: Sendable, Equatable {
    public var qos: QoS
    public var noLocal: Bool
    public var retainAsPublished: Bool
    /// 0: send retained at subscribe; 1: only if the subscription is new; 2: never.
    public var retainHandling: UInt8

    public init(qos: QoS = .atMostOnce, noLocal: Bool = false, retainAsPublished: Bool = false, retainHandling: UInt8 = 0) {
        self.qos = qos; self.noLocal = noLocal; self.retainAsPublished = retainAsPublished
        self.retainHandling = retainHandling
    }
}

public struct Subscription: Sendable, Equatable {
    public var filter: String
    public var options: SubscriptionOptions

    public init(filter: String, options: SubscriptionOptions = SubscriptionOptions()) {
        self.filter = filter; self.options = options
    }
}

/// SUBSCRIBE.
public struct SubscribePacket: Sendable, Equatable {
    public var packetId: UInt16
    public var subscriptions: [Subscription]
    /// v5: subscription identifier and user properties.
    public var properties: Properties

    public init(packetId: UInt16, subscriptions: [Subscription], properties: Properties = Properties()) {
        self.packetId = packetId; self.subscriptions = subscriptions; self.properties = properties
    }
}

/// SUBACK: one reason code per subscription (v3: 0x00, 0x01, 0x02 or 0x80).
public struct SubAckPacket: Sendable, Equatable {
    public var packetId: UInt16
    public var reasonCodes: [ReasonCode]
    public var properties: Properties

    public init(packetId: UInt16, reasonCodes: [ReasonCode], properties: Properties = Properties()) {
        self.packetId = packetId; self.reasonCodes = reasonCodes; self.properties = properties
    }
}

/// UNSUBSCRIBE.
public struct UnsubscribePacket: Sendable, Equatable {
    public var packetId: UInt16
    public var filters: [String]
    public var properties: Properties

    public init(packetId: UInt16, filters: [String], properties: Properties = Properties()) {
        self.packetId = packetId; self.filters = filters; self.properties = properties
    }
}

/// UNSUBACK: v5 carries one reason code per filter; v3 carries none.
public struct UnsubAckPacket: Sendable, Equatable {
    public var packetId: UInt16
    public var reasonCodes: [ReasonCode]
    public var properties: Properties

    public init(packetId: UInt16, reasonCodes: [ReasonCode] = [], properties: Properties = Properties()) {
        self.packetId = packetId; self.reasonCodes = reasonCodes; self.properties = properties
    }
}

/// DISCONNECT (v3: no variable header).
public struct DisconnectPacket: Sendable, Equatable {
    public var reasonCode: ReasonCode
    public var properties: Properties

    public init(reasonCode: ReasonCode = .success, properties: Properties = Properties()) {
        self.reasonCode = reasonCode; self.properties = properties
    }
}

/// AUTH (v5 only).
public struct AuthPacket: Sendable, Equatable {
    public var reasonCode: ReasonCode
    public var properties: Properties

    public init(reasonCode: ReasonCode = .success, properties: Properties = Properties()) {
        self.reasonCode = reasonCode; self.properties = properties
    }
}
