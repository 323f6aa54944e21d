import XCTest
@testable import MQTTCodec

/// encode → decode → equal, for every packet type in 3.1.1 and 5.0 (and CONNECT in 3.1), fed whole,
/// byte by byte and concatenated (see `assertRoundTrip`).
final class RoundTripTests: XCTestCase {
    // MARK: v3.1 / v3.1.1

    func testConnectV3() {
        for version in [ProtocolVersion.v3_1, .v3_1_1] {
            assertRoundTrip(.connect(ConnectPacket(protocolVersion: version, clientId: "client1")), version)
            assertRoundTrip(.connect(ConnectPacket(protocolVersion: version, cleanStart: false, keepAlive: 0,
                                                   clientId: "", username: "user", password: [1, 2, 3])), version)
            let will = Will(topic: "clients/c1/status", payload: Array("gone".utf8), qos: .exactlyOnce, retain: true)
            assertRoundTrip(.connect(ConnectPacket(protocolVersion: version, keepAlive: 65535, clientId: "c1",
                                                   will: will, username: "ü-ser", password: [])), version)
            assertRoundTrip(.connect(ConnectPacket(protocolVersion: version, clientId: "c2",
                                                   will: Will(topic: "w", payload: [], qos: .atLeastOnce),
                                                   username: "only-user")), version)
        }
    }

    func testConnAckV3() {
        assertRoundTrip(.connack(ConnAckPacket()), .v3_1_1)
        assertRoundTrip(.connack(ConnAckPacket(sessionPresent: true)), .v3_1_1)
        for code in 1...5 {
            assertRoundTrip(.connack(ConnAckPacket(reasonCode: ReasonCode(UInt8(code)))), .v3_1_1)
        }
    }

    func testPublishV3() {
        assertRoundTrip(.publish(PublishPacket(topic: "a/b", payload: Array("hi".utf8))), .v3_1_1)
        assertRoundTrip(.publish(PublishPacket(retain: true, topic: "a", payload: [])), .v3_1_1)
        assertRoundTrip(.publish(PublishPacket(dup: true, qos: .atLeastOnce, topic: "sensors/€/temp", packetId: 1,
                                               payload: [0, 255, 7])), .v3_1_1)
        assertRoundTrip(.publish(PublishPacket(qos: .exactlyOnce, retain: true, topic: "/", packetId: 65535,
                                               payload: Array(repeating: 0xAB, count: 300))), .v3_1_1)
        assertRoundTrip(.publish(PublishPacket(qos: .atLeastOnce, topic: "$SYS/x", packetId: 9)), .v3_1)
    }

    func testAcksV3() {
        for id: UInt16 in [1, 0x1234, 65535] {
            assertRoundTrip(.puback(AckPacket(packetId: id)), .v3_1_1)
            assertRoundTrip(.pubrec(AckPacket(packetId: id)), .v3_1_1)
            assertRoundTrip(.pubrel(AckPacket(packetId: id)), .v3_1_1)
            assertRoundTrip(.pubcomp(AckPacket(packetId: id)), .v3_1_1)
        }
    }

    func testSubscribeV3() {
        assertRoundTrip(.subscribe(SubscribePacket(packetId: 10, subscriptions: [Subscription(filter: "a/b")])), .v3_1_1)
        assertRoundTrip(.subscribe(SubscribePacket(packetId: 11, subscriptions: [
            Subscription(filter: "a/+/c", options: SubscriptionOptions(qos: .atLeastOnce)),
            Subscription(filter: "#", options: SubscriptionOptions(qos: .exactlyOnce)),
            // Invalid filters still decode: the broker answers them in SUBACK.
            Subscription(filter: "bad#filter"),
        ])), .v3_1_1)
        assertRoundTrip(.suback(SubAckPacket(packetId: 11, reasonCodes: [.grantedQoS0, .grantedQoS1, .grantedQoS2,
                                                                         .v3SubscribeFailure])), .v3_1_1)
    }

    func testUnsubscribeV3() {
        assertRoundTrip(.unsubscribe(UnsubscribePacket(packetId: 3, filters: ["a/b", "c/#"])), .v3_1_1)
        assertRoundTrip(.unsuback(UnsubAckPacket(packetId: 3)), .v3_1_1)
    }

    func testPingAndDisconnectV3() {
        assertRoundTrip(.pingreq, .v3_1_1)
        assertRoundTrip(.pingresp, .v3_1_1)
        assertRoundTrip(.disconnect(DisconnectPacket()), .v3_1_1)
        assertRoundTrip(.pingreq, .v3_1)
    }

