import XCTest
@testable import MQTTCodec

/// Broken input: each case asserts the exact reason code (and, by returning, that nothing crashed).
final class MalformedPacketTests: XCTestCase {
    private let mqtt = str("MQTT")

    private func connectV3(flags: UInt8, payload: [UInt8] = str("c")) -> [UInt8] {
        frame(0x10, mqtt + [4, flags, 0, 60] + payload)
    }

    private func connectV5(flags: UInt8 = 0x02, properties: [UInt8], payload: [UInt8] = str("c")) -> [UInt8] {
        frame(0x10, mqtt + [5, flags, 0, 60] + props(properties) + payload)
    }

    private func publishV5(_ properties: [UInt8], topic: String = "t") -> [UInt8] {
        frame(0x30, str(topic) + props(properties))
    }

    // MARK: Fixed header

    func testReservedFlagBits() {
        assertDecodeError([0x11, 0x00], .malformedPacket)                       // CONNECT
        assertDecodeError([0x21, 0x02, 0x00, 0x00], .malformedPacket)           // CONNACK
        assertDecodeError([0x48, 0x02, 0x00, 0x01], .malformedPacket)           // PUBACK
        assertDecodeError([0x60, 0x02, 0x00, 0x01], .malformedPacket)           // PUBREL must be 0010
        assertDecodeError([0x63, 0x02, 0x00, 0x01], .malformedPacket)
        assertDecodeError(frame(0x80, [0, 1] + str("a") + [0]), .malformedPacket) // SUBSCRIBE must be 0010
        assertDecodeError(frame(0xA0, [0, 1] + str("a")), .malformedPacket)       // UNSUBSCRIBE must be 0010
        assertDecodeError([0xC1, 0x00], .malformedPacket)                       // PINGREQ
        assertDecodeError([0xE2, 0x00], .malformedPacket)                       // DISCONNECT
    }

    func testReservedPacketTypes() {
        assertDecodeError([0x00, 0x00], .malformedPacket)
        assertDecodeError([0xF0, 0x00], version: .v3_1_1, .malformedPacket)    // AUTH on v3
        assertDecodeError([0xF0, 0x00], version: .v3_1, .malformedPacket)
    }

    func testPublishQoS3() {
        assertDecodeError([0x36, 0x05, 0x00, 0x01, 0x74, 0x00, 0x01], .malformedPacket)
        assertDecodeError([0x36], version: .v5, .malformedPacket)               // detected from the first byte
    }

    func testDupWithQoS0() {
        assertDecodeError([0x38, 0x03, 0x00, 0x01, 0x74], .malformedPacket)
        assertDecodeError([0x38, 0x04, 0x00, 0x01, 0x74, 0x00], version: .v5, .malformedPacket)
    }

    // MARK: Remaining length

    func testFiveByteRemainingLength() {
        assertDecodeError([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], .malformedPacket)
        assertDecodeError([0x30, 0x80, 0x80, 0x80, 0x80], .malformedPacket)     // known before the 5th byte
    }

    func testOverlongRemainingLength() {
        assertDecodeError([0x30, 0x80, 0x00], .malformedPacket)
        assertDecodeError([0xC0, 0x80, 0x00], .malformedPacket)
        assertDecodeError([0x30, 0x85, 0x80, 0x00], .malformedPacket)
    }

    func testPacketTooLargeFromHeaderAlone() {
        // 1,000-byte body announced; only the header has arrived.
        assertDecodeError([0x30, 0xE8, 0x07], maximumPacketSize: 100, .packetTooLarge)
        // The limit counts the whole packet: 2 + 98 = 100 is fine, 2 + 99 is not.
        XCTAssertNil(try PacketDecoder(maximumPacketSize: 100).decode([0x30, 98]))
        assertDecodeError([0x30, 99], maximumPacketSize: 100, .packetTooLarge)
    }

    func testPingWithBody() {
        assertDecodeError([0xC0, 0x01, 0x00], .malformedPacket)
        assertDecodeError([0xD0, 0x02, 0x00, 0x00], version: .v5, .malformedPacket)
    }

    // MARK: Strings

    func testStringLengthRunsPastEnd() {
        assertDecodeError([0x30, 0x03, 0x00, 0x05, 0x61], .malformedPacket)
        // The string fits the buffer but not the packet: the next packet's bytes are not read.
        assertDecodeError([0x30, 0x03, 0x00, 0x05, 0x61, 0xC0, 0x00, 0xC0, 0x00], .malformedPacket)
        assertDecodeError(connectV3(flags: 0x82, payload: str("c") + [0x00, 0x09, 0x61]), .malformedPacket)
    }

