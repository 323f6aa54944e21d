import CRocksDB

/// Owns one `rocksdb_options_t` configured from `StoreOptions`. RocksDB copies options into the
/// DB at open, so this lives only as long as an open or repair call. The block cache and table
/// options are reference-counted inside RocksDB (shared_ptr): setting them copies the
/// reference, so ours are destroyed right after.
final class RocksDBOptions {
    let raw: OpaquePointer

    /// WAL recovery: kPointInTimeRecovery (2) replays up to the first damaged record and drops
    /// the rest, so a torn tail after a crash opens instead of failing.
    static let pointInTimeRecovery: Int32 = 2

    init(_ o: StoreOptions, createIfMissing: Bool = true) {
        raw = rocksdb_options_create()
        rocksdb_options_set_create_if_missing(raw, createIfMissing ? 1 : 0)
        rocksdb_options_set_create_missing_column_families(raw, createIfMissing ? 1 : 0)
        rocksdb_options_set_paranoid_checks(raw, 1)
        rocksdb_options_set_wal_recovery_mode(raw, Self.pointInTimeRecovery)
        rocksdb_options_set_write_buffer_size(raw, o.writeBufferBytes)
        // All memtables together; beyond it the largest is flushed early.
        rocksdb_options_set_db_write_buffer_size(raw, o.writeBufferBytes * 4)
        // Bound the WAL so a quiet column family cannot pin old logs forever.
        rocksdb_options_set_max_total_wal_size(raw, UInt64(o.writeBufferBytes * 8))
        rocksdb_options_set_max_open_files(raw, Int32(o.maxOpenFiles))
        rocksdb_options_set_max_background_jobs(raw, 2)
        rocksdb_options_set_compression(raw, Int32(o.compress ? rocksdb_lz4_compression : rocksdb_no_compression))
        // The LOG info file: keep a few, small.
        rocksdb_options_set_keep_log_file_num(raw, 4)
        rocksdb_options_set_max_log_file_size(raw, 1 << 20)
        rocksdb_options_set_info_log_level(raw, 2)  // WARN
        // One periodic stats dump is noise for an embedded store.
        rocksdb_options_set_stats_dump_period_sec(raw, 0)

        let table = rocksdb_block_based_options_create()!
        let cache = rocksdb_cache_create_lru(o.blockCacheBytes)!
        rocksdb_block_based_options_set_block_cache(table, cache)
        rocksdb_block_based_options_set_block_size(table, 16 << 10)
        rocksdb_options_set_block_based_table_factory(raw, table)
        rocksdb_cache_destroy(cache)
        rocksdb_block_based_options_destroy(table)
    }

    /// Puts the info LOG in `directory` instead of the store's own directory (a read-only check
    /// must not rotate the store's LOG).
    func setInfoLogDirectory(_ directory: String) {
        rocksdb_options_set_db_log_dir(raw, directory)
    }

    deinit { rocksdb_options_destroy(raw) }
}
