@testable import Broker
import MQTTCodec
import XCTest

func makeMessage(_ topic: String, _ payload: String, qos: QoS = .atMostOnce, retain: Bool = true,
                 expiresAt: UInt64? = nil) -> Message {
    Message(topic: topic, payload: Array(payload.utf8), qos: qos, retain: retain, properties: Properties(),
            expiresAt: expiresAt, publisher: nil, publisherClientId: "pub", receivedAt: 0)
}

final class RetainedStoreTests: XCTestCase {
    private func payloads(_ ms: [Message]) -> [String] { ms.map { String(decoding: $0.payload, as: UTF8.self) } }

    func testStoreReplaceAndClear() {
        let store = RetainedStore()
        XCTAssertEqual(store.store(makeMessage("a/b", "1")), 1)
        XCTAssertEqual(store.store(makeMessage("a/c", "2")), 2)
        XCTAssertEqual(store.store(makeMessage("a/b", "3")), 2, "replacing keeps the count")
        XCTAssertEqual(payloads(store.matching("a/b", now: 0)), ["3"])
        XCTAssertEqual(store.store(makeMessage("a/b", "")), 1, "an empty payload clears")
        XCTAssertEqual(store.matching("a/b", now: 0).count, 0)
        XCTAssertEqual(store.store(makeMessage("nothing/here", "")), 1, "clearing a missing topic is a no-op")
        XCTAssertEqual(store.count, 1)
    }

    func testMatchingWithWildcardsAndExactLookup() {
        let store = RetainedStore()
        for t in ["a/b", "a/c", "a/b/c", "a", "b/b", "$SYS/x", "/a"] { _ = store.store(makeMessage(t, t)) }
        XCTAssertEqual(payloads(store.matching("a/+", now: 0)), ["a/b", "a/c"], "sorted by topic")
        XCTAssertEqual(payloads(store.matching("a/#", now: 0)), ["a", "a/b", "a/b/c", "a/c"])
        XCTAssertEqual(payloads(store.matching("+/b", now: 0)), ["a/b", "b/b"])
        XCTAssertEqual(payloads(store.matching("#", now: 0)), ["/a", "a", "a/b", "a/b/c", "a/c", "b/b"], "no $ topics")
        XCTAssertEqual(payloads(store.matching("$SYS/#", now: 0)), ["$SYS/x"])
        XCTAssertEqual(payloads(store.matching("+/a", now: 0)), ["/a"])
        XCTAssertEqual(payloads(store.matching("a/b/c", now: 0)), ["a/b/c"])
        XCTAssertEqual(payloads(store.matching("$SYS/x", now: 0)), ["$SYS/x"])
        XCTAssertTrue(store.matching("a/b/c/d", now: 0).isEmpty)
        XCTAssertTrue(store.matching("A/B", now: 0).isEmpty)
    }

    func testExpiredMessagesAreDroppedAndRemoved() {
        let store = RetainedStore()
        _ = store.store(makeMessage("e/1", "old", expiresAt: 1_000))
        _ = store.store(makeMessage("e/2", "fresh", expiresAt: 5_000))
        _ = store.store(makeMessage("e/3", "forever"))
        _ = store.store(makeMessage("x", "old", expiresAt: 1_000))
        XCTAssertEqual(store.count, 4)

        XCTAssertEqual(payloads(store.matching("e/+", now: 999)), ["old", "fresh", "forever"])
        XCTAssertEqual(store.count, 4)
        XCTAssertEqual(payloads(store.matching("e/+", now: 1_000)), ["fresh", "forever"], "expired at its deadline")
        XCTAssertEqual(store.count, 3, "the expired one is removed")
        XCTAssertEqual(payloads(store.matching("e/#", now: 10_000)), ["forever"])
        XCTAssertEqual(store.count, 2)

        // Exact lookup drops an expired message too.
        XCTAssertEqual(payloads(store.matching("x", now: 999)), ["old"])
        XCTAssertTrue(store.matching("x", now: 2_000).isEmpty)
        XCTAssertEqual(store.count, 1)
    }
}
