import CRocksDB
import Glibc
import Synchronization

/// Everything behind a `Store`: the RocksDB handle, the commit queue, the counters. The
/// committer and flusher threads hold this, not the `Store`, so dropping the last `Store`
/// reference runs its deinit, which closes the engine and so ends the threads.
final class StoreEngine: @unchecked Sendable {
    let directory: String
    let options: StoreOptions

    /// The only owner of the `rocksdb_t*` and its column family handles; see RocksDBHandle.
    let handle: RocksDBHandle
    /// `rocksdb_readoptions_t` / `rocksdb_writeoptions_t` are only read by RocksDB, so one of
    /// each is shared by all threads; destroyed in `close()` after the DB.
    let readOptions: OpaquePointer
    let writeOptions: OpaquePointer

    /// The committer's queue and lifecycle, under `lock`.
    let lock = ConditionLock()
    var queue: [PendingCommit] = []
    var firstPendingAtNanos: UInt64 = 0
    var isStopping = false
    var committerThread: pthread_t? = nil
    /// The `.periodic` WAL flusher's own lock, so a commit's wake-up never lands on it.
    let flusherLock = ConditionLock()
    var flusherStopping = false
    var flusherThread: pthread_t? = nil

    let isClosed = Atomic<Bool>(false)
    let writesTotal = Atomic<Int>(0)
    let commitsTotal = Atomic<Int>(0)
    let syncsTotal = Atomic<Int>(0)
    let lastCommitLatencyMicros = Atomic<Int>(0)
    let pendingBatches = Atomic<Int>(0)

    init(directory: String, options: StoreOptions, handle: RocksDBHandle) {
        self.directory = directory
        self.options = options
        self.handle = handle
        readOptions = rocksdb_readoptions_create()!
        writeOptions = rocksdb_writeoptions_create()!
        if options.durability == .sync { rocksdb_writeoptions_set_sync(writeOptions, 1) }
    }

    /// Gives every column family without an SST a one-tombstone SST.
    ///
    /// Why: `rocksdb_repair_db` (the C API takes no column family list) learns which family a
    /// WAL record belongs to only from the properties of that family's SST files. A family
    /// with none (new, or its only SST unreadable) has its WAL records dropped by repair, so a
    /// bad MANIFEST would lose recent writes to it. Recovery has just flushed the WAL into SSTs,
    /// so a family with no SST bytes holds no data and deleting its empty key changes nothing.
    func anchorEmptyKeyspaces() throws(StorageError) {
        let bare = Keyspace.allCases.filter { handle.property("rocksdb.total-sst-files-size", keyspace: $0) == "0" }
        if bare.isEmpty { return }
        var batch = StoreBatch()
        for ks in bare { batch.delete(ks, key: []) }
        try commitNow(batch)
        try flush(bare)
    }

    /// Statistics count the caller's writes, not the anchoring.
    func resetCounters() {
        writesTotal.store(0, ordering: .relaxed)
        commitsTotal.store(0, ordering: .relaxed)
        syncsTotal.store(0, ordering: .relaxed)
        lastCommitLatencyMicros.store(0, ordering: .relaxed)
    }

    func startThreads() throws(StorageError) {
        committerThread = try StoreThread.start("store committer") { [self] in runCommitter() }
        if case .periodic(let intervalMs) = options.durability {
            flusherThread = try StoreThread.start("store WAL flusher") { [self] in runFlusher(intervalMs: max(1, intervalMs)) }
        }
    }

    // The public methods are documented on Store, which forwards to these.
    func get(_ ks: Keyspace, key: [UInt8]) throws(StorageError) -> [UInt8]? {
        guard !isClosed.load(ordering: .acquiring) else { throw .closed() }
        var length = 0
        // rocksdb_get_cf returns a malloc'ed copy (or NULL when absent), freed here.
        let value = try key.withUnsafeBufferPointer { (k) throws(StorageError) in
            try k.withMemoryRebound(to: CChar.self) { (k) throws(StorageError) in
                try rocksDBCall { rocksdb_get_cf(handle.db, readOptions, handle.keyspaces[ks.index]!, k.baseAddress, k.count, &length, $0) }
            }
        }
        guard let value else { return nil }
        defer { rocksdb_free(value) }
        return Array(UnsafeRawBufferPointer(start: value, count: length))
    }