    func testInvalidUTF8() {
        assertDecodeError(frame(0x30, [0x00, 0x02, 0xC3, 0x28]), .malformedPacket)           // bad continuation
        assertDecodeError(frame(0x30, [0x00, 0x03, 0xED, 0xA0, 0x80]), .malformedPacket)     // surrogate U+D800
        assertDecodeError(frame(0x30, [0x00, 0x02, 0xC0, 0xAF]), .malformedPacket)           // overlong '/'
        assertDecodeError(frame(0x30, [0x00, 0x04, 0xF4, 0x90, 0x80, 0x80]), .malformedPacket) // > U+10FFFF
        assertDecodeError(frame(0x30, [0x00, 0x01, 0xFF]), .malformedPacket)
        let message = assertDecodeError(frame(0x10, mqtt + [4, 0x02, 0, 60, 0x00, 0x01, 0x80]), .malformedPacket)
        XCTAssertTrue(message?.contains("MQTT-1.5.4-1") ?? false)
    }

    func testNullCharacter() {
        let message = assertDecodeError(frame(0x30, [0x00, 0x03, 0x61, 0x00, 0x62]), .malformedPacket)
        XCTAssertTrue(message?.contains("MQTT-1.5.4-2") ?? false)
        assertDecodeError(connectV5(properties: [0x26] + str("a\u{0}") + str("v")), .malformedPacket)
    }

    // MARK: PUBLISH

    func testWildcardInPublishTopic() {
        assertDecodeError(frame(0x30, str("a/+")), .topicNameInvalid)
        assertDecodeError(frame(0x30, str("a/#") + [0]), version: .v5, .topicNameInvalid)
    }

    func testEmptyPublishTopic() {
        assertDecodeError(frame(0x30, str("")), .malformedPacket)
        assertDecodeError(publishV5([], topic: ""), version: .v5, .protocolError)   // no topic alias
    }

    func testPacketIdentifierZero() {
        assertDecodeError(frame(0x32, str("t") + [0, 0]), .protocolError)              // PUBLISH QoS 1
        assertDecodeError(frame(0x34, str("t") + [0, 0, 0]), version: .v5, .protocolError) // PUBLISH QoS 2
        assertDecodeError([0x40, 0x02, 0x00, 0x00], .protocolError)                    // PUBACK
        assertDecodeError([0x62, 0x02, 0x00, 0x00], version: .v5, .protocolError)      // PUBREL
        assertDecodeError(frame(0x82, [0, 0] + str("a") + [0]), .protocolError)        // SUBSCRIBE
        assertDecodeError(frame(0xA2, [0, 0] + str("a")), .protocolError)              // UNSUBSCRIBE
    }

    // MARK: SUBSCRIBE / UNSUBSCRIBE

    func testSubscribeWithoutFilters() {
        assertDecodeError([0x82, 0x02, 0x00, 0x01], .protocolError)
        assertDecodeError([0x82, 0x03, 0x00, 0x01, 0x00], version: .v5, .protocolError)
    }

    func testSubscribeOptionBits() {
        assertDecodeError(frame(0x82, [0, 1] + str("a") + [0x04]), .malformedPacket)           // v3: upper 6 bits
        assertDecodeError(frame(0x82, [0, 1] + str("a") + [0x03]), .malformedPacket)           // v3: QoS 3
        assertDecodeError(frame(0x82, [0, 1, 0] + str("a") + [0x40]), version: .v5, .malformedPacket) // v5: bit 6
        assertDecodeError(frame(0x82, [0, 1, 0] + str("a") + [0x03]), version: .v5, .protocolError)   // v5: QoS 3
        assertDecodeError(frame(0x82, [0, 1] + str("a")), .malformedPacket)                   // options byte missing
    }

    func testRetainHandling3() {
        assertDecodeError(frame(0x82, [0, 1, 0] + str("a") + [0x30]), version: .v5, .protocolError)
    }

    func testNoLocalOnSharedSubscription() {
        let message = assertDecodeError(frame(0x82, [0, 1, 0] + str("$share/g/a") + [0x04]), version: .v5, .protocolError)
        XCTAssertTrue(message?.contains("MQTT-3.8.3-4") ?? false)
    }

    func testInvalidFilterIsNotADecodeError() throws {
        let packet = try PacketDecoder(version: .v5).decode(frame(0x82, [0, 1, 0] + str("a/#/b") + [0x01]))?.packet
        XCTAssertEqual(packet, .subscribe(SubscribePacket(packetId: 1, subscriptions: [
            Subscription(filter: "a/#/b", options: SubscriptionOptions(qos: .atLeastOnce))])))
    }

    func testUnsubscribeWithoutFilters() {
        assertDecodeError([0xA2, 0x02, 0x00, 0x01], .protocolError)
        assertDecodeError([0xA2, 0x03, 0x00, 0x01, 0x00], version: .v5, .protocolError)
    }