    func testV3EncodingDropsV5Fields() throws {
        var p = Properties()
        p.reasonString = "dropped"
        var bytes: [UInt8] = []
        PacketEncoder.encode(.puback(AckPacket(packetId: 5, reasonCode: .unspecifiedError, properties: p)),
                             version: .v3_1_1, into: &bytes)
        XCTAssertEqual(bytes, [0x40, 0x02, 0x00, 0x05])
        bytes = []
        PacketEncoder.encode(.suback(SubAckPacket(packetId: 1, reasonCodes: [.grantedQoS1, .topicFilterInvalid, .notAuthorized])),
                             version: .v3_1_1, into: &bytes)
        XCTAssertEqual(bytes, [0x90, 0x05, 0x00, 0x01, 0x01, 0x80, 0x80])
        bytes = []
        PacketEncoder.encode(.unsuback(UnsubAckPacket(packetId: 1, reasonCodes: [.success])), version: .v3_1_1, into: &bytes)
        XCTAssertEqual(bytes, [0xB0, 0x02, 0x00, 0x01])
        bytes = []
        PacketEncoder.encode(.disconnect(DisconnectPacket(reasonCode: .serverShuttingDown)), version: .v3_1_1, into: &bytes)
        XCTAssertEqual(bytes, [0xE0, 0x00])
        bytes = []
        PacketEncoder.encode(.connack(ConnAckPacket(sessionPresent: true, properties: p)), version: .v3_1_1, into: &bytes)
        XCTAssertEqual(bytes, [0x20, 0x02, 0x01, 0x00])
        bytes = []
        let sub = SubscriptionOptions(qos: .atLeastOnce, noLocal: true, retainAsPublished: true, retainHandling: 2)
        PacketEncoder.encode(.subscribe(SubscribePacket(packetId: 1, subscriptions: [Subscription(filter: "a", options: sub)])),
                             version: .v3_1_1, into: &bytes)
        XCTAssertEqual(bytes, [0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x01])
    }

    // MARK: v5

    func testConnectV5AllConnectAndWillProperties() {
        var p = Properties()
        p.sessionExpiryInterval = 0xFFFF_FFFF
        p.authenticationMethod = "SCRAM-SHA-1"
        p.authenticationData = [1, 2, 3, 4]
        p.requestProblemInformation = 0
        p.requestResponseInformation = 1
        p.receiveMaximum = 20
        p.topicAliasMaximum = 10
        p.userProperties = [UserProperty("k", "v"), UserProperty("k", "v2"), UserProperty("", "")]
        p.maximumPacketSize = 1_048_576
        var w = Properties()
        w.payloadFormatIndicator = 1
        w.messageExpiryInterval = 3600
        w.contentType = "text/plain"
        w.responseTopic = "replies/c1"
        w.correlationData = [9, 8, 7]
        w.willDelayInterval = 30
        w.userProperties = [UserProperty("will", "prop")]
        let will = Will(topic: "clients/c1/status", payload: Array("offline".utf8), qos: .atLeastOnce, retain: true,
                        properties: w)
        assertRoundTrip(.connect(ConnectPacket(protocolVersion: .v5, cleanStart: false, keepAlive: 30, clientId: "c1",
                                               will: will, username: "u", password: [0, 1], properties: p)), .v5)
        // 5.0 allows a password without a user name.
        assertRoundTrip(.connect(ConnectPacket(protocolVersion: .v5, clientId: "", password: [42])), .v5)
        assertRoundTrip(.connect(ConnectPacket(protocolVersion: .v5, clientId: "plain")), .v5)
    }

    func testConnAckV5AllConnAckProperties() {
        var p = Properties()
        p.sessionExpiryInterval = 120
        p.assignedClientIdentifier = "auto-4F2A"
        p.serverKeepAlive = 45
        p.authenticationMethod = "m"
        p.authenticationData = []
        p.responseInformation = "resp/"
        p.serverReference = "other.example:1883"
        p.reasonString = "welcome"
        p.receiveMaximum = 65535
        p.topicAliasMaximum = 0
        p.maximumQoS = 1
        p.retainAvailable = 0
        p.userProperties = [UserProperty("a", "b")]
        p.maximumPacketSize = 268_435_460
        p.wildcardSubscriptionAvailable = 1
        p.subscriptionIdentifierAvailable = 0
        p.sharedSubscriptionAvailable = 1
        assertRoundTrip(.connack(ConnAckPacket(sessionPresent: true, reasonCode: .success, properties: p)), .v5)
        assertRoundTrip(.connack(ConnAckPacket(reasonCode: .notAuthorized)), .v5)
        assertRoundTrip(.connack(ConnAckPacket(reasonCode: .useAnotherServer, properties: p)), .v5)
    }

