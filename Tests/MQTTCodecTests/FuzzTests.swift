import XCTest
@testable import MQTTCodec

/// Random and mutated input must never crash the decoder: every call returns nil, a packet or an
/// error. Anything that does decode must survive re-encoding unchanged.
final class FuzzTests: XCTestCase {
    private static let seeds: [Packet] = {
        var p = Properties()
        p.topicAlias = 3
        p.userProperties = [UserProperty("k", "v")]
        p.subscriptionIdentifiers = [5]
        var c = Properties()
        c.receiveMaximum = 10
        c.authenticationMethod = "m"
        c.authenticationData = [1]
        return [
            .connect(ConnectPacket(protocolVersion: .v5, clientId: "c", will: Will(topic: "w", payload: [1]),
                                   username: "u", password: [2], properties: c)),
            .connect(ConnectPacket(protocolVersion: .v3_1_1, clientId: "c", will: Will(topic: "w", payload: [1]),
                                   username: "u", password: [2])),
            .connack(ConnAckPacket(sessionPresent: true, properties: c)),
            .publish(PublishPacket(qos: .exactlyOnce, topic: "a/b", packetId: 9, properties: p, payload: [1, 2, 3])),
            .puback(AckPacket(packetId: 1, reasonCode: .unspecifiedError, properties: p)),
            .pubrel(AckPacket(packetId: 2)),
            .subscribe(SubscribePacket(packetId: 3, subscriptions: [Subscription(filter: "a/+"), Subscription(filter: "#")])),
            .suback(SubAckPacket(packetId: 3, reasonCodes: [.grantedQoS1, .unspecifiedError])),
            .unsubscribe(UnsubscribePacket(packetId: 4, filters: ["a"])),
            .unsuback(UnsubAckPacket(packetId: 4, reasonCodes: [.success])),
            .disconnect(DisconnectPacket(reasonCode: .serverShuttingDown)),
            .auth(AuthPacket(reasonCode: .continueAuthentication, properties: c)),
            .pingreq,
        ]
    }()

    func testRandomAndMutatedInputNeverCrashes() throws {
        var rng = SeededGenerator(seed: 0x7572_6E70_696B_65)
        var encodedSeeds: [[UInt8]] = []
        for version in [ProtocolVersion.v3_1_1, .v5] {
            for packet in Self.seeds {
                var out: [UInt8] = []
                PacketEncoder.encode(packet, version: version, into: &out)
                encodedSeeds.append(out)
            }
        }
        let decoders = [PacketDecoder(version: .v3_1_1), PacketDecoder(version: .v5, maximumPacketSize: 200)]
        var outcomes = (needMore: 0, packets: 0, errors: 0)

        for iteration in 0..<20_000 {
            var bytes: [UInt8]
            if iteration % 4 == 0 {
                // Pure noise, with a plausible first byte half the time.
                let count = Int.random(in: 0...48, using: &rng)
                bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
                if !bytes.isEmpty && Bool.random(using: &rng) {
                    bytes[0] = UInt8.random(in: 1...15, using: &rng) << 4
                }
            } else {
                bytes = encodedSeeds[Int.random(in: 0..<encodedSeeds.count, using: &rng)]
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    guard !bytes.isEmpty else { break }
                    let i = Int.random(in: 0..<bytes.count, using: &rng)
                    switch Int.random(in: 0..<5, using: &rng) {
                    case 0: bytes[i] = UInt8.random(in: 0...255, using: &rng)
                    case 1: bytes[i] ^= 1 << UInt8.random(in: 0...7, using: &rng)
                    case 2: bytes.removeSubrange(i...)
                    case 3: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: i)
                    default: bytes.remove(at: i)
                    }
                }
            }
            for decoder in decoders {
                do {
                    guard let (packet, consumed) = try decoder.decode(bytes) else {
                        outcomes.needMore += 1
                        continue
                    }
                    outcomes.packets += 1
                    XCTAssertLessThanOrEqual(consumed, bytes.count)
                    // What decodes must re-encode to something that decodes to the same packet.
                    var version = decoder.version
                    if case .connect(let c) = packet { version = c.protocolVersion }
                    var again: [UInt8] = []
                    PacketEncoder.encode(packet, version: version, into: &again)
                    let redecoded = try PacketDecoder(version: version).decode(again)
                    XCTAssertEqual(redecoded?.packet, packet, "input \(hex(bytes))")
                    XCTAssertEqual(redecoded?.consumed, again.count)
                } catch {
                    outcomes.errors += 1
                    XCTAssertFalse(error.message.isEmpty)
                }
            }
        }
        // The mutations should exercise all three outcomes.
        XCTAssertGreaterThan(outcomes.needMore, 100)
        XCTAssertGreaterThan(outcomes.packets, 100)
        XCTAssertGreaterThan(outcomes.errors, 100)
    }
}
