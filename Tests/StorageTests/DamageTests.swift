import Foundation
@testable import Storage
import XCTest

/// Real damage to a real store directory: every case must open (repairing if need be) or throw,
/// never crash, and keep everything the damage did not touch.
final class DamageTests: XCTestCase {
    /// A store with `sst` records flushed to SST files, then `wal` more only in the WAL.
    private func makeStore(_ dir: TempDirectory, sst: Int, wal: Int, sessions: Bool = true) throws {
        let (store, _) = try Store.open(directory: dir.path)
        try fill(store, 0..<sst, perBatch: 100)
        if sessions { try fill(store, 0..<sst, .sessions, perBatch: 100) }
        try store.flush()
        try fill(store, sst..<(sst + wal))
        store.close()
    }

    /// What opens now, as the key numbers in `messages`.
    private func reopen(_ dir: TempDirectory, file: StaticString = #filePath, line: UInt = #line) throws -> ([Int], RecoveryReport) {
        let (store, report) = try Store.open(directory: dir.path)
        defer { store.close() }
        print("\(name): \(report)")
        return (try keyNumbers(store), report)
    }

    func testTruncatedWALKeepsEveryRecordBeforeTheCut() throws {
        let dir = TempDirectory()
        try makeStore(dir, sst: 0, wal: 1000)
        let wal = try XCTUnwrap(dir.files(withSuffix: ".log").last)
        print("\(name): \(wal) is \(dir.size(wal)) bytes")
        dir.truncate(wal, to: dir.size(wal) / 2)
        let (keys, report) = try reopen(dir)
        print("\(name): \(keys.count) of 1000 kept")
        XCTAssertFalse(report.repaired)
        XCTAssertGreaterThan(keys.count, 300)
        XCTAssertLessThan(keys.count, 1000)
        assertKeys(keys, 0..<keys.count, "a prefix of what was written, nothing skipped")
    }

    func testGarbageOverTheWALKeepsTheSSTs() throws {
        let dir = TempDirectory()
        try makeStore(dir, sst: 500, wal: 500)
        let wal = try XCTUnwrap(dir.files(withSuffix: ".log").last)
        dir.scribble(wal)
        let (keys, report) = try reopen(dir)
        XCTAssertFalse(report.repaired, "point-in-time recovery drops the WAL, no repair needed")
        assertKeys(keys, 0..<500, "the SSTs are intact, the WAL's records are gone")
    }

    func testGarbageOverTheMiddleOfTheWALKeepsWhatCameBefore() throws {
        let dir = TempDirectory()
        try makeStore(dir, sst: 0, wal: 1000)
        let wal = try XCTUnwrap(dir.files(withSuffix: ".log").last)
        dir.scribble(wal, at: dir.size(wal) / 2, count: 100)
        let (keys, _) = try reopen(dir)
        print("\(name): \(keys.count) of 1000 kept")
        XCTAssertGreaterThan(keys.count, 300)
        XCTAssertLessThan(keys.count, 1000)
        assertKeys(keys, 0..<keys.count)
    }

    func testGarbageOverCURRENTIsRepairedFromTheSSTs() throws {
        let dir = TempDirectory()
        try makeStore(dir, sst: 500, wal: 200)
        dir.scribble("CURRENT")
        let (keys, report) = try reopen(dir)
        XCTAssertTrue(report.repaired, "\(report)")
        XCTAssertFalse(report.problems.isEmpty)
        XCTAssertTrue(keys.starts(with: 0..<500), "\(keys.count) keys")
        print("\(name): recovered \(keys.count) of 700")
    }

