import Foundation
@testable import Storage
import XCTest

final class StoreTests: XCTestCase {
    func testPutGetScanDeleteSurviveReopen() throws {
        let dir = TempDirectory()
        do {
            let (store, report) = try Store.open(directory: dir.path)
            XCTAssertTrue(report.created, "\(report)")
            XCTAssertTrue(report.isClean)
            var b = StoreBatch()
            for i in 0..<100 { b.put(.messages, key: key(i), value: value(i)) }
            b.put(.sessions, key: Array("client-a".utf8), value: [1, 2, 3])
            b.put(.sessions, key: Array("client-b".utf8), value: [])
            XCTAssertEqual(b.count, 102)
            try store.commitNow(b)
            var d = StoreBatch()
            d.delete(.messages, key: key(7))
            d.delete(.sessions, key: Array("client-a".utf8))
            d.delete(.retained, key: [])  // absent and empty: a no-op, not an error
            try store.commitNow(d)
            XCTAssertEqual(try store.get(.sessions, key: Array("client-b".utf8)), [])
            XCTAssertNil(try store.get(.sessions, key: Array("client-a".utf8)))
            store.close()
            store.close()  // idempotent
            XCTAssertThrowsError(try store.get(.messages, key: key(1))) { XCTAssertEqual(($0 as? StorageError)?.code, .closed) }
        }
        let (store, report) = try Store.open(directory: dir.path)
        defer { store.close() }
        XCTAssertFalse(report.created)
        XCTAssertTrue(report.isClean, "\(report)")
        XCTAssertEqual(try keyNumbers(store), (0..<100).filter { $0 != 7 })
        XCTAssertEqual(try store.get(.messages, key: key(42)), value(42))
        XCTAssertNil(try store.get(.messages, key: key(7)))
        XCTAssertNil(try store.get(.wills, key: key(42)), "keyspaces are separate")
        XCTAssertEqual(try store.count(.sessions), 1)
        XCTAssertEqual(try store.count(.messages), 99)
        for ks in Keyspace.allCases where ks != .sessions && ks != .messages { XCTAssertEqual(try store.count(ks), 0, ks.rawValue) }
    }

    func testScanIsNumericOrderAndStopsAtPrefixEnd() throws {
        let dir = TempDirectory()
        let (store, _) = try Store.open(directory: dir.path)
        defer { store.close() }
        var b = StoreBatch()
        // Inserted out of order, across the 255/256 and 65535/65536 byte boundaries.
        for i in [70000, 3, 256, 255, 65536, 1, 0] { b.put(.deliveries, key: key(i, prefix: [1, 2]), value: value(i)) }
        b.put(.deliveries, key: [1, 3], value: [9])  // the next prefix up
        b.put(.deliveries, key: [1], value: [9])     // shorter than the prefix
        try store.commitNow(b)
        var seen: [UInt64] = []
        try store.scan(.deliveries, prefix: [1, 2]) { k, _ in seen.append(RecordKey.trailingU64(k)!); return true }
        XCTAssertEqual(seen, [0, 1, 3, 255, 256, 65536, 70000])
        var firstTwo: [UInt64] = []
        try store.scan(.deliveries, prefix: [1, 2]) { k, _ in firstTwo.append(RecordKey.trailingU64(k)!); return firstTwo.count < 2 }
        XCTAssertEqual(firstTwo, [0, 1])
        XCTAssertEqual(try store.count(.deliveries), 9)
        struct Stop: Error {}
        XCTAssertThrowsError(try store.scan(.deliveries) { _, _ in throw Stop() }) { XCTAssertTrue($0 is Stop) }
    }

    func testStatisticsCountWritesAndBytes() throws {
        let dir = TempDirectory()
        let (store, _) = try Store.open(directory: dir.path)
        try fill(store, 0..<50, perBatch: 10)
        try store.flush()
        let s = store.statistics
        XCTAssertEqual(s.writesTotal, 50)
        XCTAssertEqual(s.commitsTotal, 5)
        XCTAssertEqual(s.syncsTotal, 5)
        XCTAssertEqual(s.pendingBatches, 0)
        XCTAssertGreaterThan(s.bytesOnDisk, 50 * 32, "an SST holds the records")
        store.close()
        XCTAssertEqual(store.statistics.writesTotal, 50, "readable after close")
    }

    func testOpenFailsWithDirectoryNamedWhenItCannotBeCreated() {
        XCTAssertThrowsError(try Store.open(directory: "/proc/turnpike-no-such/store")) { e in
            let e = e as! StorageError
            XCTAssertTrue(e.message.contains("/proc/turnpike-no-such/store"), e.message)
        }
    }

    /// The threads hold the engine, not the Store, so dropping the Store closes it: the
    /// queued batch is written and the directory's lock is released.
    func testDroppingTheStoreClosesIt() throws {
        let dir = TempDirectory()
        do {
            let (store, _) = try Store.open(directory: dir.path, options: StoreOptions(commitIntervalMs: 10_000))
            var b = StoreBatch()
            b.put(.wills, key: [1], value: [2])
            store.commit(b) { _ in }
        }
        let (store, _) = try Store.open(directory: dir.path)
        defer { store.close() }
        XCTAssertEqual(try store.get(.wills, key: [1]), [2])
    }

    func testSecondOpenOfTheSameDirectoryIsRefusedNotRepaired() throws {
        let dir = TempDirectory()
        let (store, _) = try Store.open(directory: dir.path)
        defer { store.close() }
        try fill(store, 0..<10)
        XCTAssertThrowsError(try Store.open(directory: dir.path)) { e in
            XCTAssertEqual((e as! StorageError).code, .io, "\(e)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path + "/lost"))
        XCTAssertEqual(try store.count(.messages), 10)
    }
}
