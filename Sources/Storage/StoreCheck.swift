import CRocksDB
import Glibc

/// `turnpike storage check`: a read-only look at a store directory that changes nothing in it.
public enum StoreCheck {
    /// Opens `directory` read-only (the WAL is replayed into memory, nothing is written; RocksDB's
    /// info LOG goes to a temporary directory, removed afterwards), counts every keyspace by a
    /// full scan with checksum verification (7.8.3's C API has no `rocksdb_verify_checksum`),
    /// and reports what it could not read. The WAL is first replayed with absolute consistency,
    /// so a damaged WAL is reported even though `Store.open` would open it (dropping its tail).
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

        let strict = RocksDBOptions(StoreOptions(), createIfMissing: false)
        strict.setInfoLogDirectory(logDir)
        rocksdb_options_set_wal_recovery_mode(strict.raw, 0)  // kAbsoluteConsistency
        do {
            try RocksDBHandle.open(path: directory, options: strict, readOnly: true).close()
        } catch {
            let wals = dir.files().map(\.name).filter { $0.hasSuffix(".log") }
            report.problems.append("strict replay of " + (wals.isEmpty ? "the store" : wals.joined(separator: ", ")) + ": " + error.message)
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
