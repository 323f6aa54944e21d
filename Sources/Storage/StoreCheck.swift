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
    public static func run(directory: String) -> CheckReport {
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

        var template = Array("/tmp/turnpike-check-XXXXXX".utf8CString)
        guard let logDir = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }).map({ String(cString: $0) }) else {
            report.problems.append("cannot create a temporary directory for RocksDB's LOG: errno \(errno)")
            return report
        }
        defer {
            for f in StoreDirectory(path: logDir).files() { unlink(logDir + "/" + f.name) }
            rmdir(logDir)
        }

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

        let strict = RocksDBOptions(StoreOptions(), createIfMissing: false)
        strict.setInfoLogDirectory(logDir)
        rocksdb_options_set_wal_recovery_mode(strict.raw, 0)  // kAbsoluteConsistency
        do {
            try RocksDBHandle.open(path: directory, options: strict, readOnly: true).close()
        } catch {
            // The lenient open worked, so this is the WAL: point-in-time recovery drops from here.
            let wals = dir.files().map(\.name).filter { $0.hasSuffix(".log") }
            report.problems.append("WAL replay of " + (wals.isEmpty ? "the store" : wals.joined(separator: ", ")) + ": " + error.message + " (opening drops the records from there on)")
        }

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
                try handle.iterate(family, readOptions: readOptions, prefix: []) { _, _ in n += 1; return true }
                report.counts[ks] = n
            } catch {
                report.problems.append("\(ks.rawValue): \((error as? StorageError)?.message ?? "\(error)") after \(n) records")
            }
        }
        return report
    }
}
