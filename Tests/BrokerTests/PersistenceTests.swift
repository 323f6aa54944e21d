@testable import Broker
import Foundation
import Logging
import MQTTCodec
import Storage
import XCTest

// The broker's stored records: round trips, damage at every byte, and what recovery does with
// records that do not decode or refer to something missing.

final class PersistenceTests: XCTestCase {
    private func sampleMessage() -> MessageRecord {
        var props = Properties()
        props.contentType = "application/json"
        props.responseTopic = "cars/VIN1/reply"
        props.correlationData = [1, 2, 3]
        props.payloadFormatIndicator = 1
        props.userProperties = [UserProperty("fleet", "eu"), UserProperty("fleet", "ü")]
        return MessageRecord(topic: "cars/VIN1/cmd", payload: Array("unlock".utf8), qos: .atLeastOnce, retain: true,
                             properties: props, expiresAt: 1_800_000_000_000, publisherClientId: "backend",
                             publisherUsername: "ops", peerhost: "127.0.0.1:4000", receivedAt: 1_700_000_000)
    }

    private func sampleSession() -> SessionRecord {
        SessionRecord(protocolVersion: .v5, expiryInterval: 3600, disconnectedAt: 1_700_000_000_123, subscriptions: [
            .init(filter: "cars/VIN1/cmd", options: SubscriptionOptions(qos: .exactlyOnce, noLocal: true, retainAsPublished: true, retainHandling: 2), identifier: 7),
            .init(filter: "$share/g/fleet/#", options: SubscriptionOptions(qos: .atLeastOnce), identifier: nil),
        ])
    }

    private func sampleWill() -> WillRecord {
        var p = Properties()
        p.willDelayInterval = 30
        p.messageExpiryInterval = 60
        return WillRecord(will: Will(topic: "cars/VIN1/lost", payload: [0, 255], qos: .exactlyOnce, retain: true, properties: p),
                          publishAt: 1_700_000_030_000)
    }

    private let delivery = DeliveryRecord(messageId: 42, qos: .exactlyOnce, retain: false, state: .awaitingPubComp,
                                          packetId: 513, identifiers: [1, 268_435_455])

    private func sampleBridgeRecord() -> StoredBridgeRecord {
        StoredBridgeRecord(submittedAt: 1_764_000_000_123, rule: "to_pg", target: "INSERT INTO t (a, b) VALUES ($1, $2)",
                           method: "POST", key: Array("VIN1".utf8), body: [0, 1, 255, 39, 92],
                           headers: [.init(name: "x-car", value: "VIN1"), .init(name: "", value: "")],
                           parameters: [Array("'); DROP TABLE x; --".utf8), nil, []])
    }

    func testRecordsRoundTrip() throws {
        XCTAssertEqual(try RecordReader.read(sampleBridgeRecord().encode()) { r throws(StorageError) in try StoredBridgeRecord.decode(&r) }, sampleBridgeRecord())
        var keyless = sampleBridgeRecord()
        keyless.key = nil
        keyless.headers = []
        XCTAssertEqual(try RecordReader.read(keyless.encode()) { r throws(StorageError) in try StoredBridgeRecord.decode(&r) }, keyless)
        XCTAssertEqual(try RecordReader.read(sampleMessage().encode()) { r throws(StorageError) in try MessageRecord.decode(&r) }, sampleMessage())
        XCTAssertEqual(try RecordReader.read(sampleSession().encode()) { r throws(StorageError) in try SessionRecord.decode(&r) }, sampleSession())
        XCTAssertEqual(try RecordReader.read(sampleWill().encode()) { r throws(StorageError) in try WillRecord.decode(&r) }, sampleWill())
        XCTAssertEqual(try RecordReader.read(delivery.encode()) { r throws(StorageError) in try DeliveryRecord.decode(&r) }, delivery)
    }