    func testPublishV5AllPublishProperties() {
        var p = Properties()
        p.payloadFormatIndicator = 0
        p.messageExpiryInterval = 0
        p.contentType = "application/json"
        p.responseTopic = "r/t"
        p.correlationData = Array(repeating: 0x55, count: 16)
        p.subscriptionIdentifiers = [1, 127, 128, 16_384, 268_435_455]
        p.topicAlias = 7
        p.userProperties = [UserProperty("x", "y")]
        assertRoundTrip(.publish(PublishPacket(dup: true, qos: .exactlyOnce, retain: true, topic: "a/b", packetId: 77,
                                               properties: p, payload: Array("{}".utf8))), .v5)
        // Empty topic with a topic alias: the broker resolves it.
        var alias = Properties()
        alias.topicAlias = 1
        assertRoundTrip(.publish(PublishPacket(topic: "", properties: alias, payload: [1])), .v5)
        assertRoundTrip(.publish(PublishPacket(topic: "t")), .v5)
    }

    func testAcksV5() {
        var p = Properties()
        p.reasonString = "why"
        p.userProperties = [UserProperty("k", "v")]
        for make in [Packet.puback, Packet.pubrec] {
            assertRoundTrip(make(AckPacket(packetId: 1)), .v5)
            assertRoundTrip(make(AckPacket(packetId: 2, reasonCode: .noMatchingSubscribers)), .v5)
            assertRoundTrip(make(AckPacket(packetId: 3, reasonCode: .quotaExceeded, properties: p)), .v5)
            assertRoundTrip(make(AckPacket(packetId: 4, reasonCode: .success, properties: p)), .v5)
        }
        for make in [Packet.pubrel, Packet.pubcomp] {
            assertRoundTrip(make(AckPacket(packetId: 1)), .v5)
            assertRoundTrip(make(AckPacket(packetId: 65535, reasonCode: .packetIdentifierNotFound)), .v5)
            assertRoundTrip(make(AckPacket(packetId: 5, reasonCode: .packetIdentifierNotFound, properties: p)), .v5)
        }
    }

    func testSubscribeV5() {
        var p = Properties()
        p.subscriptionIdentifiers = [268_435_455]
        p.userProperties = [UserProperty("s", "1")]
        assertRoundTrip(.subscribe(SubscribePacket(packetId: 1, subscriptions: [
            Subscription(filter: "a/#", options: SubscriptionOptions(qos: .exactlyOnce, noLocal: true,
                                                                    retainAsPublished: true, retainHandling: 2)),
            Subscription(filter: "$share/g/x/+", options: SubscriptionOptions(qos: .atLeastOnce, retainHandling: 1)),
            Subscription(filter: "+"),
        ], properties: p)), .v5)
        var ackProps = Properties()
        ackProps.reasonString = "partial"
        assertRoundTrip(.suback(SubAckPacket(packetId: 1, reasonCodes: [.grantedQoS2, .sharedSubscriptionsNotSupported,
                                                                        .topicFilterInvalid], properties: ackProps)), .v5)
        assertRoundTrip(.suback(SubAckPacket(packetId: 2, reasonCodes: [.grantedQoS0])), .v5)
    }

    func testUnsubscribeV5() {
        var p = Properties()
        p.userProperties = [UserProperty("u", "1")]
        assertRoundTrip(.unsubscribe(UnsubscribePacket(packetId: 4, filters: ["a", "$share/g/b"], properties: p)), .v5)
        var ackProps = Properties()
        ackProps.reasonString = "done"
        assertRoundTrip(.unsuback(UnsubAckPacket(packetId: 4, reasonCodes: [.success, .noSubscriptionExisted],
                                                 properties: ackProps)), .v5)
    }

