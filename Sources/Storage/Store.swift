import CRocksDB

/// The broker's durable key-value store: one RocksDB directory with a column family per
/// `Keyspace`, a group-committing writer thread and, for `.periodic` durability, a WAL flusher.
///
/// Threads: `commit` and `statistics` may be called from any thread at any time. `get`, `scan`,
/// `count` and `commitNow` from any thread too (RocksDB is thread-safe), but not concurrently
/// with `close()`, which frees the handles they use. Completions run on the committer thread.
///
/// C ownership: the store owns one `StoreEngine`, which owns the one `RocksDBHandle` (the
/// `rocksdb_t*` and its column family handles, see there) and the shared read/write options.
public final class Store: @unchecked Sendable {
    let engine: StoreEngine

    public var directory: String { engine.directory }
    public var options: StoreOptions { engine.options }

    private init(_ engine: StoreEngine) { self.engine = engine }

    /// Closes the store if the owner did not.
    deinit { engine.close() }

    /// Opens (creating if needed) the store in `directory`, repairing it if RocksDB finds it
    /// damaged. A torn WAL tail is dropped by point-in-time recovery without a repair; a bad
    /// CURRENT, MANIFEST or SST makes open fail with Corruption, and `rocksdb_repair_db` then
    /// rebuilds the MANIFEST from every SST and WAL it can read (unreadable ones go to `lost/`).
    /// Throws only if the directory still cannot be opened, naming it and RocksDB's reason.
    public static func open(directory: String, options: StoreOptions = StoreOptions()) throws(StorageError) -> (Store, RecoveryReport) {
        let dir = StoreDirectory(path: directory)
        let rocksOptions = RocksDBOptions(options)
        var report = RecoveryReport()

        let hasCurrent = dir.exists("CURRENT")
        let leftovers = dir.storeFiles()
        var needsRepair = false
        if !hasCurrent && !leftovers.isEmpty {
            // create_if_missing would start an empty store here and later delete these files
            // as obsolete; repair adopts them instead.
            report.problems.append("CURRENT is missing but \(directory) holds " + leftovers.map(\.name).joined(separator: ", "))
            needsRepair = true
        }
        report.created = !hasCurrent && leftovers.isEmpty

        var handle: RocksDBHandle? = nil
        if !needsRepair {
            do {
                handle = try RocksDBHandle.open(path: directory, options: rocksOptions, readOnly: false)
            } catch {
                guard isDamage(error, hadCurrent: hasCurrent) else {
                    throw StorageError(code: error.code, message: "cannot open store \(directory): \(error.message)")
                }
                report.problems.append(error.message)
                needsRepair = true
            }
        }
        if needsRepair {
            let lostBefore = Set(dir.files(in: "lost").map(\.name))
            do {
                try rocksDBCall { rocksdb_repair_db(rocksOptions.raw, directory, $0) }
            } catch {
                throw StorageError(code: error.code, message: "cannot repair store \(directory): \(error.message) (after: \(report.problems.joined(separator: "; ")))")
            }
            report.repaired = true
            report.lostFiles = dir.files(in: "lost").map(\.name).filter { !lostBefore.contains($0) }
            for sst in report.lostFiles where sst.hasSuffix(".sst") {
                report.problems.append("\(sst) could not be read; repair moved it to lost/ and its records are gone")
            }
            do {
                handle = try RocksDBHandle.open(path: directory, options: rocksOptions, readOnly: false)
            } catch {
                throw StorageError(code: error.code, message: "cannot open store \(directory) even after repair: \(error.message) (before repair: \(report.problems.joined(separator: "; ")))")
            }
        }

        let engine = StoreEngine(directory: directory, options: options, handle: handle!)
        do {
            try engine.anchorEmptyKeyspaces()
            engine.resetCounters()
            try engine.startThreads()
        } catch {
            engine.close()
            throw error
        }
        return (Store(engine), report)
    }

    /// Errors that mean the files are damaged, so repair is worth trying: Corruption, and a
    /// file the MANIFEST lists but the directory lacks. Not a held lock, a permission problem
    /// or a directory that cannot be created.
    private static func isDamage(_ e: StorageError, hadCurrent: Bool) -> Bool {
        if e.code == .corruption { return true }
        return hadCurrent && e.code == .io && e.message.contains("No such file") && !e.message.contains("LOCK")
    }

    /// The value of `key` in `ks`, or nil.
    public func get(_ ks: Keyspace, key: [UInt8]) throws(StorageError) -> [UInt8]? { try engine.get(ks, key: key) }

    /// Calls `body` with each key and value in `ks` starting with `prefix`, in key order, until
    /// it returns false. The buffers are valid only during the call. Throws the iterator's error
    /// (a damaged block is `.corruption`, naming the SST) or `body`'s.
    public func scan(_ ks: Keyspace, prefix: [UInt8] = [], _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws {
        try engine.scan(ks, prefix: prefix, body)
    }

    /// Records in `ks`, counted by iteration (RocksDB's estimate counts overwrites and deletes).
    public func count(_ ks: Keyspace) throws -> Int { try engine.count(ks) }

    /// Queues `batch` to be written with whatever else is pending; never waits for the disk.
    /// `completion` runs on the committer thread once the batch is durable per `durability`
    /// (nil) or failed (every batch of the failed group gets the error). Batches are applied
    /// in submission order. After `close()`, `completion(.closed)` runs at once on this thread.
    public func commit(_ batch: StoreBatch, completion: @escaping @Sendable (StorageError?) -> Void) {
        engine.commit(batch, completion: completion)
    }

    /// Writes `batch` now on the calling thread (fsynced under `.sync`), bypassing the commit
    /// queue: for start-up and maintenance, not ordered with batches still queued by `commit`.
    public func commitNow(_ batch: StoreBatch) throws(StorageError) { try engine.commitNow(batch) }

    /// Flushes the keyspaces' memtables to SST files and waits: for maintenance and tests.
    public func flush(_ keyspaces: [Keyspace] = Keyspace.allCases) throws(StorageError) { try engine.flush(keyspaces) }

    /// Counters, readable from any thread, also after close.
    public var statistics: StoreStatistics { engine.statistics }

    /// Commits every batch still queued (running their completions), stops the threads and
    /// closes the DB. Idempotent; a second caller returns at once. Must not be called from a
    /// completion (it waits for the committer thread, which would be waiting for it).
    public func close() { engine.close() }
}
