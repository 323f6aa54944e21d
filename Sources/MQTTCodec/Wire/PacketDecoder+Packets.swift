// Variable headers and payloads, one function per packet type. Each receives a reader bounded by
// the packet's remaining length and must consume it exactly (except PUBLISH, whose payload is the rest).

extension PacketDecoder {
    // MARK: CONNECT (3.1.1 §3.1, 5.0 §3.1)

    static let mqttName: [UInt8] = Array("MQTT".utf8)
    static let mqisdpName: [UInt8] = Array("MQIsdp".utf8)

    static func decodeConnect(_ r: inout ByteReader) throws(MQTTDecodeError) -> ConnectPacket {
        // §3.1.2.1 protocol name and §3.1.2.2 level decide the version of everything else.
        let nameLength = Int(try r.readUInt16("CONNECT protocol name"))
        let nameBytes = try r.readBytes(nameLength, "CONNECT protocol name")
        let level = try r.readByte("CONNECT protocol level")
        let version: ProtocolVersion
        let protocolName: String
        switch (nameBytes == mqttName, nameBytes == mqisdpName, level) {
        case (true, _, 4): version = .v3_1_1; protocolName = "MQTT"
        case (true, _, 5): version = .v5; protocolName = "MQTT"
        case (_, true, 3): version = .v3_1; protocolName = "MQIsdp"
        case (false, false, _):
            throw .unsupportedVersion("CONNECT protocol name is neither \"MQTT\" nor \"MQIsdp\" [MQTT-3.1.2-1]")
        default:
            throw .unsupportedVersion("CONNECT protocol level \(level) is not supported for this protocol name [MQTT-3.1.2-2]")
        }
        let isV5 = version == .v5

        // §3.1.2.3 connect flags.
        let flags = try r.readByte("CONNECT flags")
        if flags & 0x01 != 0 {
            throw .malformed("CONNECT reserved flag is not 0 [MQTT-3.1.2-3]")
        }
        let cleanStart = flags & 0x02 != 0
        let willFlag = flags & 0x04 != 0
        let willQoSBits = (flags >> 3) & 0x03
        let willRetain = flags & 0x20 != 0
        let passwordFlag = flags & 0x40 != 0
        let usernameFlag = flags & 0x80 != 0
        if !willFlag && willQoSBits != 0 {
            throw .malformed(isV5 ? "CONNECT will QoS must be 0 when the will flag is 0 [MQTT-3.1.2-11]"
                                  : "CONNECT will QoS must be 0 when the will flag is 0 [MQTT-3.1.2-13]")
        }
        if !willFlag && willRetain {
            throw .malformed(isV5 ? "CONNECT will retain must be 0 when the will flag is 0 [MQTT-3.1.2-13]"
                                  : "CONNECT will retain must be 0 when the will flag is 0 [MQTT-3.1.2-15]")
        }
        guard let willQoS = QoS(rawValue: willQoSBits) else {
            throw .malformed(isV5 ? "CONNECT will QoS 3 [MQTT-3.1.2-12]" : "CONNECT will QoS 3 [MQTT-3.1.2-14]")
        }
        // 3.1.1 requires a user name for a password; 5.0 lifts this (§3.1.2.9).
        if !isV5 && passwordFlag && !usernameFlag {
            throw .malformed("CONNECT password flag set without user name flag [MQTT-3.1.2-22]")
        }

        let keepAlive = try r.readUInt16("CONNECT keep alive")
        let properties = isV5 ? try decodeProperties(&r, .connect) : Properties()

        // §3.1.3 payload: client id, will properties/topic/payload, user name, password.
        let clientId = try r.readString("CONNECT client identifier")
        var will: Will?
        if willFlag {
            let willProperties = isV5 ? try decodeProperties(&r, .will) : Properties()
            let topic = try r.readString("CONNECT will topic")
            if !Topic.isValidName(topic) {
                throw .topicNameInvalid("CONNECT will topic is empty or contains wildcards [MQTT-3.1.3-11]")
            }
            let payload = try r.readBinary("CONNECT will payload")
            will = Will(topic: topic, payload: payload, qos: willQoS, retain: willRetain, properties: willProperties)
        }
        let username = usernameFlag ? try r.readString("CONNECT user name") : nil
        let password = passwordFlag ? try r.readBinary("CONNECT password") : nil
        try r.expectEnd("CONNECT")

        var packet = ConnectPacket(protocolVersion: version, cleanStart: cleanStart, keepAlive: keepAlive,
                                   clientId: clientId, will: will, username: username, password: password,
                                   properties: properties)
        packet.protocolName = protocolName
        return packet
    }

