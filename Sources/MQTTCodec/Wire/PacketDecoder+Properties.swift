/// Where a v5 property block sits; decides which property identifiers may appear (5.0 §2.2.2.2, Table 2-4).
enum PropertyContext: Sendable {
    case connect, will, connack, publish, ack, subscribe, suback, unsubscribe, unsuback, disconnect, auth

    var name: String {
        switch self {
        case .connect: "CONNECT"
        case .will: "CONNECT will properties"
        case .connack: "CONNACK"
        case .publish: "PUBLISH"
        case .ack: "PUBACK/PUBREC/PUBREL/PUBCOMP"
        case .subscribe: "SUBSCRIBE"
        case .suback: "SUBACK"
        case .unsubscribe: "UNSUBSCRIBE"
        case .unsuback: "UNSUBACK"
        case .disconnect: "DISCONNECT"
        case .auth: "AUTH"
        }
    }

    /// Bit `id` is set when property `id` may appear here.
    var allowed: UInt64 {
        switch self {
        case .connect:
            Self.mask(.sessionExpiryInterval, .authenticationMethod, .authenticationData, .requestProblemInformation,
                      .requestResponseInformation, .receiveMaximum, .topicAliasMaximum, .userProperty,
                      .maximumPacketSize)
        case .will:
            Self.mask(.payloadFormatIndicator, .messageExpiryInterval, .contentType, .responseTopic,
                      .correlationData, .willDelayInterval, .userProperty)
        case .connack:
            Self.mask(.sessionExpiryInterval, .assignedClientIdentifier, .serverKeepAlive, .authenticationMethod,
                      .authenticationData, .responseInformation, .serverReference, .reasonString,
                      .receiveMaximum, .topicAliasMaximum, .maximumQoS, .retainAvailable, .userProperty,
                      .maximumPacketSize, .wildcardSubscriptionAvailable, .subscriptionIdentifierAvailable,
                      .sharedSubscriptionAvailable)
        case .publish:
            Self.mask(.payloadFormatIndicator, .messageExpiryInterval, .contentType, .responseTopic,
                      .correlationData, .subscriptionIdentifier, .topicAlias, .userProperty)
        case .ack, .suback, .unsuback:
            Self.mask(.reasonString, .userProperty)
        case .subscribe:
            Self.mask(.subscriptionIdentifier, .userProperty)
        case .unsubscribe:
            Self.mask(.userProperty)
        case .disconnect:
            Self.mask(.sessionExpiryInterval, .serverReference, .reasonString, .userProperty)
        case .auth:
            Self.mask(.authenticationMethod, .authenticationData, .reasonString, .userProperty)
        }
    }

    private static func mask(_ ids: PropertyIdentifier...) -> UInt64 {
        var m: UInt64 = 0
        for id in ids { m |= 1 << UInt64(id.rawValue) }
        return m
    }
}

