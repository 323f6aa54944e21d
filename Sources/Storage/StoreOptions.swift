/// How a store is opened. The defaults suit a small embedded store inside a process whose file
/// descriptors mostly belong to client sockets.
public struct StoreOptions: Sendable {
    /// When a committed batch is on stable storage.
    public enum Durability: Sendable, Equatable {
        /// Every group commit fsyncs the WAL before its completions run: nothing acknowledged is
        /// lost on power failure. One fsync covers every batch queued while the previous ran.
        case sync
        /// The WAL is written (to the page cache) at commit and fsynced every `intervalMs` by a
        /// background thread: a process crash loses nothing, a power failure at most the last
        /// interval.
        case periodic(intervalMs: Int)
    }

    public var durability: Durability
    /// Group-commit window: how long the committer waits after the first pending batch before
    /// writing, to gather more. 0 writes as soon as the committer wakes, taking whatever queued.
    public var commitIntervalMs: Int
    /// Memtable size per column family before it is flushed to an SST.
    public var writeBufferBytes: Int
    /// Open SST files RocksDB keeps; the process's 20,000 descriptors are mostly for sockets.
    public var maxOpenFiles: Int
    /// Shared LRU cache of uncompressed SST blocks, for all column families.
    public var blockCacheBytes: Int
    /// LZ4 for SST blocks (records are small and repetitive; LZ4 costs little CPU). WAL is never compressed.
    public var compress: Bool

    public init(
        durability: Durability = .sync,
        commitIntervalMs: Int = 0,
        writeBufferBytes: Int = 8 << 20,
        maxOpenFiles: Int = 256,
        blockCacheBytes: Int = 16 << 20,
        compress: Bool = true
    ) {
        self.durability = durability
        self.commitIntervalMs = commitIntervalMs
        self.writeBufferBytes = writeBufferBytes
        self.maxOpenFiles = maxOpenFiles
        self.blockCacheBytes = blockCacheBytes
        self.compress = compress
    }
}
