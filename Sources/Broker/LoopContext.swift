import EventLoop
import MQTTCodec
import RuleEngine
import Storage
import DequeModule

/// A message on its way to a session owned by another loop.
struct Delivery {
    let session: Session
    let message: Message
    let qos: QoS
    let retain: Bool
    let identifiers: [UInt32]
    let group: SharedGroup?
    /// Stored by the publisher's loop (the session was offline): the owner deletes it when done.
    var storeSeq: UInt64 = 0
}

/// An acknowledgement waiting for the commit of the writes its packet caused.
struct HeldAck {
    let connection: Connection
    let gate: AckGate
}

/// Per-loop broker state: the loop's connections, its delivery mailbox and scratch buffers
/// reused by every packet handled on this loop.
final class LoopContext {
    let loop: EventLoop
    unowned let broker: Broker
    var deliveries: Mailbox<Delivery>!
    /// Messages from other nodes of the cluster, published on this loop.
    var fromCluster: Mailbox<RemoteMessage>!
    private(set) var connections: [ObjectIdentifier: Connection] = [:]
    /// This loop's counters (LoopCounters.swift): bumped here only, summed on a metrics scrape.
    var counters = LoopCounters()
    /// Dead letters published from this loop (DeadLetterLog.swift).
    var deadLetters = DeadLetterLog()
    /// Connected clients on this loop per listener, by protocol level (index 3, 4, 5): kept at
    /// CONNECT and close so that a metrics scrape need not walk every connection.
    private(set) var connected: [(listener: Listener, byVersion: [Int])] = []

    func countConnected(_ listener: Listener, _ version: ProtocolVersion, _ delta: Int) {
        let v = Int(version.rawValue)
        if let i = connected.firstIndex(where: { $0.listener === listener }) {
            connected[i].byVersion[v] += delta
        } else {
            var counts = [Int](repeating: 0, count: 6)
            counts[v] = delta
            connected.append((listener, counts))
        }
    }
    /// Socket reads land here; only a partial packet is copied into the connection.
    var readScratch = [UInt8](repeating: 0, count: 32 * 1024)
    /// New TLS handshakes started in iteration `handshakeIteration` (see `mayStartHandshake`).
    private var handshakesStarted = 0
    private var handshakeIteration: UInt64 = 0
    /// Each answer to a ClientHello costs a signature (~1 ms for RSA 2048): at most this many
    /// per loop iteration, so a reconnect storm cannot make one iteration last for hundreds of
    /// them (connected clients and half-done handshakes on the loop wait for it to end).
    static let handshakesPerIteration = 16

    /// Whether a connection may start its TLS handshake in this iteration. One told no stays
    /// readable (level-triggered) and is asked again in a later iteration, behind the others.
    func mayStartHandshake() -> Bool {
        if handshakeIteration != loop.iteration {
            handshakeIteration = loop.iteration
            handshakesStarted = 0
        }
        guard handshakesStarted < LoopContext.handshakesPerIteration else { return false }
        handshakesStarted += 1
        return true
    }
    var matches: [RouteMatch] = []
    var seen: [ObjectIdentifier: Int] = [:]
    /// Deliveries for other loops, sent as one batch per loop after routing.
    var outbound: [[Delivery]]
    /// The rule set this loop runs (swapped whole on reload, between two messages).
    var rules = RuleSet.empty
    /// Limits, authentication and bans as this loop applies them (swapped whole on reload).
    var settings: LiveSettings
    /// The bridges rule actions deliver into, by id (swapped whole on reload).
    var bridges: [String: any BridgeSink] = [:]
    var ruleMatches: [Int] = []
    /// Reused for every evaluation on this loop (the JSON index keeps its capacity).
    private var evaluation: EvaluationContext?

    func evaluationContext(_ input: RuleInput) -> EvaluationContext {
        if let e = evaluation {
            e.reset(input)
            return e
        }
        let e = EvaluationContext(input)
        evaluation = e
        return e
    }

    /// Wall clock seconds, for message timestamps.
    var wallClock: Int64 { wallClockSeconds() }

    init(loop: EventLoop, broker: Broker, loopCount: Int, settings: LiveSettings) {
        self.loop = loop
        self.broker = broker
        self.settings = settings
        self.outbound = Array(repeating: [], count: loopCount)
        self.deferredDeliveries = Array(repeating: 0, count: loopCount)
    }

    // MARK: Durable store (Broker+Persistence.swift)

    /// This iteration's writes, handed to the store at its end.
    var batch = StoreBatch()
    /// Set by every write; a handler clears it first to learn whether its packet wrote.
    var wroteSinceMark = false
    var commitScheduled = false
    /// Acknowledgements held on `batch`, and those held on batches the store has not confirmed
    /// yet (confirmations come back in submission order).
    var heldAcks: [HeldAck] = []
    /// Work that must wait until this iteration's writes are on disk (handing a stored delivery
    /// to its session's loop, freeing a client id whose records are being deleted).
    var afterCommit: [() -> Void] = []
    /// Deliveries to each loop waiting in `afterCommit` (later ones to that loop wait too).
    var deferredDeliveries: [Int]
    var committing = Deque<(acks: [HeldAck], then: [() -> Void])>()
    /// Acknowledgements waiting for a bridge's confirmation, by ticket (Broker+Persistence.swift).
    var sinkGates: [UInt64: (Connection, AckGate)] = [:]
    /// Messages this loop handed to the cluster (ClusterLink.forward), counted; and the
    /// acknowledgements waiting until the cluster has sent theirs to NATS (oldest first).
    var clusterForwarded: UInt64 = 0
    var clusterHeld = Deque<(count: UInt64, ack: HeldAck)>()
    /// A bridge that asked for backpressure while the PUBLISH being handled fed it.
    var fullBridge: (any BridgeSink)?
    /// Tickets of the `ack = 'after_sink'` actions run for the PUBLISH being handled.
    var pendingTickets: [UInt64] = []
    private var lastTicket: UInt64 = 0
    func makeTicket() -> AckTicket {
        lastTicket += 1
        pendingTickets.append(lastTicket)
        return AckTicket(loop: loop.index, id: lastTicket)
    }

    /// Runs `work` once this iteration's batch is committed (now, without a store).
    func whenCommitted(_ work: @escaping () -> Void) {
        guard broker.persistence != nil else { work(); return }
        afterCommit.append(work)
        if !commitScheduled {
            commitScheduled = true
            loop.scheduleFlush(self)
        }
    }

    func add(_ c: Connection) { connections[ObjectIdentifier(c)] = c }
    func remove(_ c: Connection) { connections[ObjectIdentifier(c)] = nil }
}