    // MARK: CONNACK (3.1.1 §3.2, 5.0 §3.2)

    static func decodeConnAck(_ r: inout ByteReader, isV5: Bool) throws(MQTTDecodeError) -> ConnAckPacket {
        let flags = try r.readByte("CONNACK acknowledge flags")
        if flags & 0xFE != 0 {
            throw .malformed(isV5 ? "CONNACK reserved acknowledge flags are not 0 [MQTT-3.2.2-1]"
                                  : "CONNACK reserved acknowledge flags are not 0 (§3.2.2.1)")
        }
        let sessionPresent = flags & 0x01 != 0
        let code = ReasonCode(try r.readByte("CONNACK reason code"))
        if isV5 {
            try checkReasonCode(code, allowed: connAckCodes, "CONNACK")
        } else if code.rawValue > 5 {
            throw .protocolError("CONNACK return code \(code) is reserved (3.1.1 §3.2.2.3)")
        }
        // 5.0 [MQTT-3.2.2-6] / 3.1.1 [MQTT-3.2.2-4]: session present must be 0 when refusing.
        if sessionPresent && code.rawValue != 0 {
            throw .protocolError("CONNACK session present set with non-zero reason code \(code) [MQTT-3.2.2-6]")
        }
        let properties = isV5 ? try decodeProperties(&r, .connack) : Properties()
        try r.expectEnd("CONNACK")
        return ConnAckPacket(sessionPresent: sessionPresent, reasonCode: code, properties: properties)
    }

    // MARK: PUBLISH (3.1.1 §3.3, 5.0 §3.3)

    static func decodePublish(_ r: inout ByteReader, flags: UInt8, isV5: Bool) throws(MQTTDecodeError) -> PublishPacket {
        // checkFlags already rejected QoS 3.
        guard let qos = QoS(rawValue: (flags >> 1) & 0x03) else {
            throw .malformed("PUBLISH with QoS 3 [MQTT-3.3.1-4]")
        }
        let topic = try r.readString("PUBLISH topic name")
        var packetId: UInt16 = 0
        if qos != .atMostOnce {
            packetId = try r.readUInt16("PUBLISH packet identifier")
            if packetId == 0 {
                throw .protocolError(isV5 ? "PUBLISH with QoS > 0 and packet identifier 0 [MQTT-2.2.1-3]"
                                          : "PUBLISH with QoS > 0 and packet identifier 0 [MQTT-2.3.1-1]")
            }
        }
        let properties = isV5 ? try decodeProperties(&r, .publish) : Properties()
        if topic.isEmpty {
            if !isV5 {
                throw .malformed("PUBLISH topic name is empty [MQTT-4.7.3-1]")
            } else if properties.topicAlias == nil {
                // 5.0 §3.3.2.1: a zero-length topic is only allowed with a Topic Alias.
                throw .protocolError("PUBLISH topic name is empty and there is no topic alias (§3.3.2.3.4)")
            }
        } else if containsWildcard(topic) {
            throw .topicNameInvalid("PUBLISH topic name contains a wildcard [MQTT-3.3.2-2]")
        }
        let payload = r.readRest()
        return PublishPacket(dup: flags & 0x08 != 0, qos: qos, retain: flags & 0x01 != 0, topic: topic,
                             packetId: packetId, properties: properties, payload: payload)
    }

    static func containsWildcard(_ topic: String) -> Bool {
        for byte in topic.utf8 where byte == UInt8(ascii: "+") || byte == UInt8(ascii: "#") { return true }
        return false
    }

    // MARK: PUBACK, PUBREC, PUBREL, PUBCOMP (§3.4 - §3.7)

    static func decodeAck(_ r: inout ByteReader, _ type: PacketType, isV5: Bool) throws(MQTTDecodeError) -> AckPacket {
        let packetId = try readPacketId(&r, type, isV5: isV5)
        // 5.0 §3.4.2.1: remaining length 2 means Success with no properties.
        guard isV5, !r.isAtEnd else {
            try r.expectEnd(ackName(type))
            return AckPacket(packetId: packetId)
        }
        let code = ReasonCode(try r.readByte("acknowledgement reason code"))
        let allowed = (type == .puback || type == .pubrec) ? pubAckCodes : pubRelCodes
        try checkReasonCode(code, allowed: allowed, name(type))
        // 5.0 §3.4.2.2: remaining length 3 means no property length.
        let properties = r.isAtEnd ? Properties() : try decodeProperties(&r, .ack)
        try r.expectEnd(ackName(type))
        return AckPacket(packetId: packetId, reasonCode: code, properties: properties)
    }

