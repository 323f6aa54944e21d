/// A snapshot of a store's counters, taken from any thread.
public struct StoreStatistics: Sendable {
    /// SST plus WAL bytes in the directory (from a directory listing, so it includes files
    /// RocksDB has not deleted yet).
    public var bytesOnDisk: Int
    /// Puts and deletes written, by either commit path.
    public var writesTotal: Int
    /// Write batches handed to RocksDB: group commits plus `commitNow` calls.
    public var commitsTotal: Int
    /// WAL fsyncs: synced commits plus periodic flushes.
    public var syncsTotal: Int
    /// How long the last write (and its fsync) took.
    public var lastCommitLatencyMicros: Int
    /// Batches submitted to `commit` and not written yet.
    public var pendingBatches: Int
}
