// No CRocksDB import here: fuzz/run.sh compiles this file standalone with the record codec.
//
// Record encoding, shared with RecordReader: integers are big-endian (so an encoded key sorts
// like the number), varints are unsigned LEB128 of at most 10 bytes with no redundant trailing
// zero group, and bytes/strings are a varint length followed by the bytes (strings in UTF-8).

/// Appends fields to a byte array. The broker builds its records with it; no framing, no tags:
/// the reader must ask for the same fields in the same order.
public struct RecordWriter: Sendable {
    /// The record so far.
    public private(set) var buffer: [UInt8]

    public init(reservingCapacity capacity: Int = 64) {
        buffer = []
        buffer.reserveCapacity(capacity)
    }

    public mutating func u8(_ v: UInt8) { buffer.append(v) }

    public mutating func u16(_ v: UInt16) {
        buffer.append(UInt8(truncatingIfNeeded: v >> 8))
        buffer.append(UInt8(truncatingIfNeeded: v))
    }

    public mutating func u32(_ v: UInt32) {
        var x = v.bigEndian
        withUnsafeBytes(of: &x) { buffer.append(contentsOf: $0) }
    }

    public mutating func u64(_ v: UInt64) {
        var x = v.bigEndian
        withUnsafeBytes(of: &x) { buffer.append(contentsOf: $0) }
    }

    public mutating func bool(_ v: Bool) { buffer.append(v ? 1 : 0) }

    /// Unsigned LEB128: 7 bits a byte, low group first, high bit set on all but the last.
    public mutating func varint(_ v: UInt64) {
        var x = v
        while x >= 0x80 {
            buffer.append(UInt8(truncatingIfNeeded: x) | 0x80)
            x >>= 7
        }
        buffer.append(UInt8(x))
    }

    /// A varint length, then the bytes.
    public mutating func bytes<C: Collection>(_ v: C) where C.Element == UInt8 {
        varint(UInt64(v.count))
        buffer.append(contentsOf: v)
    }

    /// A varint length, then the string's UTF-8.
    public mutating func string(_ v: String) {
        var s = v
        s.withUTF8 { utf8 in bytes(utf8) }
    }

    /// Raw bytes with no length (a fixed-size field, or the last field taking the rest).
    public mutating func raw<C: Collection>(_ v: C) where C.Element == UInt8 { buffer.append(contentsOf: v) }
}
