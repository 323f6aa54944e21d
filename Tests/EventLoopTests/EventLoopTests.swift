@testable import EventLoop
import Glibc
import XCTest

private final class ReadRecorder: EventHandler {
    let fd: Int32
    let loop: EventLoop
    let bytes = Locked<[UInt8]>([])
    let readableCalls = Locked(0)
    let offLoopCalls = Locked(0)
    init(fd: Int32, loop: EventLoop) { self.fd = fd; self.loop = loop }
    func handleReadable() {
        if !loop.inLoop { offLoopCalls.withLock { $0 += 1 } }
        readableCalls.withLock { $0 += 1 }
        var got: [UInt8] = []
        readAvailable(fd, into: &got)
        bytes.withLock { $0 += got }
    }
    func handleWritable() {}
}

final class EventLoopTests: XCTestCase {
    private var group: EventLoopGroup!

    override func setUpWithError() throws {
        group = try EventLoopGroup(threads: 2)
    }

    override func tearDown() {
        group?.stopAndJoin()
        group = nil
        super.tearDown()
    }

    /// Runs `body` on `loop` and waits (bounded) for it to finish.
    private func onLoop(_ loop: EventLoop, _ body: @escaping () -> Void) {
        let done = expectation(description: "task ran")
        loop.execute { body(); done.fulfill() }
        wait(for: [done], timeout: 5)
    }

    func testExecuteRunsOnTheLoopThread() {
        group.start()
        let l0 = group.loops[0], l1 = group.loops[1]
        XCTAssertFalse(l0.inLoop)
        XCTAssertFalse(l1.inLoop)
        let seen = Locked<[Bool]>([])
        onLoop(l0) { seen.withLock { $0 = [l0.inLoop, l1.inLoop] } }
        XCTAssertEqual(seen.get, [true, false])
        onLoop(l1) { seen.withLock { $0 = [l0.inLoop, l1.inLoop] } }
        XCTAssertEqual(seen.get, [false, true])
        XCTAssertEqual(group.loops.map(\.index), [0, 1])
        // Round robin.
        XCTAssertTrue(group.nextLoop() === l0)
        XCTAssertTrue(group.nextLoop() === l1)
        XCTAssertTrue(group.nextLoop() === l0)
    }

    func testTimerFiresRoughlyOnTimeAndCancelledTimerNever() {
        group.start()
        let loop = group.loops[0]
        let fired = expectation(description: "timer fired")
        let start = Locked<UInt64>(0)
        let elapsed = Locked<UInt64>(0)
        let cancelledFired = Locked(false)
        let inLoop = Locked(false)
        let cancelled = LoopTimer { cancelledFired.withLock { $0 = true } }
        let timer = LoopTimer {
            inLoop.withLock { $0 = loop.inLoop }
            elapsed.withLock { $0 = monotonicMilliseconds() - start.get }
            fired.fulfill()
        }
        // Scheduled from inside a timer callback: the wheel is armed and ticking.
        let warmUp = LoopTimer {
            start.withLock { $0 = monotonicMilliseconds() }
            loop.schedule(timer, afterMilliseconds: 100)
            loop.schedule(cancelled, afterMilliseconds: 50)
            loop.cancel(cancelled)
            XCTAssertFalse(cancelled.isScheduled)
        }
        loop.execute { loop.schedule(warmUp, afterMilliseconds: 0) }
        wait(for: [fired], timeout: 5)
        XCTAssertTrue(inLoop.get)
        XCTAssertGreaterThanOrEqual(elapsed.get, 90)
        XCTAssertLessThanOrEqual(elapsed.get, 1000)
        usleep(100_000)
        XCTAssertFalse(cancelledFired.get)
    }

    func testTimerCallbackCanRescheduleItself() {
        group.start()
        let loop = group.loops[1]
        let done = expectation(description: "fired three times")
        let count = Locked(0)
        var timer: LoopTimer!
        timer = LoopTimer {
            let n = count.withLock { $0 += 1; return $0 }
            if n < 3 { loop.schedule(timer, afterMilliseconds: 10) } else { done.fulfill() }
        }
        loop.execute { loop.schedule(timer, afterMilliseconds: 10) }
        wait(for: [done], timeout: 5)
        usleep(150_000)
        XCTAssertEqual(count.get, 3)
    }

    /// The wheel's tick does not move while no timer is scheduled; a timer scheduled after such an
    /// idle period must still count its delay from now (a will delay or session expiry must not
    /// fire on the next tick).
    func testTimerScheduledAfterAnIdlePeriodDoesNotFireEarly() {
        group.start()
        let loop = group.loops[0]
        usleep(600_000) // the loop is idle, with no timers, for 600 ms
        let fired = expectation(description: "timer fired")
        let start = Locked<UInt64>(0)
        let elapsed = Locked<UInt64>(0)
        let timer = LoopTimer {
            elapsed.withLock { $0 = monotonicMilliseconds() - start.get }
            fired.fulfill()
        }
        loop.execute {
            start.withLock { $0 = monotonicMilliseconds() }
            loop.schedule(timer, afterMilliseconds: 400)
        }
        wait(for: [fired], timeout: 5)
        XCTAssertGreaterThanOrEqual(elapsed.get, 350, "a 400 ms timer fired after \(elapsed.get) ms")
    }

