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
    /// Any librdkafka property, applied last (so it may override the ones above), except
    /// `message.timeout.ms`, which `requestTTL` sets.
    public var properties: [(name: String, value: String)] = []
    /// The bridge's `request_ttl` in seconds (0: forever): how long librdkafka keeps retrying a
    /// record it holds (`message.timeout.ms`).
    public var requestTTL = 0
    /// Records librdkafka may hold at once: the bridge's `inflight_window` × `batch_size`, so
    /// that handing a request over never fails for a full queue.
    public var maxInflightRecords = 10_000

    public init(bootstrapServers: String) { self.bootstrapServers = bootstrapServers }

    /// Properties the bridge derives from its own settings, refused in `properties`.
    public static let ownedProperties: Set<String> = ["message.timeout.ms", "delivery.timeout.ms"]

    /// What librdkafka is given. librdkafka owns the retries of what it holds: it retries a
    /// broker that is down, a leader change or a timeout on its own until `request_ttl`
    /// (`message.timeout.ms`, 0 = for ever), and its idempotent producer keeps each
    /// partition's order across those retries. A record the bridge buffer retried itself could
    /// land after later records of the same car. Without idempotence, one request in flight
    /// per broker connection keeps that order instead. `consistent_random` hashes the key, so a
    /// car keeps one partition.
    var librdkafkaProperties: [(String, String)] {
        var p = [("bootstrap.servers", bootstrapServers),
                 ("acks", acks.property),
                 ("enable.idempotence", idempotence ? "true" : "false"),
                 ("compression.type", compression.rawValue),
                 ("partitioner", "consistent_random"),
                 ("message.timeout.ms", String(min(requestTTL, 2_147_483) * 1000)),
                 ("queue.buffering.max.messages", String(max(100_000, maxInflightRecords))),
                 ("linger.ms", "5")]
        if !idempotence && acks != .none { p.append(("max.in.flight.requests.per.connection", "1")) }
        return p + properties.map { ($0.name, $0.value) }
    }

    /// Throws the first property librdkafka refuses, with its message (checked at start-up).
    public func validate() throws {
        try RDKafkaProducer.validate(librdkafkaProperties)
    }
}

/// Kafka produce through librdkafka, on the bridge's thread: one producer per bridge, each
/// record of a request produced with an opaque naming (request, index); `wait` sleeps on a
/// wake pipe and librdkafka's event pipe, then serves the delivery reports
/// (`rd_kafka_poll(0)`). A request is finished when each of its records has a report. Several requests may be in librdkafka at once (`inflight_window`):
/// records enter its queue in arrival order and it retries them itself (see
/// `librdkafkaProperties`), so the buffer's own retries are only for what never entered it
/// (a produce refused, a producer lost to a fatal error) — and then nothing later is let in
/// before them: after a refused produce every record is refused until nothing is in flight,
/// so the buffer puts them all back in arrival order.
final class KafkaDriver: SinkDriver, @unchecked Sendable {
    /// Records per request, as `batch_size` allows: they all go to librdkafka's queue at once.
    let maxBatch = 10_000
    private let settings: KafkaSettings
    /// Used and replaced on the bridge's thread only.
    private var producer: RDKafkaProducer?
    /// `wakeUp` writes a byte to the first, librdkafka to the second when an event (a delivery
    /// report, an error) waits to be served; `wait` polls both read ends.
    private var wakePipe: [Int32] = [-1, -1]
    private var eventPipe: [Int32] = [-1, -1]
    private var fds: [pollfd] = []
    /// A request with reports outstanding: updated in place per report (a class, so a
    /// report never copies the request's outcomes).
    private final class Pending {
        var outcomes: [Outcome]
        var reported: [Bool]
        var missing: Int
        init(count: Int) {
            outcomes = Array(repeating: .delivered, count: count)
            reported = Array(repeating: false, count: count)
            missing = count
        }
    }
    private var pending: [UInt64: Pending] = [:]
    /// A produce was refused: refuse the rest until nothing is in flight (see the type's note).
    private var refusing = false
    /// librdkafka said every broker is down since the last `takeConnectionLost`.
    private var connectionLost = false
    private var finished: [(id: UInt64, outcomes: [Outcome])] = []
    private var fatal: String?
    private let closed = Atomic<Bool>(false)

    // The opaque: request id above, index in the request below (batch_size ≤ 10,000 < 2^16).
    private static let indexBits: UInt = 16

