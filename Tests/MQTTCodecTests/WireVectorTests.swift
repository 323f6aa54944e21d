import XCTest
@testable import MQTTCodec

/// Hand-written byte arrays in the shapes the specification and common clients produce.
final class WireVectorTests: XCTestCase {
    func testPing() throws {
        XCTAssertEqual(try PacketDecoder().decode([0xC0, 0x00])?.packet, .pingreq)
        XCTAssertEqual(try PacketDecoder().decode([0xD0, 0x00])?.packet, .pingresp)
        var out: [UInt8] = []
        PacketEncoder.encode(.pingreq, version: .v3_1_1, into: &out)
        XCTAssertEqual(out, [0xC0, 0x00])
    }

    /// 5.0 §1.5.5 / 3.1.1 §2.2.3, Table 2.4: the boundaries of each encoded size.
    func testRemainingLengthExamples() throws {
        let table: [(Int, [UInt8])] = [
            (0, [0x00]), (127, [0x7F]),
            (128, [0x80, 0x01]), (16_383, [0xFF, 0x7F]),
            (16_384, [0x80, 0x80, 0x01]), (2_097_151, [0xFF, 0xFF, 0x7F]),
            (2_097_152, [0x80, 0x80, 0x80, 0x01]), (268_435_455, [0xFF, 0xFF, 0xFF, 0x7F]),
        ]
        for (value, encoded) in table {
            var out: [UInt8] = []
            PacketEncoder.appendVarInt(value, &out)
            XCTAssertEqual(out, encoded, "\(value)")
            XCTAssertEqual(PacketEncoder.varIntSize(value), encoded.count, "\(value)")
            let decoded = try encoded.withUnsafeBytes { raw in
                try Result { () throws(MQTTDecodeError) in
                    var reader = ByteReader(raw, from: 0, to: raw.count)
                    return try reader.readVarInt("test")
                }.get()
            }
            XCTAssertEqual(decoded, value)

            // As a PUBLISH header: the decoder knows the packet's size before the body arrives.
            let header = [0x30] + encoded
            let total = 1 + encoded.count + value
            if value == 0 {
                assertDecodeError(header, .malformedPacket) // no room for the topic length
            } else {
                XCTAssertNil(try PacketDecoder().decode(header))
                let message = assertDecodeError(header, maximumPacketSize: total - 1, .packetTooLarge)
                XCTAssertTrue(message?.contains("\(total) bytes") ?? false, message ?? "")
                XCTAssertNil(try PacketDecoder(maximumPacketSize: total).decode(header))
            }
        }
    }

    func testLargeRemainingLengths() {
        // Bodies of 128 and 16,384 bytes cross the 1→2 and 2→3 byte boundaries.
        for (body, lengthBytes) in [(128, 2), (16_384, 3)] {
            let packet = Packet.publish(PublishPacket(topic: "a/b", payload: Array(repeating: 7, count: body - 5)))
            var out: [UInt8] = []
            PacketEncoder.encode(packet, version: .v3_1_1, into: &out)
            XCTAssertEqual(out.count, 1 + lengthBytes + body)
            XCTAssertEqual(try PacketDecoder().decode(out)?.packet, packet)
        }
    }

    /// `mosquitto_pub -V mqttv311 -i client1 -k 60 ...`
    func testMosquittoPubConnect() throws {
        let bytes: [UInt8] = [0x10, 0x13, 0x00, 0x04, 0x4D, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3C,
                              0x00, 0x07, 0x63, 0x6C, 0x69, 0x65, 0x6E, 0x74, 0x31]
        let r = try XCTUnwrap(try PacketDecoder().decode(bytes))
        XCTAssertEqual(r.consumed, bytes.count)
        XCTAssertEqual(r.packet, .connect(ConnectPacket(protocolVersion: .v3_1_1, cleanStart: true, keepAlive: 60,
                                                        clientId: "client1")))
        var out: [UInt8] = []
        PacketEncoder.encode(r.packet, version: .v3_1_1, into: &out)
        XCTAssertEqual(out, bytes)
    }

    /// MQTT 3.1 CONNECT: "MQIsdp", level 3.
    func testMQIsdpConnect() throws {
        let bytes: [UInt8] = [0x10, 0x0F, 0x00, 0x06] + Array("MQIsdp".utf8) + [0x03, 0x02, 0x00, 0x0A, 0x00, 0x01, 0x78]
        let packet = try XCTUnwrap(try PacketDecoder().decode(bytes)).packet
        guard case .connect(let c) = packet else { return XCTFail("\(packet)") }
        XCTAssertEqual(c.protocolVersion, .v3_1)
        XCTAssertEqual(c.protocolName, "MQIsdp")
        XCTAssertEqual(c.clientId, "x")
        var out: [UInt8] = []
        PacketEncoder.encode(packet, version: .v3_1, into: &out)
        XCTAssertEqual(out, bytes)
    }