    func testMailboxDeliversEveryMessageOnceInPerProducerOrder() {
        let loop = group.loops[0]
        let producers = 4, singles = 10_000, batches = 20, batchSize = 100
        let perProducer = singles + batches * batchSize
        // Touched only on the loop thread until stopAndJoin, which orders it with the reads below.
        final class Sink { var next = [Int](repeating: 0, count: 4); var received = 0; var outOfOrder = 0; var offLoop = 0 }
        let sink = Sink()
        let all = expectation(description: "all received")
        // A mailbox is created before the loop runs (its drain list is loop-confined).
        let mailbox = Mailbox<(producer: Int, seq: Int)>(loop: loop) { m in
            if !loop.inLoop { sink.offLoop += 1 }
            if m.seq != sink.next[m.producer] { sink.outOfOrder += 1 }
            sink.next[m.producer] = m.seq + 1
            sink.received += 1
            if sink.received == producers * perProducer { all.fulfill() }
        }
        group.start()
        DispatchQueue.concurrentPerform(iterations: producers) { p in
            var seq = 0
            let every = (singles + batches) / batches // one batch every 501 sends
            for i in 0..<(singles + batches) {
                if i % every == 0 {
                    mailbox.send(contentsOf: (seq..<seq + batchSize).map { (p, $0) })
                    seq += batchSize
                } else {
                    mailbox.send((p, seq))
                    seq += 1
                }
            }
            mailbox.send(contentsOf: []) // a no-op
            precondition(seq == perProducer)
        }
        wait(for: [all], timeout: 10)
        group.stopAndJoin()
        XCTAssertEqual(sink.received, producers * perProducer)
        XCTAssertEqual(sink.outOfOrder, 0)
        XCTAssertEqual(sink.next, [Int](repeating: perProducer, count: producers))
        XCTAssertEqual(sink.offLoop, 0)
    }

    func testRegisteredHandlerSeesReadableAndInterestCanBePaused() {
        group.start()
        let loop = group.loops[1]
        let (mine, peer) = makeSocketPair()
        defer { close(mine); close(peer) }
        let h = ReadRecorder(fd: mine, loop: loop)
        var registerError: Error?
        onLoop(loop) {
            do { try loop.register(fd: mine, handler: h) } catch { registerError = error }
        }
        XCTAssertNil(registerError)

        XCTAssertEqual(writeBytes(peer, [1, 2, 3]), 3)
        XCTAssertTrue(waitUntil { h.bytes.get == [1, 2, 3] })
        XCTAssertEqual(h.offLoopCalls.get, 0)

        // Read interest off: data waits in the socket, no callbacks.
        onLoop(loop) { loop.setInterest(fd: mine, readable: false, writable: false) }
        let callsBefore = h.readableCalls.get
        XCTAssertEqual(writeBytes(peer, [4, 5]), 2)
        usleep(200_000)
        XCTAssertEqual(h.readableCalls.get, callsBefore, "no readable callback while read interest is off")
        XCTAssertEqual(h.bytes.get, [1, 2, 3])

        // Back on: the waiting bytes are reported.
        onLoop(loop) { loop.setInterest(fd: mine, readable: true, writable: false) }
        XCTAssertTrue(waitUntil { h.bytes.get == [1, 2, 3, 4, 5] })

        // Deregistered: no more callbacks.
        onLoop(loop) { loop.deregister(fd: mine) }
        let callsAfter = h.readableCalls.get
        XCTAssertEqual(writeBytes(peer, [6]), 1)
        usleep(100_000)
        XCTAssertEqual(h.readableCalls.get, callsAfter)
    }

    /// Handlers live in a table indexed by descriptor, mapped for the whole descriptor limit:
    /// high descriptor numbers (past the first pages, past epoll's batch of 256) are served.
    func testHighDescriptorsAreServed() {
        group.start()
        let loop = group.loops[0]
        var pairs: [(Int32, Int32, ReadRecorder)] = []
        defer { for (a, b, _) in pairs { close(a); close(b) } }
        for _ in 0..<300 {
            let (mine, peer) = makeSocketPair()
            pairs.append((mine, peer, ReadRecorder(fd: mine, loop: loop)))
        }
        XCTAssertGreaterThan(pairs.last!.0, 512)
        onLoop(loop) { for (mine, _, h) in pairs { try? loop.register(fd: mine, handler: h) } }
        for (_, peer, _) in pairs { XCTAssertEqual(writeBytes(peer, [7]), 1) }
        XCTAssertTrue(waitUntil { pairs.allSatisfy { $0.2.bytes.get == [7] } })
        onLoop(loop) { for (mine, _, _) in pairs { loop.deregister(fd: mine) } }
    }
}