    private static func ackName(_ type: PacketType) -> StaticString {
        switch type {
        case .puback: "PUBACK"
        case .pubrec: "PUBREC"
        case .pubrel: "PUBREL"
        default: "PUBCOMP"
        }
    }

    /// A non-zero packet identifier (5.0 [MQTT-2.2.1-3], 3.1.1 [MQTT-2.3.1-1]).
    static func readPacketId(_ r: inout ByteReader, _ type: PacketType, isV5: Bool) throws(MQTTDecodeError) -> UInt16 {
        let packetId = try r.readUInt16("packet identifier")
        if packetId == 0 {
            throw .protocolError("\(name(type)) packet identifier is 0 \(isV5 ? "[MQTT-2.2.1-3]" : "[MQTT-2.3.1-1]")")
        }
        return packetId
    }

    // MARK: SUBSCRIBE (3.1.1 §3.8, 5.0 §3.8)

    static func decodeSubscribe(_ r: inout ByteReader, isV5: Bool) throws(MQTTDecodeError) -> SubscribePacket {
        let packetId = try readPacketId(&r, .subscribe, isV5: isV5)
        let properties = isV5 ? try decodeProperties(&r, .subscribe) : Properties()
        var subscriptions: [Subscription] = []
        while !r.isAtEnd {
            // An invalid filter is not a decode error: the broker answers it in SUBACK (0x8F / 0x80).
            let filter = try r.readString("SUBSCRIBE topic filter")
            let options = try r.readByte("SUBSCRIBE subscription options")
            let qosBits = options & 0x03
            var parsed = SubscriptionOptions()
            if isV5 {
                if options & 0xC0 != 0 {
                    throw .malformed("SUBSCRIBE subscription options reserved bits are not 0 [MQTT-3.8.3-5]")
                }
                guard let qos = QoS(rawValue: qosBits) else {
                    throw .protocolError("SUBSCRIBE maximum QoS 3 (§3.8.3.1)")
                }
                let retainHandling = (options >> 4) & 0x03
                if retainHandling == 3 {
                    throw .protocolError("SUBSCRIBE retain handling 3 (§3.8.3.1)")
                }
                parsed = SubscriptionOptions(qos: qos, noLocal: options & 0x04 != 0,
                                             retainAsPublished: options & 0x08 != 0, retainHandling: retainHandling)
                if parsed.noLocal && Topic.parseShared(filter) != nil {
                    throw .protocolError("SUBSCRIBE no local set on a shared subscription [MQTT-3.8.3-4]")
                }
            } else {
                if options & 0xFC != 0 {
                    throw .malformed("SUBSCRIBE requested QoS byte reserved bits are not 0 [MQTT-3-8.3-4]")
                }
                guard let qos = QoS(rawValue: qosBits) else {
                    throw .malformed("SUBSCRIBE requested QoS 3 [MQTT-3-8.3-4]")
                }
                parsed.qos = qos
            }
            subscriptions.append(Subscription(filter: filter, options: parsed))
        }
        if subscriptions.isEmpty {
            throw .protocolError(isV5 ? "SUBSCRIBE without any topic filter [MQTT-3.8.3-2]"
                                      : "SUBSCRIBE without any topic filter [MQTT-3.8.3-3]")
        }
        return SubscribePacket(packetId: packetId, subscriptions: subscriptions, properties: properties)
    }

    // MARK: SUBACK (3.1.1 §3.9, 5.0 §3.9)

    static func decodeSubAck(_ r: inout ByteReader, isV5: Bool) throws(MQTTDecodeError) -> SubAckPacket {
        let packetId = try readPacketId(&r, .suback, isV5: isV5)
        let properties = isV5 ? try decodeProperties(&r, .suback) : Properties()
        var codes: [ReasonCode] = []
        codes.reserveCapacity(r.remaining)
        while !r.isAtEnd {
            let code = ReasonCode(try r.readByte("SUBACK reason code"))
            if isV5 {
                try checkReasonCode(code, allowed: subAckCodes, "SUBACK")
            } else if code.rawValue > 2 && code.rawValue != 0x80 {
                throw .protocolError("SUBACK return code \(code) is reserved [MQTT-3.9.3-2]")
            }
            codes.append(code)
        }
        if codes.isEmpty {
            throw .protocolError("SUBACK without any reason code (§3.9.3)")
        }
        return SubAckPacket(packetId: packetId, reasonCodes: codes, properties: properties)
    }

