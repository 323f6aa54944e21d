import CRocksDB
import Glibc

/// `turnpike storage check`: a read-only look at a store directory that changes nothing in it.
public enum StoreCheck {
    /// Opens `directory` read-only (the WAL is replayed into memory, nothing is written; RocksDB's
    /// info LOG goes to a temporary directory, removed afterwards), counts every keyspace by a
    /// full scan with checksum verification (7.8.3's C API has no `rocksdb_verify_checksum`),
    /// and reports what it could not read, and SSTs the MANIFEST does not list. The WAL is replayed
    /// a second time with absolute consistency, so damage inside it is reported even though
    /// `Store.open` opens it (dropping the records from the damage on).
    /// `validate` (the broker's record decoder) is asked about every record; what it says is
    /// reported with the keyspace and key, at most 20 records per keyspace.
    public static func run(directory: String,
                           validate: ((Keyspace, UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> String?)? = nil) -> CheckReport {
        var report = CheckReport(directory: directory)
        let dir = StoreDirectory(path: directory)
        report.bytesOnDisk = dir.bytesOnDisk()
        guard dir.exists("CURRENT") else {
            let files = dir.files().map(\.name)
            report.problems.append(files.isEmpty
                ? "\(directory) holds no store"
                : "CURRENT is missing in \(directory) (holding \(files.joined(separator: ", ")))")
            return report
        }

        guard let logDir = makeLogDirectory() else {
            report.problems.append("cannot create a temporary directory for RocksDB's LOG: errno \(errno)")
            return report
        }
        defer { removeLogDirectory(logDir) }

        let options = RocksDBOptions(StoreOptions(), createIfMissing: false)
        options.setInfoLogDirectory(logDir)
        let handle: RocksDBHandle
        do {
            handle = try RocksDBHandle.open(path: directory, options: options, readOnly: true)
        } catch {
            report.problems.append(error.message)
            return report
        }
        defer { handle.close() }

        // The lenient open worked, so a strict failure is the WAL.
        if let problem = strictReplayProblem(directory, logDir: logDir) { report.problems.append(problem) }

        // SSTs on disk that the MANIFEST does not list: a CURRENT pointing at the wrong (or a
        // new, empty) MANIFEST. Store.open would let RocksDB delete them; repair adopts them.
        let live = rocksdb_livefiles(handle.db)!
        defer { rocksdb_livefiles_destroy(live) }
        let liveNames = Set((0..<rocksdb_livefiles_count(live)).map { i in
            String(cString: rocksdb_livefiles_name(live, i)).split(separator: "/").last.map(String.init) ?? ""
        })
        let orphans = dir.files().map(\.name).filter { $0.hasSuffix(".sst") && !liveNames.contains($0) }
        if !orphans.isEmpty {
            report.problems.append("the MANIFEST does not list " + orphans.joined(separator: ", ") + "; opening would delete them, repair adopts them")
        }

        let readOptions = rocksdb_readoptions_create()!
        defer { rocksdb_readoptions_destroy(readOptions) }
        rocksdb_readoptions_set_verify_checksums(readOptions, 1)
        rocksdb_readoptions_set_fill_cache(readOptions, 0)
        for ks in Keyspace.allCases {
            guard let family = handle.keyspaces[ks.index] else {
                report.counts[ks] = 0  // an older store; Store.open creates it
                continue
            }
            var n = 0
            do {
                var bad = 0
                try handle.iterate(family, readOptions: readOptions, prefix: []) { key, value in
                    n += 1
                    if let validate, let problem = validate(ks, key, value) {
                        bad += 1
                        if bad <= 20 { report.problems.append("\(ks.rawValue) record \(describeKey(key)): \(problem)") }
                    }
                    return true
                }
                if bad > 20 { report.problems.append("\(ks.rawValue): \(bad - 20) more records that do not decode") }
                report.counts[ks] = n
            } catch {
                report.problems.append("\(ks.rawValue): \((error as? StorageError)?.message ?? "\(error)") after \(n) records")
            }
        }
        return report
    }
}

extension StoreCheck {
    /// After a crash, before `Store.open`: damage inside the write-ahead log, which point-in-time
    /// recovery would drop silently (with everything after it), as one line naming the file; nil
    /// when the log replays cleanly or there is no store. Read-only; one extra replay of the log.
    public static func logDamage(directory: String) -> String? {
        guard StoreDirectory(path: directory).exists("CURRENT"), let logDir = makeLogDirectory() else { return nil }
        defer { removeLogDirectory(logDir) }
        let lenient = RocksDBOptions(StoreOptions(), createIfMissing: false)
        lenient.setInfoLogDirectory(logDir)
        guard (try? RocksDBHandle.open(path: directory, options: lenient, readOnly: true))?.close() != nil else { return nil }
        return strictReplayProblem(directory, logDir: logDir)
    }

    /// Replays the WAL with absolute consistency; what that reports, or nil.
    static func strictReplayProblem(_ directory: String, logDir: String) -> String? {
        let strict = RocksDBOptions(StoreOptions(), createIfMissing: false)
        strict.setInfoLogDirectory(logDir)
        rocksdb_options_set_wal_recovery_mode(strict.raw, 0)  // kAbsoluteConsistency
        do {
            try RocksDBHandle.open(path: directory, options: strict, readOnly: true).close()
            return nil
        } catch {
            let wals = StoreDirectory(path: directory).files().map(\.name).filter { $0.hasSuffix(".log") }
            return "WAL replay of " + (wals.isEmpty ? "the store" : wals.joined(separator: ", ")) + ": " + error.message
                + " (opening drops the records from there on)"
        }
    }

    /// Even a read-only open rotates RocksDB's info LOG: it goes to a temporary directory.
    static func makeLogDirectory() -> String? {
        var template = Array("/tmp/turnpike-check-XXXXXX".utf8CString)
        return template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }).map({ String(cString: $0) })
    }

    static func removeLogDirectory(_ logDir: String) {
        for f in StoreDirectory(path: logDir).files() { unlink(logDir + "/" + f.name) }
        rmdir(logDir)
    }
}

/// A key for a report or a log line: printable ASCII as is, other bytes as \xNN, at most 80 bytes.
public func describeKey(_ key: UnsafeRawBufferPointer) -> String {
    var s = ""
    for b in key.prefix(80) {
        if b >= 0x20 && b < 0x7F { s.append(Character(Unicode.Scalar(b))) } else { s += "\\x" + String(b, radix: 16) }
    }
    return s
}