    init(settings: KafkaSettings) throws {
        self.settings = settings
        _ = pipe(&wakePipe)
        _ = pipe(&eventPipe)
        for fd in wakePipe + eventPipe { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        do {
            producer = try makeProducer()
        } catch {
            for fd in wakePipe + eventPipe { Glibc.close(fd) }
            throw error
        }
    }

    private func makeProducer() throws -> RDKafkaProducer {
        let p = try RDKafkaProducer.make(settings.librdkafkaProperties, delivery: { [unowned self] opaque, error in
            report(opaque, error.map { $0.isRetriable ? .retriable($0.description) : .permanent($0.description) } ?? .delivered)
        }, fatal: { [unowned self] message in fatal = message },
           brokersDown: { [unowned self] in connectionLost = true })
        p.notifyEvents(fd: eventPipe[1])
        return p
    }

    func send(_ records: [BridgeRecord], id: UInt64) {
        pending[id] = Pending(count: records.count)
        let base = UInt(id) << Self.indexBits
        for i in records.indices {
            let r = records[i]
            guard !refusing, let producer else {
                report(base | UInt(i), .retriable(refusing ? "waiting for earlier records to be retried first" : "producer is being recreated"))
                continue
            }
            if let error = producer.produce(topic: r.target, key: r.key, value: r.body, headers: r.headers, opaque: base | UInt(i)) {
                if error.isRetriable { refusing = true }
                report(base | UInt(i), error.isRetriable ? .retriable(error.description) : .permanent(error.description))
            }
        }
    }

    private func report(_ opaque: UInt, _ outcome: Outcome) {
        let id = UInt64(opaque >> Self.indexBits), index = Int(opaque & (1 << Self.indexBits - 1))
        guard let p = pending[id], index < p.outcomes.count, !p.reported[index] else { return }
        p.reported[index] = true
        if case .delivered = outcome {} else { p.outcomes[index] = outcome }
        p.missing -= 1
        if p.missing == 0 {
            pending[id] = nil
            finished.append((id, p.outcomes))
            if pending.isEmpty { refusing = false }
        }
    }

    func takeConnectionLost() -> Bool {
        defer { connectionLost = false }
        return connectionLost
    }

    func wait(timeoutMs: Int) -> [(id: UInt64, outcomes: [Outcome])] {
        if producer == nil, !closed.load(ordering: .acquiring) {
            // The last one failed fatally and a new one could not be made: try again, at most
            // every 500 ms while the buffer retries.
            producer = try? makeProducer()
        }
        // librdkafka writes to the event pipe when its queue becomes non-empty (and again
        // once served); the 100 ms cap while records are out only bounds a missed write.
        var timeout = finished.isEmpty ? timeoutMs : 0
        if producer == nil { timeout = min(timeout, 500) } else if !pending.isEmpty { timeout = min(timeout, 100) }
        fds.removeAll(keepingCapacity: true)
        fds.append(pollfd(fd: wakePipe[0], events: Int16(POLLIN), revents: 0))
        fds.append(pollfd(fd: eventPipe[0], events: Int16(POLLIN), revents: 0))
        _ = poll(&fds, nfds_t(fds.count), Int32(timeout))
        var buf = [UInt8](repeating: 0, count: 64)
        for fd in [wakePipe[0], eventPipe[0]] { while read(fd, &buf, buf.count) > 0 {} }
        producer?.poll(timeoutMs: 0)
        if let why = fatal {
            // A fatal error (idempotence state lost) leaves the producer unusable: what it
            // holds is retried through a new one.
            fatal = nil
            producer?.destroy(flushTimeoutMs: 0)
            producer = nil
            for (id, p) in pending {
                for i in p.reported.indices where !p.reported[i] {
                    report(UInt(id) << Self.indexBits | UInt(i), .retriable("librdkafka fatal error: \(why)"))
                }
            }
            producer = try? makeProducer()
        }
        defer { finished.removeAll(keepingCapacity: true) }
        return finished
    }

    /// Any thread: makes a `wait` in progress return.
    func wakeUp() {
        guard !closed.load(ordering: .acquiring) else { return }
        var b: UInt8 = 1
        _ = write(wakePipe[1], &b, 1)
    }

    deinit { close() }

    func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        producer?.destroy(flushTimeoutMs: 2000)
        producer = nil
        for fd in wakePipe + eventPipe where fd >= 0 { Glibc.close(fd) }
    }
}