    // MARK: UNSUBSCRIBE (3.1.1 §3.10, 5.0 §3.10)

    static func decodeUnsubscribe(_ r: inout ByteReader, isV5: Bool) throws(MQTTDecodeError) -> UnsubscribePacket {
        let packetId = try readPacketId(&r, .unsubscribe, isV5: isV5)
        let properties = isV5 ? try decodeProperties(&r, .unsubscribe) : Properties()
        var filters: [String] = []
        while !r.isAtEnd {
            filters.append(try r.readString("UNSUBSCRIBE topic filter"))
        }
        if filters.isEmpty {
            throw .protocolError("UNSUBSCRIBE without any topic filter [MQTT-3.10.3-2]")
        }
        return UnsubscribePacket(packetId: packetId, filters: filters, properties: properties)
    }

    // MARK: UNSUBACK (3.1.1 §3.11, 5.0 §3.11)

    static func decodeUnsubAck(_ r: inout ByteReader, isV5: Bool) throws(MQTTDecodeError) -> UnsubAckPacket {
        let packetId = try readPacketId(&r, .unsuback, isV5: isV5)
        guard isV5 else {
            // 3.1.1 §3.11: the packet identifier is all there is.
            try r.expectEnd("UNSUBACK")
            return UnsubAckPacket(packetId: packetId)
        }
        let properties = try decodeProperties(&r, .unsuback)
        var codes: [ReasonCode] = []
        codes.reserveCapacity(r.remaining)
        while !r.isAtEnd {
            let code = ReasonCode(try r.readByte("UNSUBACK reason code"))
            try checkReasonCode(code, allowed: unsubAckCodes, "UNSUBACK")
            codes.append(code)
        }
        if codes.isEmpty {
            throw .protocolError("UNSUBACK without any reason code (§3.11.3)")
        }
        return UnsubAckPacket(packetId: packetId, reasonCodes: codes, properties: properties)
    }

    // MARK: DISCONNECT (3.1.1 §3.14, 5.0 §3.14)

    static func decodeDisconnect(_ r: inout ByteReader, isV5: Bool) throws(MQTTDecodeError) -> DisconnectPacket {
        // 3.1.1: no variable header. 5.0 §3.14.2.1: remaining length 0 is Normal disconnection.
        guard isV5, !r.isAtEnd else {
            try r.expectEnd("DISCONNECT")
            return DisconnectPacket()
        }
        let code = ReasonCode(try r.readByte("DISCONNECT reason code"))
        try checkReasonCode(code, allowed: disconnectCodes, "DISCONNECT")
        // 5.0 §3.14.2.2.1: remaining length 1 means no property length.
        let properties = r.isAtEnd ? Properties() : try decodeProperties(&r, .disconnect)
        try r.expectEnd("DISCONNECT")
        return DisconnectPacket(reasonCode: code, properties: properties)
    }

    // MARK: AUTH (5.0 §3.15)

    static func decodeAuth(_ r: inout ByteReader) throws(MQTTDecodeError) -> AuthPacket {
        // 5.0 §3.15.2.1: remaining length 0 is Success with no properties.
        guard !r.isAtEnd else { return AuthPacket() }
        let code = ReasonCode(try r.readByte("AUTH reason code"))
        try checkReasonCode(code, allowed: authCodes, "AUTH")
        let properties = r.isAtEnd ? Properties() : try decodeProperties(&r, .auth)
        try r.expectEnd("AUTH")
        return AuthPacket(reasonCode: code, properties: properties)
    }

    // MARK: Reason codes allowed per packet (5.0 §2.4, Table 2-6)

    static let connAckCodes: [UInt8] = [0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A,
                                        0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F]
    static let pubAckCodes: [UInt8] = [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]
    static let pubRelCodes: [UInt8] = [0x00, 0x92]
    static let subAckCodes: [UInt8] = [0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2]
    static let unsubAckCodes: [UInt8] = [0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91]
    static let disconnectCodes: [UInt8] = [0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F,
                                           0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D,
                                           0x9E, 0x9F, 0xA0, 0xA1, 0xA2]
    static let authCodes: [UInt8] = [0x00, 0x18, 0x19]

    static func checkReasonCode(_ code: ReasonCode, allowed: [UInt8], _ packet: String) throws(MQTTDecodeError) {
        if !allowed.contains(code.rawValue) {
            throw .protocolError("\(packet) reason code \(code) is not allowed in this packet (§2.4)")
        }
    }
}