    func testGarbageOverTheMANIFESTIsRepairedFromTheSSTsAndWAL() throws {
        let dir = TempDirectory()
        try makeStore(dir, sst: 500, wal: 200)
        let manifest = try XCTUnwrap(dir.listing().map { String($0.split(separator: " ")[0]) }.first { $0.hasPrefix("MANIFEST-") })
        dir.scribble(manifest)
        let (keys, report) = try reopen(dir)
        XCTAssertTrue(report.repaired, "\(report)")
        XCTAssertTrue(report.problems.joined().contains("MANIFEST"), "\(report)")
        XCTAssertTrue(keys.starts(with: 0..<500), "\(keys.count) keys")
        print("\(name): recovered \(keys.count) of 700")
        // The repaired store stays a store: a second open is clean.
        let (_, second) = try reopen(dir)
        XCTAssertTrue(second.isClean, "\(second)")
    }

    /// Data only in the WAL, for keyspaces that never had an SST of their own: repair still
    /// knows their column families (Store.open anchors each with an SST) and keeps the records.
    func testGarbageOverTheMANIFESTKeepsWALOnlyKeyspaces() throws {
        let dir = TempDirectory()
        try makeStore(dir, sst: 0, wal: 300)
        let manifest = try XCTUnwrap(dir.listing().map { String($0.split(separator: " ")[0]) }.first { $0.hasPrefix("MANIFEST-") })
        dir.scribble(manifest)
        let (keys, report) = try reopen(dir)
        XCTAssertTrue(report.repaired, "\(report)")
        assertKeys(keys, 0..<300)
    }

    func testMissingCURRENTIsRepairedNotStartedOver() throws {
        let dir = TempDirectory()
        try makeStore(dir, sst: 500, wal: 200)
        dir.remove("CURRENT")
        let (keys, report) = try reopen(dir)
        XCTAssertTrue(report.repaired, "\(report)")
        XCTAssertFalse(report.created)
        XCTAssertTrue(keys.starts(with: 0..<500), "\(keys.count) keys")
    }

    /// The whole SST is garbage: open fails on its footer, repair sets the file aside and keeps
    /// everything else, including the WAL records written after it.
    func testGarbageOverAnSSTIsSetAsideByRepair() throws {
        let dir = TempDirectory()
        try makeStore(dir, sst: 2000, wal: 100, sessions: false)
        let sst = try XCTUnwrap(dir.largestSST())
        dir.scribble(sst)
        let (keys, report) = try reopen(dir)
        XCTAssertTrue(report.repaired, "\(report)")
        XCTAssertTrue(report.lostFiles.contains(sst), "\(report)")
        XCTAssertTrue(report.problems.contains { $0.contains(sst) }, "a problem names the SST: \(report)")
        assertKeys(keys, 2000..<2100, "the SST's records are lost, the WAL's are not")
    }

    /// Garbage inside one data block, footer and index intact: RocksDB opens without noticing
    /// (it reads blocks lazily), reads of that block fail with Corruption naming the file, and
    /// StoreCheck finds it.
    func testGarbageInsideAnSSTBlockFailsReadsNotOpen() throws {
        let dir = TempDirectory()
        try makeStore(dir, sst: 2000, wal: 100, sessions: false)
        let sst = try XCTUnwrap(dir.largestSST())
        dir.scribble(sst, at: 100, count: 64)
        let check = StoreCheck.run(directory: dir.path)
        print("\(name): \(check)")
        XCTAssertFalse(check.isOK)
        XCTAssertTrue(check.problems.joined().contains(sst), "\(check)")
        let (store, report) = try Store.open(directory: dir.path)
        defer { store.close() }
        print("\(name): \(report)")
        XCTAssertThrowsError(try keyNumbers(store)) { e in
            print("\(self.name): scan: \(e)")
            XCTAssertEqual((e as? StorageError)?.code, .corruption)
            XCTAssertTrue((e as? StorageError)?.message.contains(sst) ?? false, "\(e)")
        }
        XCTAssertEqual(try store.get(.messages, key: key(2050)), value(2050), "records outside the block still read")
    }

