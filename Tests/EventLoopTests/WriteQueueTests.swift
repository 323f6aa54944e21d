@testable import EventLoop
import Glibc
import XCTest

final class WriteQueueTests: XCTestCase {
    private var fds: [Int32] = []

    override func tearDown() {
        for fd in fds { close(fd) }
        fds.removeAll()
        super.tearDown()
    }

    private func pair() -> (Int32, Int32) {
        let (a, b) = makeSocketPair()
        fds += [a, b]
        return (a, b)
    }

    func testSmallAndLargeAppendsArriveInOrder() {
        let (w, r) = pair()
        var q = WriteQueue()
        XCTAssertTrue(q.isEmpty)
        var src = ByteSource(seed: 1)
        var expected: [UInt8] = []
        for i in 0..<200 {
            if i % 25 == 7 {
                let big = src.next(WriteQueue.largePayload + i * 13)
                q.appendChunk(big)
                expected += big
            } else {
                let small = src.next(1 + i % 40)
                q.append { $0 += small }
                expected += small
            }
        }
        q.appendChunk([]) // ignored
        q.append { _ in } // adds nothing
        XCTAssertEqual(q.pendingBytes, expected.count)
        XCTAssertLessThan(expected.count, 100_000, "fits the socket buffer")
        guard case .flushed = q.flush(to: w) else { return XCTFail("expected .flushed") }
        XCTAssertTrue(q.isEmpty)
        XCTAssertEqual(q.pendingBytes, 0)
        var got: [UInt8] = []
        readAvailable(r, into: &got)
        XCTAssertEqual(got.count, expected.count)
        XCTAssertTrue(got == expected, "bytes differ or are out of order")

        // The queue is reusable after a flush.
        q.append { $0 += [1, 2, 3] }
        q.appendChunk([UInt8](repeating: 9, count: 5000))
        q.append { $0 += [4] }
        guard case .flushed = q.flush(to: w) else { return XCTFail("expected .flushed") }
        got.removeAll()
        readAvailable(r, into: &got)
        XCTAssertEqual(got, [1, 2, 3] + [UInt8](repeating: 9, count: 5000) + [4])
    }

    func testPartialWritesDeliverEverythingExactlyOnceInOrder() {
        let (w, r) = pair()
        var q = WriteQueue()
        var src = ByteSource(seed: 2)
        var expected: [UInt8] = []
        // ~700 KiB over a few hundred chunks: more than the 64 iovecs of one writev and far more
        // than the socket buffer.
        for i in 0..<300 {
            if i % 3 == 0 {
                let big = src.next(5_000 + (i * 97) % 9_000)
                q.appendChunk(big)
                expected += big
            } else {
                let small = src.next(1 + (i * 7) % 300)
                q.append { $0 += small }
                expected += small
            }
        }
        XCTAssertGreaterThan(expected.count, 600_000)
        guard case .wouldBlock = q.flush(to: w) else { return XCTFail("expected .wouldBlock on the first flush") }
        XCTAssertGreaterThan(q.pendingBytes, 0)
        XCTAssertLessThan(q.pendingBytes, expected.count)

        var got: [UInt8] = []
        var rounds = 0
        var appendedMidway = false
        while rounds < 10_000 {
            rounds += 1
            let before = q.pendingBytes
            readAvailable(r, into: &got)
            // Output produced while a partial write is pending goes after it.
            if !appendedMidway && got.count > expected.count / 2 {
                appendedMidway = true
                let extra = src.next(123)
                q.append { $0 += extra }
                expected += extra
                let chunk = src.next(7_000)
                q.appendChunk(chunk)
                expected += chunk
            }
            let result = q.flush(to: w)
            XCTAssertLessThanOrEqual(got.count, expected.count)
            if case .failed(let e) = result { return XCTFail("flush failed: \(e)") }
            if case .flushed = result { break }
            XCTAssertTrue(q.pendingBytes <= before + 7_123, "pending never grows except by appends")
        }
        XCTAssertTrue(q.isEmpty)
        readAvailable(r, into: &got)
        XCTAssertTrue(appendedMidway)
        XCTAssertEqual(got.count, expected.count)
        XCTAssertTrue(got == expected, "bytes differ, are duplicated or out of order")
    }

    func testAppendAfterAPartialWriteOfASingleChunk() {
        // One chunk, partly written (headOffset > 0): new bytes go to a fresh chunk after it.
        let (w, r) = pair()
        var q = WriteQueue()
        var src = ByteSource(seed: 3)
        var expected = src.next(800_000)
        let first = expected
        q.append { $0 += first }
        guard case .wouldBlock = q.flush(to: w) else { return XCTFail("expected .wouldBlock") }
        let tail = src.next(10)
        q.append { $0 += tail }
        expected += tail
        var got: [UInt8] = []
        for _ in 0..<10_000 {
            readAvailable(r, into: &got)
            if case .flushed = q.flush(to: w) { break }
        }
        readAvailable(r, into: &got)
        XCTAssertEqual(got.count, expected.count)
        XCTAssertTrue(got == expected)
    }

    func testResetDropsEverythingQueued() {
        let (w, r) = pair()
        var q = WriteQueue()
        q.append { $0 += [1, 2, 3] }
        q.appendChunk([UInt8](repeating: 7, count: 10_000))
        q.reset()
        XCTAssertTrue(q.isEmpty)
        XCTAssertEqual(q.pendingBytes, 0)
        guard case .flushed = q.flush(to: w) else { return XCTFail("expected .flushed") }
        var got: [UInt8] = []
        readAvailable(r, into: &got)
        XCTAssertTrue(got.isEmpty)

        // Reset in the middle of a partial write, then reuse.
        for i in 0..<40 { q.appendChunk([UInt8](repeating: UInt8(i), count: 64 * 1024)) }
        guard case .wouldBlock = q.flush(to: w) else { return XCTFail("expected .wouldBlock") }
        q.reset()
        XCTAssertTrue(q.isEmpty)
        readAvailable(r, into: &got) // discard what got through
        got.removeAll()
        q.append { $0 += [42, 43] }
        q.appendChunk([UInt8](repeating: 44, count: 5000))
        guard case .flushed = q.flush(to: w) else { return XCTFail("expected .flushed") }
        readAvailable(r, into: &got)
        XCTAssertEqual(got, [42, 43] + [UInt8](repeating: 44, count: 5000))
    }

    func testFlushToAClosedPeerFails() {
        signal(SIGPIPE, SIG_IGN) // as the server does; otherwise the write kills the process
        let (w, r) = pair()
        close(r)
        fds.removeAll { $0 == r }
        var q = WriteQueue()
        q.append { $0 += [1, 2, 3] }
        guard case .failed(let e) = q.flush(to: w) else { return XCTFail("expected .failed") }
        XCTAssertEqual(e.errno, EPIPE)
    }
}
