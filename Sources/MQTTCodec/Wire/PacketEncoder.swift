/// Writes packets in their wire form.
///
/// The encoder trusts its input: it does not check that strings fit in 65,535 bytes, that a packet
/// fits in 268,435,455 bytes, or that a property is allowed in the packet (it writes whatever is set,
/// in v5 only). The broker builds packets from decoded, already-validated values.
///
/// Lengths are computed before anything is written, so one `reserveCapacity` covers the whole packet
/// and no intermediate arrays are built.
public enum PacketEncoder {
    /// Appends the wire form of `packet` in protocol `version` to `buffer`.
    ///
    /// v3 forms omit properties and v5-only fields: SUBACK codes are written as 0, 1, 2 or 0x80,
    /// UNSUBACK carries only the packet identifier, DISCONNECT has no body and CONNACK is one flag
    /// byte plus the return code. CONNECT is written with `packet.protocolName` and level
    /// `version.rawValue` ("MQIsdp"/3 for `.v3_1`). AUTH is always written in its v5 form.
    public static func encode(_ packet: Packet, version: ProtocolVersion, into buffer: inout [UInt8]) {
        let isV5 = version == .v5
        let body = bodyLength(packet, isV5: isV5)
        buffer.reserveCapacity(buffer.count + 1 + varIntSize(body) + body)
        buffer.append(firstByte(packet))
        appendVarInt(body, &buffer)
        switch packet {
        case .connect(let p): writeConnect(p, version: version, &buffer)
        case .connack(let p):
            buffer.append(p.sessionPresent ? 0x01 : 0x00)
            buffer.append(p.reasonCode.rawValue)
            if isV5 { writeProperties(p.properties, &buffer) }
        case .publish(let p):
            appendString(p.topic, &buffer)
            if p.qos != .atMostOnce { appendUInt16(p.packetId, &buffer) }
            if isV5 { writeProperties(p.properties, &buffer) }
            buffer.append(contentsOf: p.payload)
        case .puback(let p), .pubrec(let p), .pubrel(let p), .pubcomp(let p):
            appendUInt16(p.packetId, &buffer)
            // 5.0 §3.4.2.1: reason code and properties may be omitted when Success and empty.
            guard isV5 else { break }
            let propertiesLength = propertiesLength(p.properties)
            if p.reasonCode == .success && propertiesLength == 0 { break }
            buffer.append(p.reasonCode.rawValue)
            if propertiesLength > 0 { writeProperties(p.properties, length: propertiesLength, &buffer) }
        case .subscribe(let p):
            appendUInt16(p.packetId, &buffer)
            if isV5 { writeProperties(p.properties, &buffer) }
            for s in p.subscriptions {
                appendString(s.filter, &buffer)
                var options = s.options.qos.rawValue
                if isV5 {
                    if s.options.noLocal { options |= 0x04 }
                    if s.options.retainAsPublished { options |= 0x08 }
                    options |= (s.options.retainHandling & 0x03) << 4
                }
                buffer.append(options)
            }
        case .suback(let p):
            appendUInt16(p.packetId, &buffer)
            if isV5 {
                writeProperties(p.properties, &buffer)
                for code in p.reasonCodes { buffer.append(code.rawValue) }
            } else {
                // 3.1.1 §3.9.3: 0x00, 0x01, 0x02 or 0x80 only.
                for code in p.reasonCodes { buffer.append(code.rawValue <= 2 ? code.rawValue : 0x80) }
            }
        case .unsubscribe(let p):
            appendUInt16(p.packetId, &buffer)
            if isV5 { writeProperties(p.properties, &buffer) }
            for filter in p.filters { appendString(filter, &buffer) }
        case .unsuback(let p):
            appendUInt16(p.packetId, &buffer)
            if isV5 {
                writeProperties(p.properties, &buffer)
                for code in p.reasonCodes { buffer.append(code.rawValue) }
            }
        case .pingreq, .pingresp:
            break
        case .disconnect(let p):
            // 5.0 §3.14.2.1: remaining length 0 for Normal disconnection without properties.
            guard isV5 else { break }
            let propertiesLength = propertiesLength(p.properties)
            if p.reasonCode == .success && propertiesLength == 0 { break }
            buffer.append(p.reasonCode.rawValue)
            if propertiesLength > 0 { writeProperties(p.properties, length: propertiesLength, &buffer) }
        case .auth(let p):
            // 5.0 §3.15.2.1: remaining length 0 for Success without properties.
            let propertiesLength = propertiesLength(p.properties)
            if p.reasonCode == .success && propertiesLength == 0 { break }
            buffer.append(p.reasonCode.rawValue)
            writeProperties(p.properties, length: propertiesLength, &buffer)
        }
    }

