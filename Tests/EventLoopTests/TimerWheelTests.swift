@testable import EventLoop
import XCTest

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
        var due: [LoopTimer] = []
        wheel.advance(to: 99, due: &due)
        XCTAssertTrue(due.isEmpty)
        wheel.advance(to: 150, due: &due)
        due.forEach { $0.callback() }
        XCTAssertEqual(fired, [1])
        due.removeAll()
        wheel.advance(to: 59_999, due: &due)
        XCTAssertTrue(due.isEmpty, "a timer a whole revolution away must not fire early")
        wheel.advance(to: 60_050, due: &due)
        due.forEach { $0.callback() }
        XCTAssertEqual(fired, [1, 2])
        XCTAssertEqual(wheel.count, 0)
    }
}
