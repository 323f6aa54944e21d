// libFuzzer entry point for the storage record decoder: arbitrary bytes are read as a record of
// tagged fields (one tag byte picks the next field's type) until they run out. Every read must
// succeed or throw .corruption, never crash or over-read; whatever decodes must re-encode to
// exactly the bytes it was read from, since each value has one encoding.
import StorageRecordFuzzed

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRecord(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    var r = RecordReader(bytes)
    while !r.isAtEnd {
        let start: Int
        var w = RecordWriter()
        do throws(StorageError) {
            let tag = try r.u8() % 9
            start = r.offset
            switch tag {
            case 0: w.u8(try r.u8())
            case 1: w.u16(try r.u16())
            case 2: w.u32(try r.u32())
            case 3: w.u64(try r.u64())
            case 4: w.varint(try r.varint())
            case 5: w.string(try r.string())
            case 6: w.bytes(try r.bytes())
            case 7: w.bool(try r.bool())
            default:
                let n = try r.u8()
                w.u8(n)
                w.raw(try r.raw(Int(n % 32)))
            }
        } catch {
            precondition(error.code == .corruption, "decode failed with \(error.code)")
            precondition(r.offset <= bytes.count, "offset past the end")
            break
        }
        let consumed = UnsafeRawBufferPointer(rebasing: bytes[start..<r.offset])
        precondition(w.buffer.elementsEqual(consumed), "re-encoding differs at byte \(start)")
    }
    return 0
}