    func testCheckOfAHealthyStoreCountsAndChangesNothing() throws {
        let dir = TempDirectory()
        try makeStore(dir, sst: 300, wal: 50)
        let before = dir.listing()
        let check = StoreCheck.run(directory: dir.path)
        XCTAssertTrue(check.isOK, "\(check)")
        XCTAssertEqual(check.counts[.messages], 350)
        XCTAssertEqual(check.counts[.sessions], 300)
        XCTAssertEqual(check.counts[.wills], 0)
        XCTAssertGreaterThan(check.bytesOnDisk, 0)
        XCTAssertEqual(dir.listing(), before, "check wrote nothing")
    }

    func testCheckOfDamagedStoresReportsAndChangesNothing() throws {
        let dir = TempDirectory()
        try makeStore(dir, sst: 300, wal: 50)
        let wal = try XCTUnwrap(dir.files(withSuffix: ".log").last)
        dir.truncate(wal, to: dir.size(wal) - 7)
        var before = dir.listing()
        var check = StoreCheck.run(directory: dir.path)
        XCTAssertTrue(check.isOK, "a torn last record is what a crash leaves, not damage: \(check)")
        XCTAssertEqual(check.counts[.messages], 349, "counted as Store.open would recover it")
        XCTAssertEqual(dir.listing(), before)

        // Garbage in the WAL's first 32 KiB block, which is not its last: RocksDB can tell it
        // from a torn tail (in the last block a bad length reads as end of file, see the report).
        let big = TempDirectory()
        try makeStore(big, sst: 300, wal: 1000)
        let bigWAL = try XCTUnwrap(big.files(withSuffix: ".log").last)
        XCTAssertGreaterThan(big.size(bigWAL), 32 << 10)
        big.scribble(bigWAL, at: 1000, count: 100)
        let bigBefore = big.listing()
        let bad = StoreCheck.run(directory: big.path)
        print("\(name): bad WAL: \(bad)")
        XCTAssertFalse(bad.isOK, "garbage inside the WAL is reported")
        XCTAssertTrue(bad.problems.joined().contains(bigWAL), "\(bad)")
        XCTAssertLessThan(bad.counts[.messages] ?? 0, 1300)
        XCTAssertEqual(big.listing(), bigBefore)

        let manifest = try XCTUnwrap(dir.listing().map { String($0.split(separator: " ")[0]) }.first { $0.hasPrefix("MANIFEST-") })
        dir.scribble(manifest)
        before = dir.listing()
        check = StoreCheck.run(directory: dir.path)
        print("\(name): bad MANIFEST: \(check)")
        XCTAssertFalse(check.isOK)
        XCTAssertTrue(check.problems.joined().contains(manifest), "\(check)")
        XCTAssertEqual(dir.listing(), before)

        dir.remove("CURRENT")
        before = dir.listing()
        check = StoreCheck.run(directory: dir.path)
        XCTAssertFalse(check.isOK)
        XCTAssertTrue(check.problems.joined().contains("CURRENT"), "\(check)")
        XCTAssertEqual(dir.listing(), before)

        // An SST the MANIFEST does not list (here: linked in from another store).
        let other = TempDirectory()
        try makeStore(other, sst: 100, wal: 0)
        let stray = try XCTUnwrap(other.largestSST())
        let healthy = TempDirectory()
        try makeStore(healthy, sst: 100, wal: 0)
        XCTAssertEqual(link(other.path + "/" + stray, healthy.path + "/900000.sst"), 0)
        check = StoreCheck.run(directory: healthy.path)
        XCTAssertFalse(check.isOK)
        XCTAssertTrue(check.problems.joined().contains("900000.sst"), "\(check)")
        try Store.open(directory: healthy.path).0.close()
        XCTAssertFalse(FileManager.default.fileExists(atPath: healthy.path + "/900000.sst"), "RocksDB deletes an SST its MANIFEST does not list")

        let empty = TempDirectory()
        XCTAssertFalse(StoreCheck.run(directory: empty.path).isOK)
        XCTAssertFalse(FileManager.default.fileExists(atPath: empty.path), "check creates no directory")
    }
}
