// libFuzzer entry point for the broker's stored records (Sources/Broker/Persistence/Records.swift,
// compiled into this executable): the first byte picks the record type (message, session,
// delivery, bridge, will), the rest is decoded as start-up recovery would. Every input must decode or throw .corruption, never crash; whatever
// decodes must encode and decode again to the same record.
import MQTTCodec
import Storage

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStoredRecord(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let kind = data[0] % 5
    let body = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    do throws(StorageError) {
        switch kind {
        case 0:
            let m = try RecordReader.read(body) { r throws(StorageError) in try MessageRecord.decode(&r) }
            let again = try RecordReader.read(m.encode()) { r throws(StorageError) in try MessageRecord.decode(&r) }
            precondition(again == m, "MessageRecord does not round-trip")
        case 1:
            let s = try RecordReader.read(body) { r throws(StorageError) in try SessionRecord.decode(&r) }
            let again = try RecordReader.read(s.encode()) { r throws(StorageError) in try SessionRecord.decode(&r) }
            precondition(again == s, "SessionRecord does not round-trip")
        case 2:
            let d = try RecordReader.read(body) { r throws(StorageError) in try DeliveryRecord.decode(&r) }
            let again = try RecordReader.read(d.encode()) { r throws(StorageError) in try DeliveryRecord.decode(&r) }
            precondition(again == d, "DeliveryRecord does not round-trip")
        case 3:
            let b = try RecordReader.read(body) { r throws(StorageError) in try StoredBridgeRecord.decode(&r) }
            let again = try RecordReader.read(b.encode()) { r throws(StorageError) in try StoredBridgeRecord.decode(&r) }
            precondition(again == b, "StoredBridgeRecord does not round-trip")
        default:
            let w = try RecordReader.read(body) { r throws(StorageError) in try WillRecord.decode(&r) }
            let again = try RecordReader.read(w.encode()) { r throws(StorageError) in try WillRecord.decode(&r) }
            precondition(again == w, "WillRecord does not round-trip")
        }
    } catch {
        precondition(error.code == .corruption, "\(error)")
    }
    return 0
}
