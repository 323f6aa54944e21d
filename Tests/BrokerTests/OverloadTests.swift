@testable import Broker
import XCTest

final class OverloadTests: XCTestCase {
    func testTokenBucketBurstsOneSecondThenRefills() {
        var b = TokenBucket(rate: 10, now: 1000)
        for _ in 0..<10 { b.take(1, now: 1000) }
        XCTAssertEqual(b.millisecondsUntil(0, now: 1000), 0, "a second's burst is free")
        XCTAssertEqual(b.millisecondsUntil(1, now: 1000), 100)
        b.take(1, now: 1000) // overdrawn, never refused
        XCTAssertEqual(b.millisecondsUntil(0, now: 1000), 100)
        XCTAssertEqual(b.millisecondsUntil(0, now: 1050), 50)
        XCTAssertEqual(b.millisecondsUntil(0, now: 1100), 0)
        XCTAssertEqual(b.millisecondsUntil(10, now: 60_000), 0, "refills up to the burst")
        XCTAssertEqual(b.millisecondsUntil(11, now: 60_000), 100, "and no further")

        var bytes = TokenBucket(rate: 1000, now: 0)
        bytes.take(5000, now: 0) // one packet bigger than the burst
        XCTAssertEqual(bytes.millisecondsUntil(0, now: 0), 4000)
    }

    func testFlappingBansAfterTheLimitThenLetsBackIn() {
        var f = FlappingTracker()
        let (window, ban): (UInt64, UInt64) = (10_000, 2_000)
        func record(_ id: String, _ now: UInt64) -> FlappingTracker.Verdict {
            f.record(id, now: now, maxConnects: 3, window: window, ban: ban)
        }
        XCTAssertEqual(record("a", 100_000), .admit)
        XCTAssertEqual(record("a", 100_100), .admit)
        XCTAssertEqual(record("b", 100_150), .admit, "ids are counted apart")
        XCTAssertEqual(record("a", 100_200), .admit)
        XCTAssertEqual(record("a", 100_300), .banned(connects: 4))
        XCTAssertEqual(record("a", 101_300), .stillBanned(secondsLeft: 1))
        XCTAssertEqual(record("a", 102_300), .admit, "the ban is over")
        XCTAssertEqual(record("a", 102_400), .admit)
        XCTAssertEqual(record("a", 102_500), .admit)
        XCTAssertEqual(record("a", 102_600), .banned(connects: 4), "counting started afresh after the ban")

        XCTAssertEqual(record("c", 200_000), .admit)
        XCTAssertEqual(record("c", 200_001), .admit)
        XCTAssertEqual(record("c", 200_002), .admit)
        XCTAssertEqual(record("c", 210_000), .admit, "a new window")
    }

    func testHeapIsTrimmedWhenMuchOfItIsFree() {
        let mib: UInt64 = 1 << 20
        XCTAssertFalse(Broker.shouldTrim(inUse: 0, free: 0, baseline: 0))
        XCTAssertFalse(Broker.shouldTrim(inUse: 4 * mib, free: 3 * mib, baseline: 0), "under 4 MiB free: not worth a trim")
        XCTAssertTrue(Broker.shouldTrim(inUse: 8 * mib, free: 5 * mib, baseline: 0), "a drained backlog or departed clients")
        XCTAssertFalse(Broker.shouldTrim(inUse: 40 * mib, free: 5 * mib, baseline: 0), "free is small beside what is in use")
        XCTAssertFalse(Broker.shouldTrim(inUse: 8 * mib, free: 6 * mib, baseline: 5 * mib),
                       "what the last trim gave back still counts as free: only new free memory triggers another")
        XCTAssertTrue(Broker.shouldTrim(inUse: 8 * mib, free: 10 * mib, baseline: 5 * mib))
    }
}
