@testable import Broker
import MQTTCodec
import Storage
import XCTest

/// The bytes a session travels in between nodes (SessionTransfer.swift): what another node
/// sends must come back exactly, and anything else must be refused, not misread.
final class SessionTransferTests: XCTestCase {
    private func session() -> Session {
        let s = Session(clientId: "car-1", owner: 0)
        s.expiryInterval = 3600
        s.protocolVersion = .v5
        s.inboundQoS2 = [7, 3]
        s.inflight = [OutboundMessage(packetId: 5, message: makeMessage("cmd/car-1", "a", qos: .atLeastOnce, retain: false),
                                      qos: .atLeastOnce, retain: false, identifiers: [9], group: nil, state: .awaitingPubAck)]
        s.queue = [QueuedMessage(message: makeMessage("cmd/car-1", "b", qos: .exactlyOnce, retain: false), qos: .exactlyOnce,
                                 retain: true, identifiers: [], group: nil)]
        return s
    }

    func testStateRoundTrips() throws {
        let t = try SessionTransfer.decode(SessionTransfer.encode(session(), wallNow: 1_000_000, monoNow: 5_000))
        XCTAssertEqual(t.record.expiryInterval, 3600)
        XCTAssertEqual(t.record.protocolVersion, .v5)
        XCTAssertEqual(t.inbound, [3, 7])
        XCTAssertEqual(t.deliveries.map { String(decoding: $0.1.payload, as: UTF8.self) }, ["a", "b"])
        XCTAssertEqual(t.deliveries[0].0.packetId, 5)
        XCTAssertEqual(t.deliveries[0].0.identifiers, [9])
        XCTAssertEqual(t.deliveries[1].0.qos, .exactlyOnce)
    }

    func testRestRoundTripsAsQueuedInOrder() throws {
        let rest = try SessionTransfer.decodeRest(SessionTransfer.encodeRest(session(), wallNow: 1_000_000, monoNow: 5_000))
        XCTAssertEqual(rest.map { String(decoding: $0.1.payload, as: UTF8.self) }, ["a", "b"])
        XCTAssertTrue(rest.allSatisfy { $0.0.state == .queued && $0.0.packetId == 0 }, "the new node numbers them itself")
        XCTAssertEqual(rest.map(\.0.retain), [false, true])
    }

    func testTruncatedOrForeignBytesAreRefused() {
        let full = SessionTransfer.encode(session(), wallNow: 1_000_000, monoNow: 5_000)
        for n in 0..<full.count {
            XCTAssertThrowsError(try SessionTransfer.decode(Array(full.prefix(n))), "truncated at \(n)")
        }
        let rest = SessionTransfer.encodeRest(session(), wallNow: 1_000_000, monoNow: 5_000)
        for n in 0..<rest.count {
            XCTAssertThrowsError(try SessionTransfer.decodeRest(Array(rest.prefix(n))), "truncated at \(n)")
        }
        XCTAssertThrowsError(try SessionTransfer.decodeRest(full), "a state is not a rest")
        XCTAssertThrowsError(try SessionTransfer.decode(rest), "a rest is not a state")
        XCTAssertThrowsError(try SessionTransfer.decodeRest(rest + [0]), "trailing bytes")
    }

    func testSameContentIgnoresWhenAndHowItCame() {
        let m = makeMessage("cmd/x", "go", qos: .atLeastOnce, retain: false)
        let copy = Message(topic: "cmd/x", payload: Array("go".utf8), qos: .atLeastOnce, retain: false, properties: Properties(), expiresAt: nil, publisher: nil,
                           publisherClientId: m.publisherClientId, receivedAt: m.receivedAt + 5)
        XCTAssertTrue(m.sameContent(as: copy))
        XCTAssertFalse(m.sameContent(as: makeMessage("cmd/x", "stop", qos: .atLeastOnce, retain: false)))
        XCTAssertFalse(m.sameContent(as: makeMessage("cmd/y", "go", qos: .atLeastOnce, retain: false)))
    }
}
