@testable import EventLoop
import XCTest

extension TimerWheel {
    /// Schedules as the loop would at the start of the current tick.
    mutating func schedule(_ timer: TimerNode, afterMilliseconds delay: UInt64) {
        schedule(timer, afterMilliseconds: delay, now: currentTick * TimerWheel.tickMilliseconds)
    }
}

final class TimerWheelTests: XCTestCase {
    func testTimersFireOnlyWhenDueAndCancelledOnesNever() {
        var wheel = TimerWheel(nowMilliseconds: 0)
        var fired: [Int] = []
        let a = LoopTimer { fired.append(1) }
        let b = LoopTimer { fired.append(2) }
        let c = LoopTimer { fired.append(3) }
        wheel.schedule(a, afterMilliseconds: 100)
        wheel.schedule(b, afterMilliseconds: 60_000) // more than one revolution away
        wheel.schedule(c, afterMilliseconds: 100)
        wheel.cancel(c)
        var due: [TimerNode] = []
        wheel.advance(to: 99, due: &due)
        XCTAssertTrue(due.isEmpty)
        wheel.advance(to: 150, due: &due)
        due.forEach { $0.timerFired() }
        XCTAssertEqual(fired, [1])
        due.removeAll()
        wheel.advance(to: 59_999, due: &due)
        XCTAssertTrue(due.isEmpty, "a timer a whole revolution away must not fire early")
        wheel.advance(to: 60_050, due: &due)
        due.forEach { $0.timerFired() }
        XCTAssertEqual(fired, [1, 2])
        XCTAssertEqual(wheel.count, 0)
    }

    /// The tick (from a wheel created at 0 and advanced one tick at a time) at which a timer
    /// scheduled at 0 with `delay` must fire: the delay rounded up to whole ticks, at least one.
    private func expectedFireTime(_ delay: UInt64) -> UInt64 {
        let tick = TimerWheel.tickMilliseconds
        return max(1, (delay + tick - 1) / tick) * tick
    }

    func testManyTimersAcrossSlotsAndRevolutionsEachFireOnceOnTime() {
        var wheel = TimerWheel(nowMilliseconds: 0)
        let n = 3000
        var firedAt = [UInt64?](repeating: nil, count: n)
        var fireCount = [Int](repeating: 0, count: n)
        var now: UInt64 = 0
        var timers: [LoopTimer] = []
        var delays: [UInt64] = []
        for i in 0..<n {
            // Spread over ~2.5 revolutions (1024 ticks × 50 ms = 51.2 s), many sharing a slot.
            let delay = UInt64(i) * 43 % 130_000
            delays.append(delay)
            let t = LoopTimer { firedAt[i] = now; fireCount[i] += 1 }
            timers.append(t)
            wheel.schedule(t, afterMilliseconds: delay)
        }
        XCTAssertEqual(wheel.count, n)
        var due: [TimerNode] = []
        while now < 131_000 {
            now += TimerWheel.tickMilliseconds
            wheel.advance(to: now, due: &due)
            for t in due {
                XCTAssertFalse(t.isScheduled, "a due timer is unscheduled before its callback runs")
                t.timerFired()
            }
            due.removeAll()
        }
        XCTAssertEqual(wheel.count, 0)
        for i in 0..<n {
            XCTAssertEqual(fireCount[i], 1, "timer \(i) (delay \(delays[i]))")
            XCTAssertEqual(firedAt[i], expectedFireTime(delays[i]), "timer \(i) (delay \(delays[i]))")
        }
    }

    func testRescheduleMovesATimer() {
        var wheel = TimerWheel(nowMilliseconds: 0)
        var fired = 0
        let t = LoopTimer { fired += 1 }
        wheel.schedule(t, afterMilliseconds: 100)
        let firstSlot = t.slot
        wheel.schedule(t, afterMilliseconds: 1_000) // later
        XCTAssertNotEqual(t.slot, firstSlot)
        XCTAssertEqual(wheel.count, 1, "rescheduling must not count the timer twice")
        var due: [TimerNode] = []
        wheel.advance(to: 500, due: &due)
        XCTAssertTrue(due.isEmpty, "the old deadline must be gone")
        wheel.advance(to: 1_000, due: &due)
        XCTAssertEqual(due.count, 1)
        due.forEach { $0.timerFired() }
        due.removeAll()
        XCTAssertEqual(fired, 1)

        // Earlier: from 1 s away to 50 ms away.
        wheel.schedule(t, afterMilliseconds: 1_000)
        wheel.schedule(t, afterMilliseconds: 50)
        XCTAssertEqual(wheel.count, 1)
        wheel.advance(to: 1_050, due: &due)
        XCTAssertEqual(due.count, 1)
        due.forEach { $0.timerFired() }
        due.removeAll()
        wheel.advance(to: 5_000, due: &due)
        XCTAssertTrue(due.isEmpty, "the later deadline must be gone")
        XCTAssertEqual(fired, 2)
        XCTAssertEqual(wheel.count, 0)
    }

