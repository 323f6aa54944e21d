import Broker
import EventLoop
import Glibc
import Logging
import Synchronization

/// Which node has each client id's session: JetStream key-value buckets, the client id (hex)
/// as key and the node's name as value. A CONNECT reads the entry; when another node has it,
/// that node is asked over NATS (`<prefix>.takeover.<node>`) to disconnect its connection and
/// send the session, then the entry is set to this node with compare-and-set (a create when
/// there was none), so two nodes claiming at once cannot both win. A reconnect to the node
/// that has the session is one read and no write.
///
/// The keys are spread over `bucketCount` buckets, each its own stream with its own Raft
/// leader, so a reconnect storm is not serialized on one leader; the claims run on a few
/// threads of their own, never on a loop or on libnats's delivery thread.
final class SessionRegistry: @unchecked Sendable {
    static let bucketCount = 4
    static let workers = 16

    private let client: NatsClient
    private let nodeName: String
    private let prefix: String
    private let replicas: Int
    private let logger: Logger
    private var buckets: [OpaquePointer] = []
    private let ready = Atomic<Bool>(false)

    struct Claim {
        let clientId: String
        let cleanStart: Bool
        let started: UInt64
        /// The session's state and the node it came from (nil, nil: none elsewhere).
        let done: @Sendable ([UInt8]?, String?) -> Void
    }
    private let queue = Mutex<[Claim]>([])
    private let wake = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
    private let running = Atomic<Bool>(true)
    private var threads: [pthread_t] = []

    // Figures.
    let claims = Atomic<Int>(0)
    let takeovers = Atomic<Int>(0)
    let failures = Atomic<Int>(0)
    let lastLatencyMicros = Atomic<Int>(0)
    let maxLatencyMicros = Atomic<Int>(0)

    init(client: NatsClient, nodeName: String, prefix: String, replicas: Int, logger: Logger) {
        self.client = client; self.nodeName = nodeName; self.prefix = prefix; self.replicas = replicas; self.logger = logger
        sem_init(wake, 0, 0)
    }

    var isReady: Bool { ready.load(ordering: .acquiring) }

    /// Creates or binds the buckets (JetStream requests: on the cluster thread).
    func setUp() throws {
        let base = prefix.uppercased().map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined()
        var made: [OpaquePointer] = []
        for i in 0..<Self.bucketCount {
            made.append(try client.keyValue(bucket: "\(base)_SESSIONS_\(i)", replicas: replicas))
        }
        buckets = made
        ready.store(true, ordering: .releasing)
        for _ in 0..<Self.workers { threads.append(Threads.start { self.work() }) }
    }

    /// From a loop: queued for a worker. Until the buckets exist, the node acts alone.
    func claim(_ c: Claim) {
        guard isReady else { c.done(nil, nil); return }
        queue.withLock { $0.append(c) }
        sem_post(wake)
    }

    func stop() {
        guard running.exchange(false, ordering: .acquiringAndReleasing) else { return }
        for _ in threads { sem_post(wake) }
        for t in threads { pthread_join(t, nil) }
        // Whatever was still waiting goes on without the registry.
        for c in queue.withLock({ q -> [Claim] in let out = q; q.removeAll(); return out }) { c.done(nil, nil) }
    }

    private func work() {
        while true {
            sem_wait(wake)
            guard running.load(ordering: .acquiring) else { return }
            guard let c = queue.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { continue }
            let (state, from) = run(c)
            let took = Int(monotonicMicros() &- c.started)
            lastLatencyMicros.store(took, ordering: .relaxed)
            if took > maxLatencyMicros.load(ordering: .relaxed) { maxLatencyMicros.store(took, ordering: .relaxed) }
            claims.wrappingAdd(1, ordering: .relaxed)
            c.done(state, from)
        }
    }

    /// KV keys allow letters, digits and `-/_=.`: the client id in hex.
    static func key(_ clientId: String) -> String { "c." + (clientId.isEmpty ? "_" : Hex.encode(clientId.utf8)) }

    private func bucket(for clientId: String) -> OpaquePointer {
        buckets[Int(ClusterHash.of(clientId.utf8) % UInt64(buckets.count))]
    }

    /// Writes this node as the owner: true when it took, false when someone wrote first (read
    /// again), nil when the registry failed (counted and logged; the CONNECT goes on alone).
    private func claimed(_ kv: OpaquePointer, _ key: String, expecting revision: UInt64?) -> Bool? {
        do {
            return try NatsClient.kvSet(kv, key, nodeName, expecting: revision)
        } catch {
            failures.wrappingAdd(1, ordering: .relaxed)
            logger.warning("cluster: session registry: \(error)")
            return nil
        }
    }

    /// The session's state from the node that had it (nil: none, or it did not answer), and
    /// that node.
    private func run(_ c: Claim) -> (state: [UInt8]?, from: String?) {
        let kv = bucket(for: c.clientId)
        let key = Self.key(c.clientId)
        var state: [UInt8]?
        var from: String?
        var asked: Set<String> = []
        for _ in 0..<5 {
            switch NatsClient.kvGet(kv, key) {
            case .failed(let e):
                failures.wrappingAdd(1, ordering: .relaxed)
                logger.warning("cluster: session registry unavailable for \(c.clientId) (\(e)); connecting on this node alone")
                return (state, from)
            case .missing:
                if claimed(kv, key, expecting: nil) != false { return (state, from) }
            case .value(let owner, let revision):
                if owner == nodeName { return (state, from) }
                if !asked.contains(owner) {
                    asked.insert(owner)
                    // The other node disconnects its connection and answers with the session
                    // (0x01 + state), or 0x00: none. A node that is gone does not answer.
                    var req: [UInt8] = [c.cleanStart ? 1 : 0]
                    req.append(contentsOf: c.clientId.utf8)
                    if let reply = client.request(prefix + ".takeover." + owner, req, timeoutMs: 2000) {
                        takeovers.wrappingAdd(1, ordering: .relaxed)
                        if reply.first == 1 { (state, from) = (Array(reply.dropFirst()), owner) }
                    } else {
                        logger.notice("cluster: node \(owner) did not hand over the session of \(c.clientId) (gone?); it starts here without it")
                    }
                }
                if claimed(kv, key, expecting: revision) != false { return (state, from) }
            }
            // Someone else wrote meanwhile: read again.
        }
        failures.wrappingAdd(1, ordering: .relaxed)
        logger.warning("cluster: session registry: no stable owner for \(c.clientId) after 5 tries; connecting here")
        return (state, from)
    }
}

func monotonicMicros() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
}
