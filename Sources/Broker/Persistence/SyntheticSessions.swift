import MQTTCodec
import Storage

/// Benchmarks only (`bench/storegen`): fills a data directory's store with `count` persistent
/// sessions written exactly as the broker writes them, each subscribed at QoS 1 to
/// `cars/<vin>/cmd`, disconnected now with an expiry of a day, so that a restart with a million
/// stored sessions can be measured without connecting a million clients first.
public enum SyntheticSessions {
    public static func write(count: Int, dataDirectory: String, batchSize: Int = 10_000) throws {
        try Broker.makeDirectories(dataDirectory + "/store")
        let (store, _) = try Store.open(directory: dataDirectory + "/store")
        defer { store.close() }
        let now = wallClockMilliseconds()
        var batch = StoreBatch()
        for i in 0..<count {
            let vin = "VIN\(100_000_000 + i)"
            let record = SessionRecord(protocolVersion: .v3_1_1, expiryInterval: 86_400, disconnectedAt: now,
                                       subscriptions: [.init(filter: "cars/\(vin)/cmd", options: SubscriptionOptions(qos: .atLeastOnce), identifier: nil)])
            batch.put(.sessions, key: RecordKeys.session(vin), value: record.encode())
            if batch.count >= batchSize {
                try store.commitNow(batch)
                batch.removeAll()
            }
        }
        if !batch.isEmpty { try store.commitNow(batch) }
        try store.flush()
    }
}