    func scan(_ ks: Keyspace, prefix: [UInt8] = [], _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws {
        guard !isClosed.load(ordering: .acquiring) else { throw StorageError.closed() }
        try handle.iterate(handle.keyspaces[ks.index]!, readOptions: readOptions, prefix: prefix, body)
    }

    func count(_ ks: Keyspace) throws -> Int {
        var n = 0
        try scan(ks) { _, _ in n += 1; return true }
        return n
    }

    func commitNow(_ batch: StoreBatch) throws(StorageError) {
        guard !isClosed.load(ordering: .acquiring) else { throw .closed() }
        let wb = rocksdb_writebatch_create()!
        defer { rocksdb_writebatch_destroy(wb) }
        append(batch, to: wb)
        try write(wb, records: batch.count)
    }

    func flush(_ keyspaces: [Keyspace] = Keyspace.allCases) throws(StorageError) {
        guard !isClosed.load(ordering: .acquiring) else { throw .closed() }
        let fo = rocksdb_flushoptions_create()!
        defer { rocksdb_flushoptions_destroy(fo) }
        rocksdb_flushoptions_set_wait(fo, 1)
        for ks in keyspaces {
            try rocksDBCall { rocksdb_flush_cf(handle.db, fo, handle.keyspaces[ks.index]!, $0) }
        }
    }

    var statistics: StoreStatistics {
        StoreStatistics(
            bytesOnDisk: StoreDirectory(path: directory).bytesOnDisk(),
            writesTotal: writesTotal.load(ordering: .relaxed),
            commitsTotal: commitsTotal.load(ordering: .relaxed),
            syncsTotal: syncsTotal.load(ordering: .relaxed),
            lastCommitLatencyMicros: lastCommitLatencyMicros.load(ordering: .relaxed),
            pendingBatches: pendingBatches.load(ordering: .relaxed))
    }

    func close() {
        lock.lock()
        if isStopping {
            lock.unlock()
            return
        }
        if let committerThread {
            precondition(pthread_equal(pthread_self(), committerThread) == 0, "Store.close() called from a commit completion")
        }
        isStopping = true
        lock.broadcast()
        lock.unlock()
        if let committerThread { pthread_join(committerThread, nil) }
        flusherLock.withLock { flusherStopping = true }
        flusherLock.broadcast()
        if let flusherThread { pthread_join(flusherThread, nil) }
        if case .periodic = options.durability {
            // What the flusher had not synced yet.
            if (try? rocksDBCall({ rocksdb_flush_wal(handle.db, 1, $0) })) != nil { syncsTotal.add(1, ordering: .relaxed) }
        }
        isClosed.store(true, ordering: .releasing)
        handle.close()
        rocksdb_readoptions_destroy(readOptions)
        rocksdb_writeoptions_destroy(writeOptions)
    }

    // MARK: - Writing (shared by both commit paths)

    /// Translates a batch into RocksDB's write batch, which copies the bytes.
    func append(_ batch: StoreBatch, to wb: OpaquePointer) {
        // A batch of empty keys and values has no buffer, but RocksDB wants a pointer.
        let bytes = batch.bytes.isEmpty ? [0] : batch.bytes
        bytes.withUnsafeBufferPointer { b in
            b.withMemoryRebound(to: CChar.self) { b in
                let base = b.baseAddress
                for op in batch.operations {
                    let family = handle.keyspaces[op.keyspace.index]!
                    let key = base! + op.keyStart, value = base! + op.keyStart + op.keyCount
                    switch op.kind {
                    case .put: rocksdb_writebatch_put_cf(wb, family, key, op.keyCount, value, op.valueCount)
                    case .delete: rocksdb_writebatch_delete_cf(wb, family, key, op.keyCount)
                    case .deleteRange: rocksdb_writebatch_delete_range_cf(wb, family, key, op.keyCount, value, op.valueCount)
                    }
                }
            }
        }
    }

    /// One `rocksdb_write`, counted and timed.
    func write(_ wb: OpaquePointer, records: Int) throws(StorageError) {
        let start = monotonicNanos()
        try rocksDBCall { rocksdb_write(handle.db, writeOptions, wb, $0) }
        lastCommitLatencyMicros.store(Int((monotonicNanos() - start) / 1000), ordering: .relaxed)
        commitsTotal.add(1, ordering: .relaxed)
        writesTotal.add(records, ordering: .relaxed)
        if options.durability == .sync { syncsTotal.add(1, ordering: .relaxed) }
    }
}
