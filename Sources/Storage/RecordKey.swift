/// Builds and takes apart composite keys whose byte order is the order we want to iterate in:
/// integers are fixed-width big-endian, so `prefix + u64` keys iterate in numeric order, and a
/// variable-length component carries a big-endian u16 length first, so no component is a prefix
/// of a longer one (keys of one client never interleave with another client's whose id extends it).
public enum RecordKey {
    /// `prefix` followed by `n` big-endian.
    public static func make(_ prefix: [UInt8], _ n: UInt64) -> [UInt8] {
        var k = prefix
        k.reserveCapacity(prefix.count + 8)
        append(n, to: &k)
        return k
    }

    public static func append(_ v: UInt64, to key: inout [UInt8]) {
        var x = v.bigEndian
        withUnsafeBytes(of: &x) { key.append(contentsOf: $0) }
    }

    public static func append(_ v: UInt32, to key: inout [UInt8]) {
        var x = v.bigEndian
        withUnsafeBytes(of: &x) { key.append(contentsOf: $0) }
    }

    public static func append(_ v: UInt16, to key: inout [UInt8]) {
        key.append(UInt8(truncatingIfNeeded: v >> 8))
        key.append(UInt8(truncatingIfNeeded: v))
    }

    /// A variable-length component: its length as a big-endian u16, then the bytes.
    public static func appendComponent<C: Collection>(_ bytes: C, to key: inout [UInt8]) where C.Element == UInt8 {
        precondition(bytes.count <= Int(UInt16.max), "key component longer than 65535 bytes")
        append(UInt16(bytes.count), to: &key)
        key.append(contentsOf: bytes)
    }

    /// A string component (UTF-8), as `appendComponent`.
    public static func appendComponent(_ s: String, to key: inout [UInt8]) {
        appendComponent(s.utf8, to: &key)
    }

    /// The big-endian u64 at `offset`, or nil if the key is too short.
    public static func u64(at offset: Int, in key: UnsafeRawBufferPointer) -> UInt64? {
        guard offset >= 0, key.count - offset >= 8 else { return nil }
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(key[offset + i]) }
        return v
    }

    /// The big-endian u64 that ends the key (the usual `prefix + u64` layout), or nil if short.
    public static func trailingU64(_ key: UnsafeRawBufferPointer) -> UInt64? {
        u64(at: key.count - 8, in: key)
    }

    /// The smallest key greater than every key starting with `prefix`, or nil when there is none
    /// (an empty prefix or all 0xFF): the exclusive upper bound of a prefix range.
    public static func prefixEnd(_ prefix: [UInt8]) -> [UInt8]? {
        var end = prefix
        while let last = end.last {
            if last < 0xFF {
                end[end.count - 1] = last + 1
                return end
            }
            end.removeLast()
        }
        return nil
    }
}
