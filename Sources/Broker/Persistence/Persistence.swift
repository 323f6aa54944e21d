import EventLoop
import Logging
import MQTTCodec
import Storage
import Synchronization

/// How much the broker promises about what it acknowledged (`[storage] durability`).
public enum Durability: String, Sendable {
    /// PUBACK/PUBREC/PUBCOMP wait until what the packet changed is fsynced (group commit).
    case sync
    /// Acknowledged at once; written at the end of the loop iteration, fsynced every
    /// `commit_interval_ms`: a crash of the process loses nothing, a power failure that window.
    case periodic
    /// In memory only: a restart forgets every session and retained message.
    case none
}

/// The broker's side of the durable store: which records exist, the ids that tie them together
/// and the counters behind `$SYS/broker/storage/…`. Record formats are in Records.swift; the
/// write points in Broker+Persistence.swift; start-up recovery in Broker+Recovery.swift.
///
/// Writes are never made on the spot: a loop adds them to its own `StoreBatch`
/// (`LoopContext.batch`) and hands the batch to the store once per iteration, so one commit
/// (and under `sync` one fsync) covers everything the iteration changed. Acknowledgements that
/// depend on those writes wait in the loop until the store reports the commit.
final class Persistence: @unchecked Sendable {
    let store: Store
    let durability: Durability
    /// Message ids (the `messages` keyspace) and delivery sequence numbers, never reused.
    private let nextMessageId = Atomic<UInt64>(1)
    private let nextSeq = Atomic<UInt64>(1)
    /// Record ids of disk-buffered bridge records (the `bridges` keyspace), never reused.
    private let nextBridgeRecordId = Atomic<UInt64>(1)
    /// Commits that failed (logged, and every acknowledgement waiting on them refused).
    let failedCommits = Atomic<Int>(0)

    init(store: Store, durability: Durability) {
        self.store = store
        self.durability = durability
    }

    /// Acknowledgements wait for the commit.
    var holdsAcks: Bool { durability == .sync }

    func seedIds(message: UInt64, seq: UInt64) {
        nextMessageId.store(max(1, message), ordering: .relaxed)
        nextSeq.store(max(1, seq), ordering: .relaxed)
    }

    func makeSeq() -> UInt64 { nextSeq.wrappingAdd(1, ordering: .relaxed).oldValue }

    func seedBridgeRecordId(_ id: UInt64) { nextBridgeRecordId.store(max(1, id), ordering: .relaxed) }
    func makeBridgeRecordId() -> UInt64 { nextBridgeRecordId.wrappingAdd(1, ordering: .relaxed).oldValue }

    // MARK: Shared message records

    // `Message.storeRef` packs the message's record id (high 40 bits) and how many stored
    // deliveries refer to it (low 24 bits). The delivery that takes it from 0 to 1 references
    // gets a fresh id and writes the record; the one that takes it back to 0 deletes it. A
    // fresh id each time means a delete racing a new first reference on another loop can never
    // remove the record the new reference needs.
    static let refBits: UInt64 = 24
    static let refMask: UInt64 = (1 << 24) - 1

    /// Adds a reference to `m`'s record, writing the record into `batch` when it is the first.
    /// Returns the record id.
    func retainMessage(_ m: Message, wallNow: UInt64, monoNow: UInt64, into batch: inout StoreBatch) -> UInt64 {
        var current = m.storeRef.load(ordering: .acquiring)
        while true {
            let refs = current & Self.refMask
            if refs == 0 {
                let id = nextMessageId.wrappingAdd(1, ordering: .relaxed).oldValue
                let next = id << Self.refBits | 1
                let (exchanged, original) = m.storeRef.compareExchange(expected: current, desired: next, ordering: .acquiringAndReleasing)
                if exchanged {
                    batch.put(.messages, key: RecordKeys.message(id), value: Self.record(m, wallNow: wallNow, monoNow: monoNow).encode())
                    return id
                }
                current = original
            } else {
                precondition(refs < Self.refMask, "more than 16M stored deliveries of one message")
                let (exchanged, original) = m.storeRef.compareExchange(expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
                if exchanged { return current >> Self.refBits }
                current = original
            }
        }
    }

    /// Drops a reference; the last one deletes the record.
    func releaseMessage(_ m: Message, into batch: inout StoreBatch) {
        var current = m.storeRef.load(ordering: .acquiring)
        while true {
            guard current & Self.refMask > 0 else { return }
            let (exchanged, original) = m.storeRef.compareExchange(expected: current, desired: current - 1, ordering: .acquiringAndReleasing)
            if exchanged {
                if current & Self.refMask == 1 { batch.delete(.messages, key: RecordKeys.message(current >> Self.refBits)) }
                return
            }
            current = original
        }
    }

    /// The record id of a message this caller holds a reference to.
    static func messageId(_ m: Message) -> UInt64 { m.storeRef.load(ordering: .acquiring) >> refBits }

    static func record(_ m: Message, wallNow: UInt64, monoNow: UInt64) -> MessageRecord {
        MessageRecord(topic: m.topic, payload: m.payload, qos: m.qos, retain: m.retain, properties: m.properties,
                      expiresAt: m.expiresAt.map { wallNow + ($0 > monoNow ? $0 - monoNow : 0) },
                      publisherClientId: m.publisherClientId, publisherUsername: m.publisherUsername,
                      peerhost: m.peerhost, receivedAt: m.receivedAt)
    }

    static func message(_ r: MessageRecord, wallNow: UInt64, monoNow: UInt64) -> Message {
        Message(topic: r.topic, payload: r.payload, qos: r.qos, retain: r.retain, properties: r.properties,
                expiresAt: r.expiresAt.map { monoNow + ($0 > wallNow ? $0 - wallNow : 0) },
                publisher: nil, publisherClientId: r.publisherClientId, receivedAt: r.receivedAt,
                publisherUsername: r.publisherUsername, peerhost: r.peerhost)
    }
}

/// Wall-clock milliseconds.
func wallClockMilliseconds() -> UInt64 { wallClockMicroseconds() / 1000 }