    /// Appends a PUBLISH without its payload: the fixed header (whose remaining length counts
    /// the payload), topic, packet identifier and properties. Followed by `p.payload` on the
    /// wire it is exactly `encode(.publish(p), …)`; the broker uses it to queue a large shared
    /// payload by reference instead of copying it into every subscriber's buffer.
    public static func encodePublishHeader(_ p: PublishPacket, version: ProtocolVersion, into buffer: inout [UInt8]) {
        let isV5 = version == .v5
        let packet = Packet.publish(p)
        let body = bodyLength(packet, isV5: isV5)
        buffer.reserveCapacity(buffer.count + 1 + varIntSize(body) + body - p.payload.count)
        buffer.append(firstByte(packet))
        appendVarInt(body, &buffer)
        appendString(p.topic, &buffer)
        if p.qos != .atMostOnce { appendUInt16(p.packetId, &buffer) }
        if isV5 { writeProperties(p.properties, &buffer) }
    }

    /// Encoded size in bytes (used to check the peer's Maximum Packet Size before sending).
    public static func size(of packet: Packet, version: ProtocolVersion) -> Int {
        let body = bodyLength(packet, isV5: version == .v5)
        return 1 + varIntSize(body) + body
    }

    // MARK: Layout

    static func firstByte(_ packet: Packet) -> UInt8 {
        let type = packet.type.rawValue << 4
        switch packet {
        case .publish(let p):
            return type | (p.dup ? 0x08 : 0) | p.qos.rawValue << 1 | (p.retain ? 0x01 : 0)
        case .pubrel, .subscribe, .unsubscribe:
            // §2.1.3: these three carry the fixed flags 0010.
            return type | 0x02
        default:
            return type
        }
    }

    /// Length of everything after the fixed header.
    static func bodyLength(_ packet: Packet, isV5: Bool) -> Int {
        switch packet {
        case .connect(let p):
            var n = 2 + p.protocolName.utf8.count + 1 + 1 + 2 + 2 + p.clientId.utf8.count
            if isV5 { n += propertiesBlockLength(p.properties) }
            if let will = p.will {
                if isV5 { n += propertiesBlockLength(will.properties) }
                n += 2 + will.topic.utf8.count + 2 + will.payload.count
            }
            if let username = p.username { n += 2 + username.utf8.count }
            if let password = p.password { n += 2 + password.count }
            return n
        case .connack(let p):
            return 2 + (isV5 ? propertiesBlockLength(p.properties) : 0)
        case .publish(let p):
            return 2 + p.topic.utf8.count + (p.qos != .atMostOnce ? 2 : 0)
                + (isV5 ? propertiesBlockLength(p.properties) : 0) + p.payload.count
        case .puback(let p), .pubrec(let p), .pubrel(let p), .pubcomp(let p):
            guard isV5 else { return 2 }
            let length = propertiesLength(p.properties)
            if length == 0 { return p.reasonCode == .success ? 2 : 3 }
            return 3 + varIntSize(length) + length
        case .subscribe(let p):
            var n = 2 + (isV5 ? propertiesBlockLength(p.properties) : 0)
            for s in p.subscriptions { n += 2 + s.filter.utf8.count + 1 }
            return n
        case .suback(let p):
            return 2 + (isV5 ? propertiesBlockLength(p.properties) : 0) + p.reasonCodes.count
        case .unsubscribe(let p):
            var n = 2 + (isV5 ? propertiesBlockLength(p.properties) : 0)
            for filter in p.filters { n += 2 + filter.utf8.count }
            return n
        case .unsuback(let p):
            return isV5 ? 2 + propertiesBlockLength(p.properties) + p.reasonCodes.count : 2
        case .pingreq, .pingresp:
            return 0
        case .disconnect(let p):
            guard isV5 else { return 0 }
            let length = propertiesLength(p.properties)
            if length == 0 { return p.reasonCode == .success ? 0 : 1 }
            return 1 + varIntSize(length) + length
        case .auth(let p):
            let length = propertiesLength(p.properties)
            if length == 0 && p.reasonCode == .success { return 0 }
            return 1 + varIntSize(length) + length
        }
    }