    // MARK: Properties

    func testDuplicateProperty() {
        assertDecodeError(connectV5(properties: [0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2]), .protocolError)
        assertDecodeError(publishV5([0x23, 0, 1, 0x23, 0, 2]), version: .v5, .protocolError)
        // Subscription identifier may repeat in PUBLISH, not in SUBSCRIBE.
        assertDecodeError(frame(0x82, [0, 1] + props([0x0B, 1, 0x0B, 2]) + str("a") + [0]), version: .v5, .protocolError)
        // User properties may repeat.
        XCTAssertNoThrow(try PacketDecoder(version: .v5).decode(publishV5([0x26] + str("a") + str("b") + [0x26] + str("a") + str("b"))))
    }

    func testUnknownPropertyIdentifier() {
        assertDecodeError(connectV5(properties: [0x04, 0x00]), .malformedPacket)
        assertDecodeError(publishV5([0x7F, 0x00]), version: .v5, .malformedPacket)
        assertDecodeError(publishV5([0xFF, 0x7F, 0x00]), version: .v5, .malformedPacket)  // 2-byte identifier
    }

    func testPropertyNotAllowedInPacket() {
        assertDecodeError(connectV5(properties: [0x23, 0x00, 0x01]), .malformedPacket)          // topic alias in CONNECT
        assertDecodeError(publishV5([0x11, 0, 0, 0, 1]), version: .v5, .malformedPacket)         // session expiry in PUBLISH
        assertDecodeError(connectV5(properties: [0x18, 0, 0, 0, 1]), .malformedPacket)          // will delay outside the will
        assertDecodeError(frame(0x40, [0, 1, 0x00] + props([0x0B, 1])), version: .v5, .malformedPacket) // sub id in PUBACK
        // A will property list with a CONNECT-only property.
        assertDecodeError(connectV5(flags: 0x06, properties: [],
                                    payload: str("c") + props([0x21, 0, 5]) + str("w") + bin([])), .malformedPacket)
    }

    func testPropertyValues() {
        assertDecodeError(connectV5(properties: [0x21, 0x00, 0x00]), .protocolError)               // receive maximum 0
        assertDecodeError(connectV5(properties: [0x27, 0, 0, 0, 0]), .protocolError)               // maximum packet size 0
        assertDecodeError(publishV5([0x01, 0x02]), version: .v5, .protocolError)                   // payload format 2
        assertDecodeError(connectV5(properties: [0x17, 0x02]), .protocolError)                     // request problem info 2
        assertDecodeError(connectV5(properties: [0x19, 0x05]), .protocolError)                     // request response info 5
        assertDecodeError(frame(0x82, [0, 1] + props([0x0B, 0]) + str("a") + [0]), version: .v5, .protocolError) // sub id 0
        assertDecodeError(publishV5([0x23, 0x00, 0x00]), version: .v5, .topicAliasInvalid)         // topic alias 0
        assertDecodeError(frame(0x20, [0, 0] + props([0x24, 2])), version: .v5, .protocolError)   // maximum QoS 2
        assertDecodeError(publishV5([0x08] + str("r/#")), version: .v5, .protocolError)            // wildcard response topic
        assertDecodeError(connectV5(properties: [0x16] + bin([1])), .protocolError)                // auth data, no method
    }

    func testPropertyLengthErrors() {
        // Property length larger than what is left of the packet.
        assertDecodeError(frame(0x30, str("t") + [0x05, 0x01]), version: .v5, .malformedPacket)
        // A property value running past the property length.
        assertDecodeError(frame(0x30, str("t") + [0x02, 0x02, 0x00, 0x00, 0x00]), version: .v5, .malformedPacket)
        // Non-minimal property length.
        assertDecodeError(frame(0x30, str("t") + [0x80, 0x00]), version: .v5, .malformedPacket)
        // CONNACK v5 without a property length.
        assertDecodeError([0x20, 0x02, 0x00, 0x00], version: .v5, .malformedPacket)
    }

    // MARK: CONNECT

    func testBadProtocolNameOrLevel() {
        assertDecodeError(frame(0x10, str("MQTX") + [4, 2, 0, 60] + str("c")), .unsupportedProtocolVersion)
        assertDecodeError(frame(0x10, str("mqtt") + [4, 2, 0, 60] + str("c")), .unsupportedProtocolVersion)
        assertDecodeError(frame(0x10, str("MQTT") + [3, 2, 0, 60] + str("c")), .unsupportedProtocolVersion)
        assertDecodeError(frame(0x10, str("MQTT") + [6, 2, 0, 60] + str("c")), .unsupportedProtocolVersion)
        assertDecodeError(frame(0x10, str("MQIsdp") + [4, 2, 0, 60] + str("c")), .unsupportedProtocolVersion)
        assertDecodeError(frame(0x10, str("MQTT") + [0x84, 2, 0, 60] + str("c")), .unsupportedProtocolVersion)
        assertDecodeError(frame(0x10, [0x00, 0x04, 0xFF, 0xFE, 0x00, 0x01, 4, 2, 0, 60] + str("c")), .unsupportedProtocolVersion)
    }

