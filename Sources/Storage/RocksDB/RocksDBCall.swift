import CRocksDB
import Glibc

// RocksDB's C API reports failure through `char** errptr`: on failure it stores a malloc'ed
// copy of `Status::ToString()` there (freeing any previous one), on success it leaves it alone.
// So the pointer must start nil and we free what we get with rocksdb_free.

/// Runs one C call with an error slot and turns a stored message into a `StorageError`.
@inline(__always)
func rocksDBCall<T>(
    file: String = #fileID, line: Int = #line,
    _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> T
) throws(StorageError) -> T {
    var err: UnsafeMutablePointer<CChar>? = nil
    let result = body(&err)
    if let err {
        let message = String(cString: err)
        rocksdb_free(err)
        throw StorageError.rocksDB(message, file: file, line: line)
    }
    return result
}

/// A malloc'ed C string from RocksDB (property values), freed after copying; nil stays nil.
func takeRocksDBString(_ p: UnsafeMutablePointer<CChar>?) -> String? {
    guard let p else { return nil }
    defer { rocksdb_free(p) }
    return String(cString: p)
}
