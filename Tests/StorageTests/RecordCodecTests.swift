@testable import Storage
import XCTest

final class RecordCodecTests: XCTestCase {
    func testRoundTrip() throws {
        var w = RecordWriter()
        w.u8(7)
        w.u16(0xBEEF)
        w.u32(0xDEAD_BEEF)
        w.u64(.max)
        w.bool(true)
        for v: UInt64 in [0, 1, 127, 128, 300, 1 << 35, .max] { w.varint(v) }
        w.string("sensors/温度")
        w.bytes([1, 2, 3])
        w.bytes([])
        w.raw([9, 9])
        XCTAssertEqual(Array(w.buffer.prefix(3)), [7, 0xBE, 0xEF], "big-endian")
        try RecordReader.read(w.buffer) { r throws(StorageError) in
            XCTAssertEqual(try r.u8(), 7)
            XCTAssertEqual(try r.u16(), 0xBEEF)
            XCTAssertEqual(try r.u32(), 0xDEAD_BEEF)
            XCTAssertEqual(try r.u64(), .max)
            XCTAssertEqual(try r.bool(), true)
            for v: UInt64 in [0, 1, 127, 128, 300, 1 << 35, .max] { XCTAssertEqual(try r.varint(), v) }
            XCTAssertEqual(try r.string(), "sensors/温度")
            XCTAssertEqual(Array(try r.bytes()), [1, 2, 3])
            XCTAssertEqual(try r.byteArray(), [])
            XCTAssertEqual(Array(try r.raw(2)), [9, 9])
            XCTAssertTrue(r.isAtEnd)
            try r.expectEnd()
        }
    }

    private func failure(_ bytes: [UInt8], _ body: (inout RecordReader) throws(StorageError) -> Void) -> String? {
        do throws(StorageError) {
            try RecordReader.read(bytes, body)
            return nil
        } catch {
            XCTAssertEqual(error.code, .corruption)
            return error.message
        }
    }

    func testTruncatedFieldsNameTheByteAndTheField() {
        var w = RecordWriter()
        w.u64(1); w.u64(2); w.u8(0)  // 17 bytes
        w.u16(0)                      // then 2 of a u32's 4
        XCTAssertEqual(failure(w.buffer) { r throws(StorageError) in _ = try r.u64(); _ = try r.u64(); _ = try r.u8(); _ = try r.u32() },
                       "record truncated at byte 17 reading u32 (4 needed, 2 left)")
        XCTAssertEqual(failure([]) { r throws(StorageError) in _ = try r.u8() }, "record truncated at byte 0 reading u8 (1 needed, 0 left)")
        XCTAssertEqual(failure([0x80, 0x80]) { r throws(StorageError) in _ = try r.varint() }, "record truncated at byte 2 reading varint begun at byte 0")
        XCTAssertNotNil(failure([0, 1]) { r throws(StorageError) in _ = try r.raw(3) })
    }

    func testLengthsBeyondTheRecordAreCorruptionNotACrash() {
        var w = RecordWriter()
        w.varint(4_000_000_000)
        w.raw([1, 2, 3])
        XCTAssertEqual(failure(w.buffer) { r throws(StorageError) in _ = try r.bytes() }, "length 4000000000 at byte 0 exceeds record (3 bytes left)")
        var huge = RecordWriter()
        huge.varint(.max)
        XCTAssertNotNil(failure(huge.buffer) { r throws(StorageError) in _ = try r.string() })
    }

    func testOverlongAndOversizedVarintsAreRejected() {
        XCTAssertEqual(failure([0x81, 0x00]) { r throws(StorageError) in _ = try r.varint() }, "varint at byte 0 is overlong (2 bytes)")
        XCTAssertEqual(failure([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02]) { r throws(StorageError) in _ = try r.varint() }, "varint at byte 0 exceeds 64 bits")
        XCTAssertNotNil(failure([UInt8](repeating: 0xFF, count: 11)) { r throws(StorageError) in _ = try r.varint() })
        XCTAssertNil(failure([0x00]) { r throws(StorageError) in XCTAssertEqual(try r.varint(), 0) }, "a lone zero is the one encoding of 0")
    }

    func testInvalidUTF8AndBadBoolsAreCorruption() {
        XCTAssertEqual(failure([2, 0xC3, 0x28]) { r throws(StorageError) in _ = try r.string() }, "string at byte 0 is not valid UTF-8")
        XCTAssertEqual(failure([2]) { r throws(StorageError) in _ = try r.bool() }, "bool at byte 0 is 2, not 0 or 1")
        XCTAssertEqual(failure([1, 2]) { r throws(StorageError) in _ = try r.u8(); try r.expectEnd() }, "record has 1 trailing bytes after byte 1")
    }

    func testFailedReadLeavesOffsetAtTheField() {
        _ = failure([1, 5, 0]) { r throws(StorageError) in
            _ = try r.u8()
            defer { XCTAssertEqual(r.offset, 1) }
            _ = try r.bytes()
        }
    }

    func testKeysSortNumerically() {
        let keys = [70000, 3, 256, 255, 0].map { RecordKey.make([0x10], UInt64($0)) }
        XCTAssertEqual(keys.sorted { $0.lexicographicallyPrecedes($1) }.map { $0.withUnsafeBytes { RecordKey.trailingU64($0)! } }, [0, 3, 255, 256, 70000])
        var composite: [UInt8] = []
        RecordKey.appendComponent("ab", to: &composite)
        RecordKey.append(UInt32(5), to: &composite)
        XCTAssertEqual(composite, [0, 2, 0x61, 0x62, 0, 0, 0, 5])
        XCTAssertEqual(RecordKey.prefixEnd([1, 0xFF]), [2])
        XCTAssertNil(RecordKey.prefixEnd([0xFF, 0xFF]))
        XCTAssertNil(RecordKey.prefixEnd([]))
        XCTAssertNil([UInt8]([1, 2]).withUnsafeBytes { RecordKey.trailingU64($0) })
    }
}