    /// Every truncation and every single-byte change of every record either decodes or throws
    /// `.corruption`: never a crash, never a hang.
    func testDamagedRecordsThrow() {
        let encoded: [(String, [UInt8], (inout RecordReader) throws(StorageError) -> Void)] = [
            ("message", sampleMessage().encode(), { r throws(StorageError) in _ = try MessageRecord.decode(&r) }),
            ("session", sampleSession().encode(), { r throws(StorageError) in _ = try SessionRecord.decode(&r) }),
            ("will", sampleWill().encode(), { r throws(StorageError) in _ = try WillRecord.decode(&r) }),
            ("delivery", delivery.encode(), { r throws(StorageError) in _ = try DeliveryRecord.decode(&r) }),
            ("bridge", sampleBridgeRecord().encode(), { r throws(StorageError) in _ = try StoredBridgeRecord.decode(&r) }),
        ]
        for (name, bytes, decode) in encoded {
            for n in 0..<bytes.count {
                XCTAssertThrowsError(try RecordReader.read(Array(bytes[0..<n]), decode), "\(name) truncated to \(n)") { e in
                    XCTAssertEqual((e as? StorageError)?.code, .corruption)
                }
            }
            for i in bytes.indices {
                for flip: UInt8 in [0x01, 0x80, 0xFF] {
                    var damaged = bytes
                    damaged[i] ^= flip
                    do { try RecordReader.read(damaged, decode) } catch { XCTAssertEqual(error.code, .corruption) }
                }
            }
            XCTAssertThrowsError(try RecordReader.read(bytes + [0], decode), "\(name) with a trailing byte")
        }
    }

    func testSessionKeysSplitAtTheZeroByte() {
        let key = RecordKeys.delivery("car-ü", 9)
        key.withUnsafeBytes { raw in
            let (id, rest) = RecordKeys.split(raw)!
            XCTAssertEqual(id, "car-ü")
            XCTAssertEqual(RecordKey.u64(at: 0, in: rest), 9)
        }
        // Numeric order is key order, so a session's deliveries come back in queue order.
        XCTAssertTrue(RecordKeys.delivery("a", 255).lexicographicallyPrecedes(RecordKeys.delivery("a", 256)))
    }

    /// A store with a good session, a session record that does not decode, a delivery whose
    /// message is missing and a bad retained record: the good parts come back, the bad ones are
    /// dropped (and deleted), and `storage check` names the undecodable ones.
    func testRecoveryDropsDamagedRecordsAndKeepsTheRest() throws {
        let dir = NSTemporaryDirectory() + "tp-persist-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/store", withIntermediateDirectories: true)
        do {
            let (store, _) = try Store.open(directory: dir + "/store")
            var b = StoreBatch()
            var good = sampleSession()
            good.disconnectedAt = UInt64(Date().timeIntervalSince1970 * 1000)
            b.put(.sessions, key: RecordKeys.session("good"), value: good.encode())
            b.put(.sessions, key: RecordKeys.session("bad"), value: [1, 99, 0])
            b.put(.messages, key: RecordKeys.message(1), value: sampleMessage().encode())
            b.put(.deliveries, key: RecordKeys.delivery("good", 1),
                  value: DeliveryRecord(messageId: 1, qos: .atLeastOnce, retain: false, state: .queued, packetId: 0, identifiers: []).encode())
            b.put(.deliveries, key: RecordKeys.delivery("good", 2),
                  value: DeliveryRecord(messageId: 99, qos: .atLeastOnce, retain: false, state: .queued, packetId: 0, identifiers: []).encode())
            b.put(.retained, key: Array("r/1".utf8), value: [1, 0])
            try store.commitNow(b)
            store.close()
        }
        let report = StoreCheck.run(directory: dir + "/store", validate: StoredRecords.problem)
        XCTAssertFalse(report.isOK)
        XCTAssertTrue(report.problems.contains { $0.hasPrefix("sessions record bad") }, "\(report.problems)")
        XCTAssertTrue(report.problems.contains { $0.hasPrefix("retained record r/1") }, "\(report.problems)")

        var config = BrokerConfiguration()
        config.listeners = [.init(bind: "127.0.0.1", port: 0)]
        config.dataDirectory = dir
        config.sysInterval = 0
        let broker = try Broker(configuration: config, logger: Logger(label: "test"))
        try broker.start()
        let summary = broker.recovered
        broker.shutdown()
        XCTAssertEqual(summary.sessions, 1)
        XCTAssertEqual(summary.queuedMessages, 1)
        XCTAssertEqual(summary.damaged, 3)
        XCTAssertEqual(summary.retained, 0)

        // Dropped records are gone from the store: the next start finds nothing damaged.
        let again = try Broker(configuration: config, logger: Logger(label: "test"))
        try again.start()
        XCTAssertEqual(again.recovered.damaged, 0)
        XCTAssertEqual(again.recovered.sessions, 1)
        XCTAssertEqual(again.recovered.queuedMessages, 1)
        again.shutdown()
    }
}
