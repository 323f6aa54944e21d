/// Decodes packets from a byte buffer owned by the caller (a connection's read buffer).
///
/// The decoder is a value with no buffer of its own: `decode` looks at the front of the caller's
/// bytes and returns nil until a whole packet is there, so the caller can feed it as bytes arrive.
/// It decodes both client→server and server→client packets; which types a peer may send is the
/// broker's (or client's) business. Validation is strict: every rule the specification lets a
/// receiver check on one packet in isolation is checked here (see each `decode*` function).
public struct PacketDecoder: Sendable {
    /// The version used for every packet except CONNECT (which carries its own level).
    /// The broker sets it after CONNECT. `.v3_1` is decoded exactly like `.v3_1_1`.
    public var version: ProtocolVersion
    /// Largest packet accepted, whole packet (fixed header included). Exceeding it is
    /// `.packetTooLarge`, detected as soon as the remaining length is known (before the body arrives).
    public var maximumPacketSize: Int

    public init(version: ProtocolVersion = .v3_1_1, maximumPacketSize: Int = 268_435_460) {
        self.version = version
        self.maximumPacketSize = maximumPacketSize
    }

    /// Decodes one packet from the front of `bytes`. Returns nil when more bytes are needed;
    /// otherwise the packet and how many bytes it took.
    public func decode(_ bytes: UnsafeRawBufferPointer) throws(MQTTDecodeError) -> (packet: Packet, consumed: Int)? {
        guard let first = bytes.first else { return nil }
        let flags = first & 0x0F
        // §2.1.2: type 0 is reserved (forbidden); 15 is AUTH in 5.0 and reserved in 3.1.1.
        guard let type = PacketType(rawValue: first >> 4) else {
            throw .malformed("packet type 0 is reserved (§2.1.2)")
        }
        let isV5 = version == .v5
        if type == .auth && !isV5 {
            // CONNECT fixes the version first, so AUTH can only follow a v5 CONNECT.
            throw .malformed("packet type 15 (AUTH) is reserved before MQTT 5.0 (3.1.1 §2.2.1)")
        }
        try Self.checkFlags(type, flags)

        // Remaining length (§1.5.5 / 3.1.1 §2.2.3): 1 to 4 bytes.
        var remainingLength = 0
        var index = 1
        var shift = 0
        while true {
            guard index < bytes.count else { return nil }
            let byte = bytes[index]
            index += 1
            if index > 2 && byte == 0 {
                throw .malformed("remaining length overlong encoding [MQTT-1.5.5-1]")
            }
            remainingLength |= Int(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
            if index == 5 {
                throw .malformed("remaining length longer than 4 bytes (§1.5.5, 3.1.1 §2.2.3)")
            }
        }
        let total = index + remainingLength
        if total > maximumPacketSize {
            throw .tooLarge(size: total, maximum: maximumPacketSize)
        }
        guard bytes.count >= total else { return nil }

        var reader = ByteReader(bytes, from: index, to: total)
        let packet: Packet
        switch type {
        case .connect: packet = .connect(try Self.decodeConnect(&reader))
        case .connack: packet = .connack(try Self.decodeConnAck(&reader, isV5: isV5))
        case .publish: packet = .publish(try Self.decodePublish(&reader, flags: flags, isV5: isV5))
        case .puback: packet = .puback(try Self.decodeAck(&reader, .puback, isV5: isV5))
        case .pubrec: packet = .pubrec(try Self.decodeAck(&reader, .pubrec, isV5: isV5))
        case .pubrel: packet = .pubrel(try Self.decodeAck(&reader, .pubrel, isV5: isV5))
        case .pubcomp: packet = .pubcomp(try Self.decodeAck(&reader, .pubcomp, isV5: isV5))
        case .subscribe: packet = .subscribe(try Self.decodeSubscribe(&reader, isV5: isV5))
        case .suback: packet = .suback(try Self.decodeSubAck(&reader, isV5: isV5))
        case .unsubscribe: packet = .unsubscribe(try Self.decodeUnsubscribe(&reader, isV5: isV5))
        case .unsuback: packet = .unsuback(try Self.decodeUnsubAck(&reader, isV5: isV5))
        case .pingreq, .pingresp:
            // §3.12 / §3.13: no variable header, no payload.
            guard remainingLength == 0 else {
                throw .malformed("\(type == .pingreq ? "PINGREQ" : "PINGRESP") must have remaining length 0, got \(remainingLength)")
            }
            packet = type == .pingreq ? .pingreq : .pingresp
        case .disconnect: packet = .disconnect(try Self.decodeDisconnect(&reader, isV5: isV5))
        case .auth: packet = .auth(try Self.decodeAuth(&reader))
        }
        return (packet, total)
    }

    /// Convenience for tests and clients.
    public func decode(_ bytes: [UInt8]) throws(MQTTDecodeError) -> (packet: Packet, consumed: Int)? {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(MQTTDecodeError) in try decode(raw) }
        }
        return try result.get()
    }

    /// Fixed-header flag bits (5.0 §2.1.3 [MQTT-2.1.3-1], 3.1.1 §2.2.2 [MQTT-2.2.2-1/2]):
    /// PUBREL, SUBSCRIBE and UNSUBSCRIBE carry 0b0010, PUBLISH carries DUP/QoS/RETAIN, the rest 0.
    static func checkFlags(_ type: PacketType, _ flags: UInt8) throws(MQTTDecodeError) {
        switch type {
        case .publish:
            // [MQTT-3.3.1-4]: both QoS bits set is a Malformed Packet.
            if flags & 0b0110 == 0b0110 {
                throw .malformed("PUBLISH with QoS 3 [MQTT-3.3.1-4]")
            }
            // [MQTT-3.3.1-2]: DUP must be 0 for QoS 0.
            if flags & 0b1000 != 0 && flags & 0b0110 == 0 {
                throw .malformed("PUBLISH with DUP set and QoS 0 [MQTT-3.3.1-2]")
            }
        case .pubrel, .subscribe, .unsubscribe:
            if flags != 0b0010 {
                throw .malformed("\(name(type)) fixed header flags must be 0010, got \(binary4(flags)) [MQTT-2.1.3-1]")
            }
        default:
            if flags != 0 {
                throw .malformed("\(name(type)) fixed header flags must be 0000, got \(binary4(flags)) [MQTT-2.1.3-1]")
            }
        }
    }

    static func name(_ type: PacketType) -> String {
        switch type {
        case .connect: "CONNECT"
        case .connack: "CONNACK"
        case .publish: "PUBLISH"
        case .puback: "PUBACK"
        case .pubrec: "PUBREC"
        case .pubrel: "PUBREL"
        case .pubcomp: "PUBCOMP"
        case .subscribe: "SUBSCRIBE"
        case .suback: "SUBACK"
        case .unsubscribe: "UNSUBSCRIBE"
        case .unsuback: "UNSUBACK"
        case .pingreq: "PINGREQ"
        case .pingresp: "PINGRESP"
        case .disconnect: "DISCONNECT"
        case .auth: "AUTH"
        }
    }

    private static func binary4(_ flags: UInt8) -> String {
        var s = ""
        for bit in (0..<4).reversed() { s += flags & (1 << bit) != 0 ? "1" : "0" }
        return s
    }
}