    /// 5.0 CONNECT: "MQTT", level 5, empty properties, empty client id. The decoder's own version
    /// does not matter for CONNECT.
    func testV5Connect() throws {
        let bytes: [UInt8] = [0x10, 0x0D, 0x00, 0x04, 0x4D, 0x51, 0x54, 0x54, 0x05, 0x02, 0x00, 0x3C, 0x00, 0x00, 0x00]
        for decoderVersion in [ProtocolVersion.v3_1_1, .v5] {
            let packet = try XCTUnwrap(try PacketDecoder(version: decoderVersion).decode(bytes)).packet
            XCTAssertEqual(packet, .connect(ConnectPacket(protocolVersion: .v5, clientId: "")))
        }
    }

    func testPublishAndSubscribeV3() throws {
        XCTAssertEqual(try PacketDecoder().decode([0x30, 0x07, 0x00, 0x03, 0x61, 0x2F, 0x62, 0x68, 0x69])?.packet,
                       .publish(PublishPacket(topic: "a/b", payload: Array("hi".utf8))))
        XCTAssertEqual(try PacketDecoder().decode([0x3B, 0x06, 0x00, 0x01, 0x61, 0x00, 0x05, 0xFF])?.packet,
                       .publish(PublishPacket(dup: true, qos: .atLeastOnce, retain: true, topic: "a", packetId: 5,
                                              payload: [0xFF])))
        XCTAssertEqual(try PacketDecoder().decode([0x82, 0x08, 0x00, 0x0A, 0x00, 0x03, 0x61, 0x2F, 0x62, 0x01])?.packet,
                       .subscribe(SubscribePacket(packetId: 10, subscriptions: [
                           Subscription(filter: "a/b", options: SubscriptionOptions(qos: .atLeastOnce))])))
        XCTAssertEqual(try PacketDecoder().decode([0x20, 0x02, 0x00, 0x00])?.packet, .connack(ConnAckPacket()))
    }

    func testV5AckAndProperties() throws {
        let d = PacketDecoder(version: .v5)
        XCTAssertEqual(try d.decode([0x40, 0x03, 0x00, 0x01, 0x10])?.packet,
                       .puback(AckPacket(packetId: 1, reasonCode: .noMatchingSubscribers)))
        // PUBLISH "t" with Topic Alias 1 and Message Expiry 10.
        var p = Properties()
        p.topicAlias = 1
        p.messageExpiryInterval = 10
        XCTAssertEqual(try d.decode([0x30, 0x0C, 0x00, 0x01, 0x74, 0x08, 0x23, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x0A])?.packet,
                       .publish(PublishPacket(topic: "t", properties: p)))
        // Subscription identifier twice in PUBLISH (server→client) is allowed.
        var s = Properties()
        s.subscriptionIdentifiers = [1, 2]
        XCTAssertEqual(try d.decode([0x30, 0x08, 0x00, 0x01, 0x74, 0x04, 0x0B, 0x01, 0x0B, 0x02])?.packet,
                       .publish(PublishPacket(topic: "t", properties: s)))
    }

    func testIncompleteInputReturnsNil() throws {
        let d = PacketDecoder()
        XCTAssertNil(try d.decode([]))
        XCTAssertNil(try d.decode([0x30]))
        XCTAssertNil(try d.decode([0x30, 0x80]))
        XCTAssertNil(try d.decode([0x30, 0x80, 0x80, 0x80]))
        XCTAssertNil(try d.decode([0x30, 0x05, 0x00, 0x01]))
    }
}

final class PublishHeaderTests: XCTestCase {
    /// Header plus payload must be byte-for-byte the whole packet, in both versions.
    func testPublishHeaderFollowedByPayloadEqualsWholePacket() {
        var props = Properties()
        props.contentType = "application/json"
        props.userProperties = [UserProperty("vin", "VIN1")]
        let payload = [UInt8](repeating: 0x5A, count: 70_000)
        for version in [ProtocolVersion.v3_1_1, .v5] {
            for qos in [QoS.atMostOnce, .atLeastOnce, .exactlyOnce] {
                let p = PublishPacket(qos: qos, retain: true, topic: "cars/VIN1/blob",
                                      packetId: qos == .atMostOnce ? 0 : 42, properties: props, payload: payload)
                var whole: [UInt8] = []
                PacketEncoder.encode(.publish(p), version: version, into: &whole)
                var split: [UInt8] = []
                PacketEncoder.encodePublishHeader(p, version: version, into: &split)
                split += payload
                XCTAssertEqual(split, whole, "\(version) \(qos)")
            }
        }
    }
}
