@testable import Broker
import MQTTCodec
import XCTest

final class SessionTests: XCTestCase {
    private func inflight(_ id: UInt16) -> OutboundMessage {
        OutboundMessage(packetId: id, message: makeMessage("t", "p", qos: .atLeastOnce), qos: .atLeastOnce,
                        retain: false, identifiers: [], group: nil, state: .awaitingPubAck)
    }

    func testNextPacketIdSkipsIdsInUse() {
        let s = Session(clientId: "c", owner: 0)
        XCTAssertEqual(s.nextPacketId(), 1)
        XCTAssertEqual(s.nextPacketId(), 2)
        s.inflight = [inflight(3), inflight(4), inflight(6)]
        XCTAssertEqual(s.nextPacketId(), 5)
        XCTAssertEqual(s.nextPacketId(), 7)
    }

    func testNextPacketIdWrapsToOneNeverZero() {
        let s = Session(clientId: "c", owner: 0)
        var last: UInt16 = 0
        for _ in 0..<65_534 {
            last = s.nextPacketId()
            XCTAssertNotEqual(last, 0)
        }
        XCTAssertEqual(last, 65_534)
        XCTAssertEqual(s.nextPacketId(), 65_535)
        XCTAssertEqual(s.nextPacketId(), 1, "wraps from 65535 to 1")

        // Across the wrap with ids in use on both sides.
        for _ in 0..<65_532 { _ = s.nextPacketId() } // now at 65533
        s.inflight = [inflight(65_535), inflight(1), inflight(2)]
        XCTAssertEqual(s.nextPacketId(), 65_534)
        XCTAssertEqual(s.nextPacketId(), 3)
        var seen = Set<UInt16>()
        for _ in 0..<70_000 {
            let id = s.nextPacketId()
            XCTAssertNotEqual(id, 0)
            XCTAssertFalse([65_535, 1, 2].contains(id))
            seen.insert(id)
        }
        XCTAssertEqual(seen.count, 65_532, "every free id is used")
    }
}

final class MessageTests: XCTestCase {
    func testRemainingExpiryRoundsUpAndIsZeroWhenExpired() {
        let m = makeMessage("t", "p", expiresAt: 10_000)
        XCTAssertEqual(m.remainingExpiry(now: 0), 10)
        XCTAssertEqual(m.remainingExpiry(now: 1), 10, "9.999 s rounds up to 10")
        XCTAssertEqual(m.remainingExpiry(now: 8_999), 2, "1.001 s rounds up to 2")
        XCTAssertEqual(m.remainingExpiry(now: 9_000), 1)
        XCTAssertEqual(m.remainingExpiry(now: 9_999), 1)
        XCTAssertEqual(m.remainingExpiry(now: 10_000), 0)
        XCTAssertEqual(m.remainingExpiry(now: 50_000), 0)
        XCTAssertFalse(m.isExpired(now: 9_999))
        XCTAssertTrue(m.isExpired(now: 10_000))

        let forever = makeMessage("t", "p")
        XCTAssertNil(forever.remainingExpiry(now: 123))
        XCTAssertFalse(forever.isExpired(now: .max))

        // The largest interval (0xFFFFFFFF s) fits.
        let longest = makeMessage("t", "p", expiresAt: 1_000 + UInt64(UInt32.max) * 1000)
        XCTAssertEqual(longest.remainingExpiry(now: 1_000), UInt32.max)
    }
}

final class SubscriptionTableTests: XCTestCase {
    func testSubscriptionTableFromOneToManyAndBack() {
        var t = SubscriptionTable()
        XCTAssertTrue(t.isEmpty)
        let r1 = SubscriptionRecord(options: SubscriptionOptions(qos: .atLeastOnce), identifier: nil)
        let r2 = SubscriptionRecord(options: SubscriptionOptions(qos: .exactlyOnce), identifier: 5)
        t["a"] = r1
        XCTAssertEqual(t.count, 1)
        XCTAssertEqual(t["a"]?.options.qos, .atLeastOnce)
        XCTAssertNil(t["b"])
        t["a"] = r2 // replace inline
        XCTAssertEqual(t["a"]?.identifier, 5)
        t["b"] = r1
        t["c"] = r1
        XCTAssertEqual(t.count, 3)
        XCTAssertEqual(Set(t.keys), ["a", "b", "c"])
        XCTAssertEqual(Set(t.map { "\($0.key)=\($0.value.options.qos.rawValue)" }), ["a=2", "b=1", "c=1"])
        t["b"] = nil
        t["nope"] = nil
        t["a"] = nil
        XCTAssertEqual(t.count, 1)
        XCTAssertEqual(t.keys, ["c"])
        t["c"] = nil
        XCTAssertTrue(t.isEmpty)
        t["d"] = r1
        t.removeAll()
        XCTAssertTrue(t.isEmpty)
        XCTAssertEqual(Array(t.keys), [])
    }
}
