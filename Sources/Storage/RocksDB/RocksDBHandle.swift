import CRocksDB
import Glibc

/// Owns one open `rocksdb_t*` and its column family handles.
///
/// C ownership rules followed here:
/// - `rocksdb_open*` copies the options; the caller's `rocksdb_options_t` may go right after.
/// - Every column family handle must be destroyed (`rocksdb_column_family_handle_destroy`)
///   before `rocksdb_close`; after close none of them, nor any iterator, may be used.
/// - `rocksdb_open_column_families` must be given every column family the directory has,
///   `default` included, or it fails ("Column families not opened"); read-only open may take a subset.
/// - The column family name strings only need to live for the call.
final class RocksDBHandle {
    let db: OpaquePointer
    /// Handles of our keyspaces, in `Keyspace.allCases` order; nil only in a read-only open of a
    /// store that does not have that column family yet.
    let keyspaces: [OpaquePointer?]
    /// Every handle we hold, including `default` and any column family we do not know.
    private let all: [OpaquePointer]
    private var isOpen = true

    private init(db: OpaquePointer, keyspaces: [OpaquePointer?], all: [OpaquePointer]) {
        self.db = db
        self.keyspaces = keyspaces
        self.all = all
    }

    /// The column families on disk, or nil when there is no readable MANIFEST (a new directory,
    /// or a damaged one: open will say which).
    static func existingFamilies(path: String, options: RocksDBOptions) -> [String]? {
        var count = 0
        guard let list = try? rocksDBCall({ rocksdb_list_column_families(options.raw, path, &count, $0) }) else { return nil }
        defer { rocksdb_list_column_families_destroy(list, count) }
        return (0..<count).map { String(cString: list[$0]!) }
    }

    /// Opens `path` with `default`, every keyspace and any other family found on disk; read-only
    /// opens only the families that exist (read-only cannot create one).
    static func open(path: String, options: RocksDBOptions, readOnly: Bool) throws(StorageError) -> RocksDBHandle {
        let existing = existingFamilies(path: path, options: options)
        var names = ["default"]
        for ks in Keyspace.allCases where !readOnly || existing?.contains(ks.rawValue) ?? true {
            names.append(ks.rawValue)
        }
        for name in existing ?? [] where !names.contains(name) { names.append(name) }

        let cNames = names.map { strdup($0)! }
        defer { for p in cNames { free(p) } }
        let cNamePointers: [UnsafePointer<CChar>?] = cNames.map { UnsafePointer($0) }
        let familyOptions: [OpaquePointer?] = names.map { _ in options.raw }
        var handles = [OpaquePointer?](repeating: nil, count: names.count)
        let db = try rocksDBCall { err in
            if readOnly {
                // error_if_wal_file_exists = 0: replay the WAL into memory, write nothing.
                rocksdb_open_for_read_only_column_families(
                    options.raw, path, Int32(names.count), cNamePointers, familyOptions, &handles, 0, err)
            } else {
                rocksdb_open_column_families(
                    options.raw, path, Int32(names.count), cNamePointers, familyOptions, &handles, err)
            }
        }
        guard let db else { throw StorageError(code: .other, message: "rocksdb_open returned no handle for \(path)") }
        let all = handles.map { $0! }
        let keyspaces = Keyspace.allCases.map { ks in names.firstIndex(of: ks.rawValue).map { all[$0] } }
        return RocksDBHandle(db: db, keyspaces: keyspaces, all: all)
    }

    /// Destroys the column family handles, then closes the DB (which waits for background
    /// flushes and compactions). Idempotent.
    func close() {
        guard isOpen else { return }
        isOpen = false
        for h in all { rocksdb_column_family_handle_destroy(h) }
        rocksdb_close(db)
    }

    deinit { close() }

    /// A RocksDB property as text ("rocksdb.live-sst-files-size", ...), nil if unknown.
    func property(_ name: String, keyspace: Keyspace? = nil) -> String? {
        if let keyspace, let h = keyspaces[keyspace.index] {
            return takeRocksDBString(rocksdb_property_value_cf(db, h, name))
        }
        return takeRocksDBString(rocksdb_property_value(db, name))
    }

    /// Iterates `family` from the first key with `prefix`, in key order, while keys have the
    /// prefix and `body` returns true; then throws the iterator's error if it stopped on one.
    /// The key and value buffers are valid only during the call (the iterator's next move frees them).
    func iterate(
        _ family: OpaquePointer, readOptions: OpaquePointer, prefix: [UInt8],
        _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        let it = rocksdb_create_iterator_cf(db, readOptions, family)!
        defer { rocksdb_iter_destroy(it) }
        if prefix.isEmpty {
            rocksdb_iter_seek_to_first(it)
        } else {
            prefix.withUnsafeBufferPointer { p in
                p.withMemoryRebound(to: CChar.self) { rocksdb_iter_seek(it, $0.baseAddress, $0.count) }
            }
        }
        while rocksdb_iter_valid(it) != 0 {
            var klen = 0
            var vlen = 0
            let k = UnsafeRawBufferPointer(start: rocksdb_iter_key(it, &klen), count: klen)
            if !prefix.isEmpty && !(klen >= prefix.count && prefix.withUnsafeBytes({ memcmp($0.baseAddress!, k.baseAddress!, prefix.count) == 0 })) {
                break
            }
            let v = UnsafeRawBufferPointer(start: rocksdb_iter_value(it, &vlen), count: vlen)
            if try !body(k, v) { break }
            rocksdb_iter_next(it)
        }
        try rocksDBCall { rocksdb_iter_get_error(it, $0) }
    }
}