    private static func writeConnect(_ p: ConnectPacket, version: ProtocolVersion, _ buffer: inout [UInt8]) {
        let isV5 = version == .v5
        appendString(p.protocolName, &buffer)
        buffer.append(version.rawValue)
        // §3.1.2.3 connect flags; bit 0 is reserved.
        var flags: UInt8 = 0
        if p.cleanStart { flags |= 0x02 }
        if let will = p.will {
            flags |= 0x04 | will.qos.rawValue << 3
            if will.retain { flags |= 0x20 }
        }
        if p.password != nil { flags |= 0x40 }
        if p.username != nil { flags |= 0x80 }
        buffer.append(flags)
        appendUInt16(p.keepAlive, &buffer)
        if isV5 { writeProperties(p.properties, &buffer) }
        appendString(p.clientId, &buffer)
        if let will = p.will {
            if isV5 { writeProperties(will.properties, &buffer) }
            appendString(will.topic, &buffer)
            appendBinary(will.payload, &buffer)
        }
        if let username = p.username { appendString(username, &buffer) }
        if let password = p.password { appendBinary(password, &buffer) }
    }

    // MARK: Properties (5.0 §2.2.2)

    /// Property length plus the bytes of its own variable byte integer.
    static func propertiesBlockLength(_ p: Properties) -> Int {
        let length = propertiesLength(p)
        return varIntSize(length) + length
    }

    /// Sum of every set property's identifier and value.
    static func propertiesLength(_ p: Properties) -> Int {
        var n = 0
        if p.payloadFormatIndicator != nil { n += 2 }
        if p.messageExpiryInterval != nil { n += 5 }
        if let v = p.contentType { n += 3 + v.utf8.count }
        if let v = p.responseTopic { n += 3 + v.utf8.count }
        if let v = p.correlationData { n += 3 + v.count }
        for id in p.subscriptionIdentifiers { n += 1 + varIntSize(Int(id)) }
        if p.sessionExpiryInterval != nil { n += 5 }
        if let v = p.assignedClientIdentifier { n += 3 + v.utf8.count }
        if p.serverKeepAlive != nil { n += 3 }
        if let v = p.authenticationMethod { n += 3 + v.utf8.count }
        if let v = p.authenticationData { n += 3 + v.count }
        if p.requestProblemInformation != nil { n += 2 }
        if p.willDelayInterval != nil { n += 5 }
        if p.requestResponseInformation != nil { n += 2 }
        if let v = p.responseInformation { n += 3 + v.utf8.count }
        if let v = p.serverReference { n += 3 + v.utf8.count }
        if let v = p.reasonString { n += 3 + v.utf8.count }
        if p.receiveMaximum != nil { n += 3 }
        if p.topicAliasMaximum != nil { n += 3 }
        if p.topicAlias != nil { n += 3 }
        if p.maximumQoS != nil { n += 2 }
        if p.retainAvailable != nil { n += 2 }
        for u in p.userProperties { n += 5 + u.name.utf8.count + u.value.utf8.count }
        if p.maximumPacketSize != nil { n += 5 }
        if p.wildcardSubscriptionAvailable != nil { n += 2 }
        if p.subscriptionIdentifierAvailable != nil { n += 2 }
        if p.sharedSubscriptionAvailable != nil { n += 2 }
        return n
    }

    static func writeProperties(_ p: Properties, _ buffer: inout [UInt8]) {
        writeProperties(p, length: propertiesLength(p), &buffer)
    }

