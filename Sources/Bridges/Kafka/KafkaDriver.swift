import Broker
import Glibc
import Synchronization

/// `[bridges.kafka.<name>]`.
public struct KafkaSettings: Sendable {
    public enum Acks: String, Sendable, CaseIterable {
        case all, leader, none
        var property: String {
            switch self { case .all: "all"; case .leader: "1"; case .none: "0" }
        }
    }
    public enum Compression: String, Sendable, CaseIterable { case none, gzip, snappy, lz4, zstd }

    /// "host:port[,host:port…]".
    public var bootstrapServers: String
    public var acks = Acks.all
    /// librdkafka's idempotent producer: no duplicates or reordering from its own retries.
    public var idempotence = true
    public var compression = Compression.none
    /// Any librdkafka property, applied last (so it may override the ones above).
    public var properties: [(name: String, value: String)] = []

    public init(bootstrapServers: String) { self.bootstrapServers = bootstrapServers }

    /// What librdkafka is given. `message.timeout.ms` is short so that a broker that is down
    /// comes back as retriable outcomes within seconds and the bridge buffer's retries (and
    /// metrics) take over; `consistent_random` hashes the key, so a car keeps one partition.
    var librdkafkaProperties: [(String, String)] {
        [("bootstrap.servers", bootstrapServers),
         ("acks", acks.property),
         ("enable.idempotence", idempotence ? "true" : "false"),
         ("compression.type", compression.rawValue),
         ("partitioner", "consistent_random"),
         ("message.timeout.ms", "5000"),
         ("linger.ms", "5")]
            + properties.map { ($0.name, $0.value) }
    }

    /// Throws the first property librdkafka refuses, with its message (checked at start-up).
    public func validate() throws {
        try RDKafkaProducer.validate(librdkafkaProperties)
    }
}

/// Kafka produce through librdkafka, on the bridge's thread: one producer per bridge, each
/// record of a request produced with an opaque naming (request, index), and `wait` =
/// `rd_kafka_poll`, which serves the delivery reports. A request is finished when each of its
/// records has a report. librdkafka batches, compresses and retries inside `message.timeout.ms`;
/// past that the bridge buffer retries, so a car's records keep their order only with
/// `inflight_window = 1` (the default for Kafka bridges).
final class KafkaDriver: SinkDriver, @unchecked Sendable {
    /// Records per request, as `batch_size` allows: they all go to librdkafka's queue at once.
    let maxBatch = 10_000
    private let settings: KafkaSettings
    /// Swapped only on the bridge's thread, under the lock so `wakeUp` never yields a freed one.
    private let current = Mutex<RDKafkaProducer?>(nil)
    private var producer: RDKafkaProducer? { current.withLock { $0 } }
    /// Requests with reports outstanding.
    private struct Pending {
        var outcomes: [Outcome?]
        var missing: Int
    }
    private var pending: [UInt64: Pending] = [:]
    private var finished: [(id: UInt64, outcomes: [Outcome])] = []
    private var fatal: String?
    private let closed = Atomic<Bool>(false)

    // The opaque: request id above, index in the request below (batch_size ≤ 10,000 < 2^16).
    private static let indexBits: UInt = 16

    init(settings: KafkaSettings) throws {
        self.settings = settings
        let p = try makeProducer()
        current.withLock { $0 = p }
    }

    private func makeProducer() throws -> RDKafkaProducer {
        try RDKafkaProducer.make(settings.librdkafkaProperties, delivery: { [unowned self] opaque, error in
            report(opaque, error.map { $0.isRetriable ? .retriable($0.description) : .permanent($0.description) } ?? .delivered)
        }, fatal: { [unowned self] message in fatal = message })
    }

    func send(_ records: [BridgeRecord], id: UInt64) {
        pending[id] = Pending(outcomes: Array(repeating: nil, count: records.count), missing: records.count)
        for (i, r) in records.enumerated() {
            let opaque = UInt(id) << Self.indexBits | UInt(i)
            guard let producer else {
                report(opaque, .retriable("producer is being recreated"))
                continue
            }
            if let error = producer.produce(topic: r.target, key: r.key, value: r.body, headers: r.headers, opaque: opaque) {
                report(opaque, error.isRetriable ? .retriable(error.description) : .permanent(error.description))
            }
        }
    }

    private func report(_ opaque: UInt, _ outcome: Outcome) {
        let id = UInt64(opaque >> Self.indexBits), index = Int(opaque & (1 << Self.indexBits - 1))
        guard var p = pending[id], index < p.outcomes.count, p.outcomes[index] == nil else { return }
        p.outcomes[index] = outcome
        p.missing -= 1
        if p.missing == 0 {
            pending[id] = nil
            finished.append((id, p.outcomes.map { $0! }))
        } else {
            pending[id] = p
        }
    }

    func wait(timeoutMs: Int) -> [(id: UInt64, outcomes: [Outcome])] {
        if producer == nil, !closed.load(ordering: .acquiring) {
            // The last one failed fatally and a new one could not be made: try again, without
            // spinning while the buffer retries.
            if let p = try? makeProducer() { current.withLock { $0 = p } } else { usleep(UInt32(min(timeoutMs, 500)) * 1000) }
        }
        let timeout = finished.isEmpty ? timeoutMs : 0
        producer?.poll(timeoutMs: timeout)
        if let why = fatal {
            // A fatal error (idempotence state lost) leaves the producer unusable: what it
            // holds is retried through a new one.
            fatal = nil
            let old = current.withLock { p in defer { p = nil }; return p }
            old?.destroy(flushTimeoutMs: 0)
            for (id, p) in pending {
                for i in p.outcomes.indices where p.outcomes[i] == nil {
                    report(UInt(id) << Self.indexBits | UInt(i), .retriable("librdkafka fatal error: \(why)"))
                }
            }
            let p = try? makeProducer()
            current.withLock { $0 = p }
        }
        defer { finished.removeAll(keepingCapacity: true) }
        return finished
    }

    func wakeUp() {
        guard !closed.load(ordering: .acquiring) else { return }
        current.withLock { $0?.yield() }
    }

    deinit { close() }

    func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let old = current.withLock { p in defer { p = nil }; return p }
        old?.destroy(flushTimeoutMs: 2000)
    }
}