    func testCancelInTheMiddleOfASlotKeepsTheOthers() {
        var wheel = TimerWheel(nowMilliseconds: 0)
        var fired: Set<Int> = []
        let timers = (0..<6).map { i in LoopTimer { fired.insert(i) } }
        for t in timers { wheel.schedule(t, afterMilliseconds: 200) } // all in one slot
        XCTAssertEqual(Set(timers.map(\.slot)).count, 1)
        XCTAssertEqual(timers.map(\.position), [0, 1, 2, 3, 4, 5])

        // Cancel position 1: the last one (5) is swapped into its place.
        wheel.cancel(timers[1])
        XCTAssertFalse(timers[1].isScheduled)
        XCTAssertEqual(timers[1].position, -1)
        XCTAssertEqual(timers[5].position, 1, "the swapped-in timer's position must be updated")
        // Cancel the moved one: only correct if its position was updated.
        wheel.cancel(timers[5])
        XCTAssertEqual(timers[4].position, 1)
        // Slot now [0, 4, 2, 3]. Cancel the first (3 moves to 0), then the last (2).
        wheel.cancel(timers[0])
        XCTAssertEqual(timers[3].position, 0)
        wheel.cancel(timers[2])
        XCTAssertEqual(wheel.count, 2)
        // Cancelling twice is a no-op.
        wheel.cancel(timers[0])
        XCTAssertEqual(wheel.count, 2)
        let remaining = [timers[3], timers[4]]
        XCTAssertEqual(remaining.map(\.position), [0, 1])

        var due: [TimerNode] = []
        wheel.advance(to: 200, due: &due)
        due.forEach { $0.timerFired() }
        XCTAssertEqual(fired, [3, 4])
        XCTAssertEqual(due.count, 2)
        XCTAssertEqual(wheel.count, 0)
    }

    func testAdvanceAfterALongStallFiresEverythingDueExactlyOnce() {
        var wheel = TimerWheel(nowMilliseconds: 1_000)
        var fired: [Int: Int] = [:]
        let delays: [UInt64] = [0, 50, 100, 25_000, 51_150, 51_200, 51_250, 60_000, 99_950, 100_050, 150_000, 400_000]
        let timers = delays.indices.map { i in LoopTimer { fired[i, default: 0] += 1 } }
        for (t, d) in zip(timers, delays) { wheel.schedule(t, afterMilliseconds: d) }
        // Several slots share a bucket (e.g. 50 and 51_250 are 1024 ticks apart).
        var due: [TimerNode] = []
        // A stall of ~2000 ticks, more than one revolution.
        wheel.advance(to: 101_000, due: &due)
        due.forEach { $0.timerFired() }
        due.removeAll()
        let dueFirst = delays.indices.filter { 1_000 + expectedFireTime(delays[$0]) <= 101_000 }
        XCTAssertEqual(Set(fired.keys), Set(dueFirst))
        XCTAssertTrue(fired.values.allSatisfy { $0 == 1 })
        XCTAssertEqual(wheel.count, delays.count - dueFirst.count)

        // Another long stall: the rest fire, once.
        wheel.advance(to: 1_000_000, due: &due)
        due.forEach { $0.timerFired() }
        due.removeAll()
        XCTAssertEqual(fired.count, delays.count)
        XCTAssertTrue(fired.values.allSatisfy { $0 == 1 }, "\(fired)")
        XCTAssertEqual(wheel.count, 0)

        // The wheel keeps working from the new time.
        var late = 0
        let t = LoopTimer { late += 1 }
        wheel.schedule(t, afterMilliseconds: 100)
        wheel.advance(to: 1_000_050, due: &due)
        XCTAssertTrue(due.isEmpty)
        wheel.advance(to: 1_000_100, due: &due)
        due.forEach { $0.timerFired() }
        XCTAssertEqual(late, 1)
    }

    func testCountTracking() {
        var wheel = TimerWheel(nowMilliseconds: 0)
        XCTAssertEqual(wheel.count, 0)
        let a = LoopTimer {}, b = LoopTimer {}, c = LoopTimer {}
        wheel.cancel(a) // not scheduled: no-op
        XCTAssertEqual(wheel.count, 0)
        wheel.schedule(a, afterMilliseconds: 100)
        wheel.schedule(b, afterMilliseconds: 100)
        wheel.schedule(c, afterMilliseconds: 10_000)
        XCTAssertEqual(wheel.count, 3)
        wheel.schedule(a, afterMilliseconds: 300) // reschedule
        XCTAssertEqual(wheel.count, 3)
        wheel.cancel(b)
        XCTAssertEqual(wheel.count, 2)
        var due: [TimerNode] = []
        wheel.advance(to: 300, due: &due)
        XCTAssertEqual(due.map(ObjectIdentifier.init), [ObjectIdentifier(a)])
        XCTAssertEqual(wheel.count, 1)
        XCTAssertTrue(c.isScheduled)
        XCTAssertFalse(a.isScheduled)
        wheel.cancel(c)
        XCTAssertEqual(wheel.count, 0)
    }

    /// The deadline counts from the time of scheduling, not from the last processed tick, so a
    /// timer scheduled late in a tick does not fire up to a tick early.
    func testTimerScheduledLateInATickDoesNotFireEarly() {
        var wheel = TimerWheel(nowMilliseconds: 0)
        var due: [TimerNode] = []
        wheel.advance(to: 99, due: &due) // now 99 ms: tick 1
        wheel.schedule(LoopTimer {}, afterMilliseconds: 100, now: 99) // due at 199 ms or later
        wheel.advance(to: 150, due: &due) // only 51 ms later
        XCTAssertTrue(due.isEmpty, "a 100 ms timer fired after 51 ms")
        wheel.advance(to: 200, due: &due) // first tick boundary at or after 199 ms
        XCTAssertEqual(due.count, 1, "due by 200 ms")
    }
}