    /// Writes the property length, then each set property in identifier order.
    static func writeProperties(_ p: Properties, length: Int, _ buffer: inout [UInt8]) {
        appendVarInt(length, &buffer)
        if length == 0 { return }
        func id(_ identifier: PropertyIdentifier) { buffer.append(identifier.rawValue) }
        if let v = p.payloadFormatIndicator { id(.payloadFormatIndicator); buffer.append(v) }
        if let v = p.messageExpiryInterval { id(.messageExpiryInterval); appendUInt32(v, &buffer) }
        if let v = p.contentType { id(.contentType); appendString(v, &buffer) }
        if let v = p.responseTopic { id(.responseTopic); appendString(v, &buffer) }
        if let v = p.correlationData { id(.correlationData); appendBinary(v, &buffer) }
        for v in p.subscriptionIdentifiers { id(.subscriptionIdentifier); appendVarInt(Int(v), &buffer) }
        if let v = p.sessionExpiryInterval { id(.sessionExpiryInterval); appendUInt32(v, &buffer) }
        if let v = p.assignedClientIdentifier { id(.assignedClientIdentifier); appendString(v, &buffer) }
        if let v = p.serverKeepAlive { id(.serverKeepAlive); appendUInt16(v, &buffer) }
        if let v = p.authenticationMethod { id(.authenticationMethod); appendString(v, &buffer) }
        if let v = p.authenticationData { id(.authenticationData); appendBinary(v, &buffer) }
        if let v = p.requestProblemInformation { id(.requestProblemInformation); buffer.append(v) }
        if let v = p.willDelayInterval { id(.willDelayInterval); appendUInt32(v, &buffer) }
        if let v = p.requestResponseInformation { id(.requestResponseInformation); buffer.append(v) }
        if let v = p.responseInformation { id(.responseInformation); appendString(v, &buffer) }
        if let v = p.serverReference { id(.serverReference); appendString(v, &buffer) }
        if let v = p.reasonString { id(.reasonString); appendString(v, &buffer) }
        if let v = p.receiveMaximum { id(.receiveMaximum); appendUInt16(v, &buffer) }
        if let v = p.topicAliasMaximum { id(.topicAliasMaximum); appendUInt16(v, &buffer) }
        if let v = p.topicAlias { id(.topicAlias); appendUInt16(v, &buffer) }
        if let v = p.maximumQoS { id(.maximumQoS); buffer.append(v) }
        if let v = p.retainAvailable { id(.retainAvailable); buffer.append(v) }
        for u in p.userProperties {
            id(.userProperty); appendString(u.name, &buffer); appendString(u.value, &buffer)
        }
        if let v = p.maximumPacketSize { id(.maximumPacketSize); appendUInt32(v, &buffer) }
        if let v = p.wildcardSubscriptionAvailable { id(.wildcardSubscriptionAvailable); buffer.append(v) }
        if let v = p.subscriptionIdentifierAvailable { id(.subscriptionIdentifierAvailable); buffer.append(v) }
        if let v = p.sharedSubscriptionAvailable { id(.sharedSubscriptionAvailable); buffer.append(v) }
    }

    // MARK: Primitives (§1.5)

    /// Bytes taken by `value` as a Variable Byte Integer (§1.5.5).
    static func varIntSize(_ value: Int) -> Int {
        switch value {
        case ..<128: 1
        case ..<16_384: 2
        case ..<2_097_152: 3
        default: 4
        }
    }

    static func appendVarInt(_ value: Int, _ buffer: inout [UInt8]) {
        assert(value >= 0 && value <= 268_435_455, "variable byte integer out of range")
        var v = value
        repeat {
            var byte = UInt8(truncatingIfNeeded: v & 0x7F)
            v >>= 7
            if v > 0 { byte |= 0x80 }
            buffer.append(byte)
        } while v > 0
    }

    static func appendUInt16(_ value: UInt16, _ buffer: inout [UInt8]) {
        buffer.append(UInt8(truncatingIfNeeded: value >> 8))
        buffer.append(UInt8(truncatingIfNeeded: value))
    }

    static func appendUInt32(_ value: UInt32, _ buffer: inout [UInt8]) {
        buffer.append(UInt8(truncatingIfNeeded: value >> 24))
        buffer.append(UInt8(truncatingIfNeeded: value >> 16))
        buffer.append(UInt8(truncatingIfNeeded: value >> 8))
        buffer.append(UInt8(truncatingIfNeeded: value))
    }

    static func appendString(_ value: String, _ buffer: inout [UInt8]) {
        let utf8 = value.utf8
        assert(utf8.count <= 65_535, "UTF-8 string longer than 65,535 bytes")
        appendUInt16(UInt16(truncatingIfNeeded: utf8.count), &buffer)
        buffer.append(contentsOf: utf8)
    }

    static func appendBinary(_ value: [UInt8], _ buffer: inout [UInt8]) {
        assert(value.count <= 65_535, "binary data longer than 65,535 bytes")
        appendUInt16(UInt16(truncatingIfNeeded: value.count), &buffer)
        buffer.append(contentsOf: value)
    }
}
