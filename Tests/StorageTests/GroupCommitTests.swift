import Dispatch
import Foundation
@testable import Storage
import Synchronization
import XCTest

/// Records each completion: how often per batch, and in what order.
private final class Completions: @unchecked Sendable {
    let order = Mutex<[Int]>([])
    let errors = Mutex<[StorageError]>([])
    let done = DispatchSemaphore(value: 0)
    let expected: Int
    init(expected: Int) { self.expected = expected }

    func record(_ n: Int, _ error: StorageError?) {
        let count = order.withLock { $0.append(n); return $0.count }
        if let error { errors.withLock { $0.append(error) } }
        if count == expected { done.signal() }
    }
}

final class GroupCommitTests: XCTestCase {
    /// 2 threads × 5,000 single-record batches. A test lock around numbering and `commit` makes
    /// the submission order known, so completions must run in exactly that order, once each.
    func testConcurrentCommitsCompleteOnceInOrderAndGroup() throws {
        let dir = TempDirectory()
        let total = 10_000
        do {
            let (store, _) = try Store.open(directory: dir.path, options: StoreOptions(durability: .sync))
            let completions = Completions(expected: total)
            let submission = Mutex(0)
            DispatchQueue.concurrentPerform(iterations: 2) { _ in
                for _ in 0..<(total / 2) {
                    submission.withLock { next in
                        let n = next
                        next += 1
                        var b = StoreBatch()
                        b.put(.messages, key: key(n), value: value(n))
                        store.commit(b) { completions.record(n, $0) }
                    }
                }
            }
            XCTAssertEqual(completions.done.wait(timeout: .now() + 30), .success)
            XCTAssertEqual(completions.order.withLock { $0 }, Array(0..<total), "each completion once, in submission order")
            XCTAssertEqual(completions.errors.withLock { $0.count }, 0)
            let s = store.statistics
            XCTAssertEqual(s.writesTotal, total)
            XCTAssertEqual(s.pendingBatches, 0)
            XCTAssertEqual(s.syncsTotal, s.commitsTotal)
            XCTAssertLessThan(s.commitsTotal, total / 4, "one fsync covers many batches (\(s.commitsTotal) commits)")
            print("group commit: \(total) batches in \(s.commitsTotal) commits")
            store.close()
        }
        let (store, _) = try Store.open(directory: dir.path)
        defer { store.close() }
        XCTAssertEqual(try keyNumbers(store), Array(0..<total))
    }

    /// Later batches overwrite earlier ones in submission order, also inside one group.
    func testBatchesApplyInSubmissionOrder() throws {
        let dir = TempDirectory()
        let (store, _) = try Store.open(directory: dir.path, options: StoreOptions(commitIntervalMs: 20))
        defer { store.close() }
        let completions = Completions(expected: 200)
        for n in 0..<200 {
            var b = StoreBatch()
            b.put(.meta, key: [1], value: value(n))
            if n % 2 == 0 { b.delete(.meta, key: [2]) } else { b.put(.meta, key: [2], value: value(n)) }
            store.commit(b) { completions.record(n, $0) }
        }
        XCTAssertEqual(completions.done.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(try store.get(.meta, key: [1]), value(199))
        XCTAssertEqual(try store.get(.meta, key: [2]), value(199))
        XCTAssertLessThan(store.statistics.commitsTotal, 20, "a 20 ms window gathers the burst")
    }

    func testCloseDrainsPendingBatches() throws {
        let dir = TempDirectory()
        let (store, _) = try Store.open(directory: dir.path, options: StoreOptions(commitIntervalMs: 10_000))
        let completions = Completions(expected: 1000)
        for n in 0..<1000 {
            var b = StoreBatch()
            b.put(.messages, key: key(n), value: value(n))
            store.commit(b) { completions.record(n, $0) }
        }
        XCTAssertEqual(store.statistics.pendingBatches, 1000, "the 10 s window holds them")
        let start = DispatchTime.now()
        store.close()
        XCTAssertLessThan(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds, 5_000_000_000, "close does not wait out the window")
        XCTAssertEqual(completions.order.withLock { $0 }, Array(0..<1000), "close ran every completion")
        XCTAssertEqual(completions.errors.withLock { $0.count }, 0)
        let late = Completions(expected: 1)
        store.commit(StoreBatch()) { late.record(0, $0) }
        XCTAssertEqual(late.errors.withLock { $0.map(\.code) }, [.closed])

        let (again, _) = try Store.open(directory: dir.path)
        defer { again.close() }
        XCTAssertEqual(try again.count(.messages), 1000)
    }

    func testPeriodicDurabilitySyncsInTheBackground() throws {
        let dir = TempDirectory()
        let (store, _) = try Store.open(directory: dir.path, options: StoreOptions(durability: .periodic(intervalMs: 20)))
        let completions = Completions(expected: 500)
        for n in 0..<500 {
            var b = StoreBatch()
            b.put(.messages, key: key(n), value: value(n))
            store.commit(b) { completions.record(n, $0) }
        }
        XCTAssertEqual(completions.done.wait(timeout: .now() + 10), .success)
        XCTAssertLessThan(store.statistics.syncsTotal, store.statistics.commitsTotal, "commits do not fsync")
        let deadline = DispatchTime.now() + 5
        while store.statistics.syncsTotal == 0 && DispatchTime.now() < deadline { usleep(5_000) }
        XCTAssertGreaterThanOrEqual(store.statistics.syncsTotal, 1, "the flusher synced the WAL")
        let idle = store.statistics.syncsTotal
        usleep(100_000)
        XCTAssertEqual(store.statistics.syncsTotal, idle, "nothing new written, nothing synced")
        store.close()
        let (again, _) = try Store.open(directory: dir.path)
        defer { again.close() }
        XCTAssertEqual(try keyNumbers(again), Array(0..<500))
    }
}