    func testReservedConnectFlag() {
        let message = assertDecodeError(connectV3(flags: 0x03), .malformedPacket)
        XCTAssertTrue(message?.contains("MQTT-3.1.2-3") ?? false)
        assertDecodeError(connectV5(flags: 0x01, properties: []), .malformedPacket)
    }

    func testWillFlagsWithoutWill() {
        assertDecodeError(connectV3(flags: 0x0A), .malformedPacket)   // will QoS 1, no will flag
        assertDecodeError(connectV3(flags: 0x22), .malformedPacket)   // will retain, no will flag
        assertDecodeError(connectV5(flags: 0x12, properties: []), .malformedPacket)
        // Will QoS 3.
        assertDecodeError(connectV3(flags: 0x1E, payload: str("c") + str("w") + bin([])), .malformedPacket)
    }

    func testWillTopic() {
        assertDecodeError(connectV3(flags: 0x06, payload: str("c") + str("w/#") + bin([])), .topicNameInvalid)
        assertDecodeError(connectV3(flags: 0x06, payload: str("c") + str("") + bin([])), .topicNameInvalid)
        assertDecodeError(connectV3(flags: 0x06, payload: str("c") + str("w")), .malformedPacket)   // no will payload
    }

    func testPasswordWithoutUserName() throws {
        let message = assertDecodeError(connectV3(flags: 0x42, payload: str("c") + bin([1])), .malformedPacket)
        XCTAssertTrue(message?.contains("MQTT-3.1.2-22") ?? false)
        // Allowed on 5.0.
        let packet = try PacketDecoder().decode(connectV5(flags: 0x42, properties: [], payload: str("c") + bin([1])))?.packet
        XCTAssertEqual(packet, .connect(ConnectPacket(protocolVersion: .v5, clientId: "c", password: [1])))
    }

    func testUserNameFlagWithoutUserName() {
        assertDecodeError(connectV3(flags: 0x82), .malformedPacket)
    }

    // MARK: Trailing bytes and acks

    func testTrailingGarbage() {
        assertDecodeError(connectV3(flags: 0x02, payload: str("c") + [0xAA]), .malformedPacket)
        assertDecodeError([0x40, 0x03, 0x00, 0x01, 0x00], .malformedPacket)                 // v3 PUBACK
        assertDecodeError([0xB0, 0x03, 0x00, 0x01, 0x00], .malformedPacket)                 // v3 UNSUBACK
        assertDecodeError([0xE0, 0x01, 0x00], .malformedPacket)                             // v3 DISCONNECT
        assertDecodeError([0x20, 0x03, 0x00, 0x00, 0x00], .malformedPacket)                 // v3 CONNACK
        assertDecodeError([0x40, 0x05, 0x00, 0x01, 0x00, 0x00, 0x99], version: .v5, .malformedPacket)
        assertDecodeError([0xE0, 0x03, 0x00, 0x00, 0x00], version: .v5, .malformedPacket)
    }

    func testReasonCodeNotAllowed() {
        assertDecodeError([0x40, 0x03, 0x00, 0x01, 0x92], version: .v5, .protocolError)     // PUBACK with PUBREL's code
        assertDecodeError([0x62, 0x03, 0x00, 0x01, 0x10], version: .v5, .protocolError)     // PUBREL with PUBACK's code
        assertDecodeError([0xE0, 0x01, 0x01], version: .v5, .protocolError)                 // DISCONNECT 0x01
        assertDecodeError([0xF0, 0x02, 0x80, 0x00], version: .v5, .protocolError)           // AUTH 0x80
        assertDecodeError([0x90, 0x04, 0x00, 0x01, 0x00, 0x05], version: .v5, .protocolError) // SUBACK 0x05
        assertDecodeError([0x90, 0x03, 0x00, 0x01, 0x03], .protocolError)                   // v3 SUBACK 0x03
        assertDecodeError([0x20, 0x02, 0x00, 0x06], .protocolError)                         // v3 CONNACK 6
        assertDecodeError([0x20, 0x02, 0x01, 0x05], .protocolError)                         // session present + refusal
        assertDecodeError([0x20, 0x02, 0x02, 0x00], .malformedPacket)                       // CONNACK reserved flags
    }
}