    func testPingDisconnectAuthV5() {
        assertRoundTrip(.pingreq, .v5)
        assertRoundTrip(.pingresp, .v5)
        assertRoundTrip(.disconnect(DisconnectPacket()), .v5)
        assertRoundTrip(.disconnect(DisconnectPacket(reasonCode: .disconnectWithWillMessage)), .v5)
        var p = Properties()
        p.sessionExpiryInterval = 0
        p.serverReference = "elsewhere"
        p.reasonString = "bye"
        p.userProperties = [UserProperty("d", "1")]
        assertRoundTrip(.disconnect(DisconnectPacket(reasonCode: .serverMoved, properties: p)), .v5)
        assertRoundTrip(.auth(AuthPacket()), .v5)
        var a = Properties()
        a.authenticationMethod = "SCRAM-SHA-1"
        a.authenticationData = Array("client-first".utf8)
        a.reasonString = "step"
        a.userProperties = [UserProperty("a", "1")]
        assertRoundTrip(.auth(AuthPacket(reasonCode: .continueAuthentication, properties: a)), .v5)
        assertRoundTrip(.auth(AuthPacket(reasonCode: .reAuthenticate)), .v5)
    }

    func testV5ShortForms() {
        var bytes: [UInt8] = []
        PacketEncoder.encode(.puback(AckPacket(packetId: 1)), version: .v5, into: &bytes)
        XCTAssertEqual(bytes, [0x40, 0x02, 0x00, 0x01])
        bytes = []
        PacketEncoder.encode(.pubrec(AckPacket(packetId: 1, reasonCode: .noMatchingSubscribers)), version: .v5, into: &bytes)
        XCTAssertEqual(bytes, [0x50, 0x03, 0x00, 0x01, 0x10])
        bytes = []
        PacketEncoder.encode(.disconnect(DisconnectPacket()), version: .v5, into: &bytes)
        XCTAssertEqual(bytes, [0xE0, 0x00])
        bytes = []
        PacketEncoder.encode(.auth(AuthPacket()), version: .v5, into: &bytes)
        XCTAssertEqual(bytes, [0xF0, 0x00])
        // The long forms of the same packets decode to the same values.
        let d = PacketDecoder(version: .v5)
        XCTAssertEqual(try d.decode([0x40, 0x04, 0x00, 0x01, 0x00, 0x00])?.packet, .puback(AckPacket(packetId: 1)))
        XCTAssertEqual(try d.decode([0x62, 0x03, 0x00, 0x01, 0x00])?.packet, .pubrel(AckPacket(packetId: 1)))
        XCTAssertEqual(try d.decode([0xE0, 0x01, 0x00])?.packet, .disconnect(DisconnectPacket()))
        XCTAssertEqual(try d.decode([0xE0, 0x02, 0x00, 0x00])?.packet, .disconnect(DisconnectPacket()))
        XCTAssertEqual(try d.decode([0xF0, 0x02, 0x00, 0x00])?.packet, .auth(AuthPacket()))
    }

    func testSeveralDifferentPacketsInOneBuffer() throws {
        let packets: [Packet] = [
            .connect(ConnectPacket(protocolVersion: .v5, clientId: "x")),
            .publish(PublishPacket(qos: .atLeastOnce, topic: "t", packetId: 1, payload: [1, 2])),
            .subscribe(SubscribePacket(packetId: 2, subscriptions: [Subscription(filter: "#")])),
            .pingreq,
            .disconnect(DisconnectPacket(reasonCode: .disconnectWithWillMessage)),
        ]
        var buffer: [UInt8] = []
        var sizes: [Int] = []
        for p in packets {
            PacketEncoder.encode(p, version: .v5, into: &buffer)
            sizes.append(PacketEncoder.size(of: p, version: .v5))
        }
        XCTAssertEqual(buffer.count, sizes.reduce(0, +))
        let decoder = PacketDecoder(version: .v5)
        var offset = 0
        for (p, size) in zip(packets, sizes) {
            let r = try XCTUnwrap(try decoder.decode(Array(buffer[offset...])))
            XCTAssertEqual(r.packet, p)
            XCTAssertEqual(r.consumed, size)
            offset += r.consumed
        }
        XCTAssertEqual(offset, buffer.count)
        XCTAssertNil(try decoder.decode(Array(buffer[offset...])))
    }

    /// `Will.properties` is boxed copy-on-write: a copy's change never reaches the original.
    func testWillPropertiesAreCopyOnWrite() {
        var a = Will(topic: "w", payload: [1])
        var b = a
        b.properties.willDelayInterval = 30
        XCTAssertNil(a.properties.willDelayInterval)
        XCTAssertEqual(b.properties.willDelayInterval, 30)
        XCTAssertNotEqual(a, b)
        a.properties.willDelayInterval = 30
        XCTAssertEqual(a, b, "equal by value, not by box")
        let c = Will(topic: "w", payload: [1], properties: b.properties)
        XCTAssertEqual(c, b)
    }
}
