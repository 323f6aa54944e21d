/// A bounds-checked cursor over one packet's bytes inside a caller-owned buffer.
///
/// Every read is checked against `end` (the end of the remaining length, or of a property block),
/// and a read that would run past it throws `.malformedPacket`; nothing reads outside the buffer.
/// `what` arguments name the field for the error message and are only formatted on failure.
struct ByteReader {
    private let base: UnsafeRawBufferPointer
    private(set) var position: Int
    let end: Int

    /// Reads `base[start..<end]`. The caller guarantees `0 <= start <= end <= base.count`.
    init(_ base: UnsafeRawBufferPointer, from start: Int, to end: Int) {
        precondition(start >= 0 && start <= end && end <= base.count, "ByteReader bounds outside buffer")
        self.base = base
        self.position = start
        self.end = end
    }

    var remaining: Int { end - position }
    var isAtEnd: Bool { position == end }

    private func truncated(_ what: StaticString, needed: Int) -> MQTTDecodeError {
        .malformed("\(what): needs \(needed) byte(s) but only \(remaining) remain in the packet")
    }

    mutating func readByte(_ what: StaticString) throws(MQTTDecodeError) -> UInt8 {
        guard position < end else { throw truncated(what, needed: 1) }
        defer { position += 1 }
        return base[position]
    }

    /// Two Byte Integer, big-endian (§1.5.2).
    mutating func readUInt16(_ what: StaticString) throws(MQTTDecodeError) -> UInt16 {
        guard remaining >= 2 else { throw truncated(what, needed: 2) }
        defer { position += 2 }
        return UInt16(base[position]) << 8 | UInt16(base[position + 1])
    }

    /// Four Byte Integer, big-endian (§1.5.3).
    mutating func readUInt32(_ what: StaticString) throws(MQTTDecodeError) -> UInt32 {
        guard remaining >= 4 else { throw truncated(what, needed: 4) }
        defer { position += 4 }
        return UInt32(base[position]) << 24 | UInt32(base[position + 1]) << 16
            | UInt32(base[position + 2]) << 8 | UInt32(base[position + 3])
    }

    /// Variable Byte Integer (5.0 §1.5.5): at most four bytes, minimal encoding.
    mutating func readVarInt(_ what: StaticString) throws(MQTTDecodeError) -> Int {
        var value = 0
        var shift = 0
        for count in 1...4 {
            let byte = try readByte(what)
            // A trailing zero group means the value fit in fewer bytes (mosquitto's check).
            if count > 1 && byte == 0 {
                throw .malformed("\(what): variable byte integer not minimally encoded [MQTT-1.5.5-1]")
            }
            value |= Int(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        throw .malformed("\(what): variable byte integer longer than 4 bytes (§1.5.5)")
    }

    /// `count` raw bytes, copied out.
    mutating func readBytes(_ count: Int, _ what: StaticString) throws(MQTTDecodeError) -> [UInt8] {
        guard count >= 0, remaining >= count else { throw truncated(what, needed: count) }
        defer { position += count }
        return Array(UnsafeRawBufferPointer(rebasing: base[position..<position + count]))
    }

    /// Everything up to `end`, copied out.
    mutating func readRest() -> [UInt8] {
        defer { position = end }
        return Array(UnsafeRawBufferPointer(rebasing: base[position..<end]))
    }

    /// Binary Data: two-byte length, then bytes (§1.5.6).
    mutating func readBinary(_ what: StaticString) throws(MQTTDecodeError) -> [UInt8] {
        let length = Int(try readUInt16(what))
        return try readBytes(length, what)
    }

    /// UTF-8 Encoded String: two-byte length, then well-formed UTF-8 without U+0000 (§1.5.4).
    mutating func readString(_ what: StaticString) throws(MQTTDecodeError) -> String {
        let length = Int(try readUInt16(what))
        guard remaining >= length else { throw truncated(what, needed: length) }
        defer { position += length }
        return try Self.decodeUTF8(UnsafeRawBufferPointer(rebasing: base[position..<position + length]), what)
    }

    /// A reader over the next `length` bytes; `self` skips past them.
    mutating func subReader(_ length: Int, _ what: StaticString) throws(MQTTDecodeError) -> ByteReader {
        guard length >= 0, remaining >= length else { throw truncated(what, needed: length) }
        defer { position += length }
        return ByteReader(base, from: position, to: position + length)
    }

    /// Throws unless every byte up to `end` has been read.
    func expectEnd(_ what: StaticString) throws(MQTTDecodeError) {
        guard isAtEnd else {
            throw .malformed("\(what): \(remaining) unexpected trailing byte(s) at the end of the packet")
        }
    }

    /// Validates and decodes a UTF-8 string field.
    static func decodeUTF8(_ bytes: UnsafeRawBufferPointer, _ what: StaticString) throws(MQTTDecodeError) -> String {
        // [MQTT-1.5.4-2] (3.1.1: [MQTT-1.5.3-2]): U+0000 must not appear.
        for byte in bytes where byte == 0 {
            throw .malformed("\(what): string contains U+0000 [MQTT-1.5.4-2]")
        }
        // [MQTT-1.5.4-1] (3.1.1: [MQTT-1.5.3-1]): well-formed UTF-8; the standard library's
        // validation rejects overlong forms, surrogates (U+D800...U+DFFF) and code points above U+10FFFF.
        guard let string = String(validating: bytes, as: UTF8.self) else {
            throw .malformed("\(what): string is not well-formed UTF-8 [MQTT-1.5.4-1]")
        }
        return string
    }
}
