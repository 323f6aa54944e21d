// No CRocksDB import here: fuzz/run.sh compiles this file standalone with the record codec.

/// Reads the fields RecordWriter wrote, in the same order, from borrowed bytes. Every read is
/// bounds-checked; a short, overlong or otherwise malformed field throws `.corruption` naming
/// the byte offset and the field, and leaves `offset` where the failed field began. The buffer
/// is borrowed: it must outlive the reader and every slice the reader returns.
public struct RecordReader {
    public let buffer: UnsafeRawBufferPointer
    /// The next byte to read.
    public private(set) var offset = 0

    public init(_ buffer: UnsafeRawBufferPointer) { self.buffer = buffer }

    /// Bytes not read yet.
    public var remaining: Int { buffer.count - offset }
    public var isAtEnd: Bool { offset >= buffer.count }

    @inline(__always)
    private func need(_ n: Int, _ what: StaticString) throws(StorageError) {
        if n > buffer.count - offset {
            throw .corruption("record truncated at byte \(offset) reading \(what) (\(n) needed, \(buffer.count - offset) left)")
        }
    }

    public mutating func u8() throws(StorageError) -> UInt8 {
        try need(1, "u8")
        defer { offset += 1 }
        return buffer[offset]
    }

    public mutating func bool() throws(StorageError) -> Bool {
        try need(1, "bool")
        let b = buffer[offset]
        guard b <= 1 else { throw .corruption("bool at byte \(offset) is \(b), not 0 or 1") }
        offset += 1
        return b == 1
    }

    @inline(__always)
    private mutating func bigEndian<T: FixedWidthInteger>(_: T.Type, _ what: StaticString) throws(StorageError) -> T {
        try need(MemoryLayout<T>.size, what)
        var v: T = 0
        for i in 0..<MemoryLayout<T>.size { v = v << 8 | T(buffer[offset + i]) }
        offset += MemoryLayout<T>.size
        return v
    }

    public mutating func u16() throws(StorageError) -> UInt16 { try bigEndian(UInt16.self, "u16") }
    public mutating func u32() throws(StorageError) -> UInt32 { try bigEndian(UInt32.self, "u32") }
    public mutating func u64() throws(StorageError) -> UInt64 { try bigEndian(UInt64.self, "u64") }

    /// Unsigned LEB128 of at most 10 bytes. Rejects a value above UInt64.max and an overlong
    /// encoding (a last byte of zero after the first), so each value has exactly one encoding.
    public mutating func varint() throws(StorageError) -> UInt64 {
        let start = offset
        var v: UInt64 = 0
        var shift: UInt64 = 0
        var i = offset
        while true {
            guard i < buffer.count else {
                throw .corruption("record truncated at byte \(i) reading varint begun at byte \(start)")
            }
            let b = buffer[i]
            i += 1
            if shift == 63 && b > 1 {
                throw .corruption("varint at byte \(start) exceeds 64 bits")
            }
            v |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 {
                if b == 0 && i - start > 1 {
                    throw .corruption("varint at byte \(start) is overlong (\(i - start) bytes)")
                }
                offset = i
                return v
            }
            shift += 7
        }
    }

    /// A varint length, then that many bytes, borrowed from the buffer (valid as long as it is).
    public mutating func bytes() throws(StorageError) -> UnsafeRawBufferPointer {
        let start = offset
        let n = try varint()
        let left = buffer.count - offset
        guard n <= UInt64(left) else {
            offset = start
            throw .corruption("length \(n) at byte \(start) exceeds record (\(left) bytes left)")
        }
        let slice = UnsafeRawBufferPointer(rebasing: buffer[offset..<offset + Int(n)])
        offset += Int(n)
        return slice
    }

    /// Length-prefixed bytes, copied into an array.
    public mutating func byteArray() throws(StorageError) -> [UInt8] { Array(try bytes()) }

    /// A length-prefixed UTF-8 string; invalid UTF-8 is corruption, not replaced.
    public mutating func string() throws(StorageError) -> String {
        let start = offset
        let b = try bytes()
        guard let s = String(validating: b.assumingMemoryBound(to: UInt8.self), as: UTF8.self) else {
            offset = start
            throw .corruption("string at byte \(start) is not valid UTF-8")
        }
        return s
    }

    /// Exactly `count` bytes with no length prefix, borrowed.
    public mutating func raw(_ count: Int) throws(StorageError) -> UnsafeRawBufferPointer {
        precondition(count >= 0, "negative raw count")
        try need(count, "raw bytes")
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: buffer[offset..<offset + count])
    }

    /// Everything not read yet, borrowed.
    public mutating func rest() -> UnsafeRawBufferPointer {
        defer { offset = buffer.count }
        return UnsafeRawBufferPointer(rebasing: buffer[offset...])
    }

    /// Throws unless every byte was read: a record with trailing bytes is not the one we wrote.
    public func expectEnd() throws(StorageError) {
        if offset != buffer.count {
            throw .corruption("record has \(buffer.count - offset) trailing bytes after byte \(offset)")
        }
    }
}

extension RecordReader {
    /// Runs `body` with a reader over an array's bytes.
    public static func read<R>(_ bytes: [UInt8], _ body: (inout RecordReader) throws(StorageError) -> R) throws(StorageError) -> R {
        // Array.withUnsafeBytes only rethrows untyped, so the typed error travels in a Result.
        let result: Result<R, StorageError> = bytes.withUnsafeBytes { buf in
            var r = RecordReader(buf)
            do throws(StorageError) { return .success(try body(&r)) } catch { return .failure(error) }
        }
        return try result.get()
    }
}
