/// Puts and deletes to apply together, atomically and in order. A plain value: appending copies
/// the key and value into one byte array and records their offsets, so building a batch costs
/// no allocation per record; it becomes a `rocksdb_writebatch_t` only on the committer thread.
public struct StoreBatch: Sendable {
    struct Operation: Sendable {
        enum Kind: UInt8, Sendable { case delete, put, deleteRange }
        let kind: Kind
        let keyspace: Keyspace
        let keyStart: Int
        let keyCount: Int
        let valueCount: Int  // the value (a range's end key) follows the key in `bytes`; 0 for a delete
    }

    private(set) var operations: [Operation] = []
    private(set) var bytes: [UInt8] = []

    public init() {}

    /// Sets `key` to `value` in `ks`.
    public mutating func put(_ ks: Keyspace, key: [UInt8], value: [UInt8]) {
        operations.append(Operation(kind: .put, keyspace: ks, keyStart: bytes.count, keyCount: key.count, valueCount: value.count))
        bytes.append(contentsOf: key)
        bytes.append(contentsOf: value)
    }

    /// Removes `key` from `ks` (a no-op if it is absent).
    public mutating func delete(_ ks: Keyspace, key: [UInt8]) {
        operations.append(Operation(kind: .delete, keyspace: ks, keyStart: bytes.count, keyCount: key.count, valueCount: 0))
        bytes.append(contentsOf: key)
    }

    /// Removes every key of `ks` from `start` (included) to `end` (excluded).
    public mutating func deleteRange(_ ks: Keyspace, from start: [UInt8], to end: [UInt8]) {
        operations.append(Operation(kind: .deleteRange, keyspace: ks, keyStart: bytes.count, keyCount: start.count, valueCount: end.count))
        bytes.append(contentsOf: start)
        bytes.append(contentsOf: end)
    }

    /// Appends another batch's operations after this one's.
    public mutating func append(contentsOf other: StoreBatch) {
        let base = bytes.count
        bytes.append(contentsOf: other.bytes)
        for op in other.operations {
            operations.append(Operation(kind: op.kind, keyspace: op.keyspace, keyStart: op.keyStart + base, keyCount: op.keyCount, valueCount: op.valueCount))
        }
    }

    public var isEmpty: Bool { operations.isEmpty }
    /// Puts plus deletes.
    public var count: Int { operations.count }
    /// Key and value bytes in the batch.
    public var byteCount: Int { bytes.count }

    public mutating func removeAll() {
        operations.removeAll(keepingCapacity: true)
        bytes.removeAll(keepingCapacity: true)
    }
}
