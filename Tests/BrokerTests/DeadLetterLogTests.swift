@testable import Broker
import XCTest

/// A loop's dead letters: counts per `$dlq` topic, and a ring of the latest, oldest first.
final class DeadLetterLogTests: XCTestCase {
    private func letter(_ topic: String, _ n: Int) -> DeadLetterInfo {
        DeadLetterInfo(topic: topic, error: "e\(n)", rule: "r", originTopic: "t", clientId: "c", payloadBytes: n, at: Int64(n))
    }

    func testCountsEveryTopicAndKeepsTheLatestInOrder() {
        var log = DeadLetterLog()
        XCTAssertTrue(log.recent.isEmpty)
        for i in 0..<5 { log.record(letter("$dlq/rules/a", i)) }
        XCTAssertEqual(log.recent.map(\.payloadBytes), [0, 1, 2, 3, 4])
        let n = DeadLetterLog.capacity * 2 + 3
        for i in 5..<n { log.record(letter(i % 2 == 0 ? "$dlq/rules/a" : "$dlq/bridges/webhook.crm", i)) }
        XCTAssertEqual(log.counts.values.reduce(0, +), n)
        XCTAssertEqual(log.counts["$dlq/bridges/webhook.crm"], (5..<n).filter { $0 % 2 == 1 }.count)
        XCTAssertEqual(log.recent.map(\.payloadBytes), Array((n - DeadLetterLog.capacity)..<n))
    }
}