extension PacketDecoder {
    /// Reads a property length and that many bytes of properties (5.0 §2.2.2).
    ///
    /// An unknown identifier, or one not allowed in `context`, is a Malformed Packet (§2.2.2.2);
    /// a property given twice is a Protocol Error, except User Property and, in PUBLISH,
    /// Subscription Identifier (which a server may repeat towards a client, §3.3.2.3.8).
    static func decodeProperties(_ r: inout ByteReader, _ context: PropertyContext) throws(MQTTDecodeError) -> Properties {
        let length = try r.readVarInt("property length")
        var p = Properties()
        if length == 0 { return p }
        var pr = try r.subReader(length, "properties")
        let allowed = context.allowed
        var seen: UInt64 = 0
        while !pr.isAtEnd {
            let raw = try pr.readVarInt("property identifier")
            guard raw < 64, let id = PropertyIdentifier(rawValue: UInt8(raw)) else {
                throw .malformed("unknown property identifier \(raw) in \(context.name) (§2.2.2.2)")
            }
            let bit: UInt64 = 1 << UInt64(raw)
            guard allowed & bit != 0 else {
                throw .malformed("property \(id) is not allowed in \(context.name) (§2.2.2.2)")
            }
            if seen & bit != 0 && id != .userProperty && !(id == .subscriptionIdentifier && context == .publish) {
                throw .protocolError("property \(id) included more than once in \(context.name) (§2.2.2.2)")
            }
            seen |= bit

            switch id {
            case .payloadFormatIndicator:
                p.payloadFormatIndicator = try readBoolean(&pr, id, "payload format indicator")
            case .messageExpiryInterval:
                p.messageExpiryInterval = try pr.readUInt32("message expiry interval")
            case .contentType:
                p.contentType = try pr.readString("content type")
            case .responseTopic:
                let topic = try pr.readString("response topic")
                // 5.0 [MQTT-3.3.2-14] / [MQTT-3.1.3-10]: a topic name, so no wildcards.
                if !Topic.isValidName(topic) {
                    throw .protocolError("response topic is empty or contains wildcards [MQTT-3.3.2-14]")
                }
                p.responseTopic = topic
            case .correlationData:
                p.correlationData = try pr.readBinary("correlation data")
            case .subscriptionIdentifier:
                let value = try pr.readVarInt("subscription identifier")
                // §3.8.2.1.2: 1 to 268,435,455; 0 is a Protocol Error.
                if value == 0 {
                    throw .protocolError("subscription identifier 0 (§3.8.2.1.2)")
                }
                p.subscriptionIdentifiers.append(UInt32(value))
            case .sessionExpiryInterval:
                p.sessionExpiryInterval = try pr.readUInt32("session expiry interval")
            case .assignedClientIdentifier:
                p.assignedClientIdentifier = try pr.readString("assigned client identifier")
            case .serverKeepAlive:
                p.serverKeepAlive = try pr.readUInt16("server keep alive")
            case .authenticationMethod:
                p.authenticationMethod = try pr.readString("authentication method")
            case .authenticationData:
                p.authenticationData = try pr.readBinary("authentication data")
            case .requestProblemInformation:
                p.requestProblemInformation = try readBoolean(&pr, id, "request problem information")
            case .willDelayInterval:
                p.willDelayInterval = try pr.readUInt32("will delay interval")
            case .requestResponseInformation:
                p.requestResponseInformation = try readBoolean(&pr, id, "request response information")
            case .responseInformation:
                p.responseInformation = try pr.readString("response information")
            case .serverReference:
                p.serverReference = try pr.readString("server reference")
            case .reasonString:
                p.reasonString = try pr.readString("reason string")
            case .receiveMaximum:
                let value = try pr.readUInt16("receive maximum")
                if value == 0 { throw .protocolError("receive maximum 0 (§3.1.2.11.3, §3.2.2.3.3)") }
                p.receiveMaximum = value
            case .topicAliasMaximum:
                p.topicAliasMaximum = try pr.readUInt16("topic alias maximum")
            case .topicAlias:
                let value = try pr.readUInt16("topic alias")
                if value == 0 { throw .topicAliasInvalid("topic alias 0 [MQTT-3.3.2-8]") }
                p.topicAlias = value
            case .maximumQoS:
                p.maximumQoS = try readBoolean(&pr, id, "maximum QoS")
            case .retainAvailable:
                p.retainAvailable = try readBoolean(&pr, id, "retain available")
            case .userProperty:
                let name = try pr.readString("user property name")
                let value = try pr.readString("user property value")
                p.userProperties.append(UserProperty(name, value))
            case .maximumPacketSize:
                let value = try pr.readUInt32("maximum packet size")
                if value == 0 { throw .protocolError("maximum packet size 0 (§3.1.2.11.4, §3.2.2.3.6)") }
                p.maximumPacketSize = value
            case .wildcardSubscriptionAvailable:
                p.wildcardSubscriptionAvailable = try readBoolean(&pr, id, "wildcard subscription available")
            case .subscriptionIdentifierAvailable:
                p.subscriptionIdentifierAvailable = try readBoolean(&pr, id, "subscription identifier available")
            case .sharedSubscriptionAvailable:
                p.sharedSubscriptionAvailable = try readBoolean(&pr, id, "shared subscription available")
            }
        }
        // §3.1.2.11.10 / §3.2.2.3.18 / §3.15.2.2.3: data without a method is a Protocol Error.
        if p.authenticationData != nil && p.authenticationMethod == nil {
            throw .protocolError("authentication data without authentication method in \(context.name) (§3.1.2.11.10)")
        }
        return p
    }

    /// A byte property whose only legal values are 0 and 1; anything else is a Protocol Error.
    private static func readBoolean(_ r: inout ByteReader, _ id: PropertyIdentifier,
                                    _ what: StaticString) throws(MQTTDecodeError) -> UInt8 {
        let value = try r.readByte(what)
        if value > 1 {
            throw .protocolError("property \(id) has value \(value); only 0 or 1 is allowed (§2.2.2.2)")
        }
        return value
    }
}
