import Broker
import CNats
import EventLoop
import Glibc
import Logging
import MQTTCodec
import Synchronization

/// `[cluster]` in turnpike.toml.
public struct ClusterSettings: Sendable {
    /// Unique in the cluster.
    public var nodeName: String
    /// Every NATS URL of the cluster; the client fails over between them.
    public var servers: [String]
    /// First token of every subject this cluster uses (several clusters can share one NATS).
    public var subjectPrefix = "tp"
    public var user: String?
    public var password: String?
    public var token: String?
    public var credentialsFile: String?
    public var caFile: String?
    public var certFile: String?
    public var keyFile: String?
    /// Replicas of the cluster's JetStream state.
    public var kvReplicas = 3
    /// Connect to the `servers` in a random order (NATS's default, spreading nodes over the
    /// servers); false: in the order given, so nodes listing the same first server share it.
    public var randomizeServers = true
    /// Seconds without a heartbeat after which a node counts as gone.
    public var nodeTimeout = 3

    public init(nodeName: String, servers: [String]) { self.nodeName = nodeName; self.servers = servers }
}

/// This node's part of the cluster, on NATS. Messages published here go to NATS once, on a
/// subject made from their topic (Subjects.swift); NATS forwards them only to servers whose
/// clients subscribed to a matching subject, so a node never needs a list of remote
/// subscriptions. Each node subscribes to the union of its local filters (one NATS subscription
/// per distinct subject, counted) and hands what arrives to the loops as one more publisher.
///
/// Two NATS connections: `main` publishes, carries the plain subscriptions and has no echo (a
/// node never gets its own messages back); `groups` carries one queue subscription per share
/// group, so NATS gives each message of a group to exactly one node — possibly this one, which
/// is why it must see its own messages. In a cluster the topic tree never picks share-group
/// members itself.
///
/// A message matching several of this node's subscriptions arrives once per subscription; all
/// arrive on libnats's single delivery thread in the order the server sent them, so keeping the
/// highest sequence number seen per origin stream drops exactly the repeats.
public final class ClusterNode: ClusterLink, NatsClientDelegate, @unchecked Sendable {
    private let settings: ClusterSettings
    private unowned let broker: Broker
    private let logger: Logger
    /// This process's incarnation: a restarted node's streams start again at 1.
    private let epoch: String
    private var main: NatsClient!
    private var groups: NatsClient!
    private var registry: SessionRegistry!
    /// Client ids whose session came from another node, which still collects its rest.
    private let handedFrom = Mutex<[String: String]>([:])
    /// Rest requests to send (cluster thread) and those waiting for their answer, by token.
    private let restRequests = Mutex<[(subject: String, reply: String, payload: [UInt8])]>([])
    private let rests = Mutex<[UInt64: (deadline: UInt64, done: @Sendable ([UInt8]?) -> Void)]>([:])
    private let restTokens = Atomic<UInt64>(0)
    private var restPrefix: String { settings.subjectPrefix + ".rest." + settings.nodeName + "." }
    /// Answers to takeover requests, published by the cluster thread.
    private let replies = Mutex<[(subject: String, payload: [UInt8])]>([])

    // Loops → cluster thread.
    private final class Inbox: Sendable { let messages = Mutex<[Message]>([]) }
    private let inboxes: [Inbox]
    private let interest = Mutex<[InterestChange]>([])
    /// SUBSCRIBEs waiting for their interest to reach NATS (afterInterestRegistered).
    private let barriers = Mutex<[@Sendable () -> Void]>([])
    private let wake = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
    private let pending = Atomic<Bool>(false)
    private let running = Atomic<Bool>(true)
    private var thread: pthread_t?

    // Cluster thread only.
    /// `node/epoch/stream` per loop (and `…/r` for the retained copies): made once, sent per message.
    private var origins: [String] = []
    private var retainedOrigin = ""
    private var plainSubs: [String: (token: UInt64, refs: Int)] = [:]
    private var queueSubs: [String: (token: UInt64, refs: Int)] = [:]
    private var lastHeartbeat: UInt64 = 0
    /// The retained-message stream is set up (JetStream answered), or when it was last tried.
    private var retainedReady = false
    private var lastRetainedAttempt: UInt64 = 0
    private var lastRegistryAttempt: UInt64 = 0
    /// Flushed SUBSCRIBEs waiting for the retained stream to reach `seq` here (or the deadline).
    private var waiting: [(seq: UInt64, deadline: UInt64, done: @Sendable () -> Void)] = []

    // Written on the delivery thread, read on the cluster thread: the last retained stream
    // sequence handed to the broker.
    private let retainedApplied = Atomic<UInt64>(0)
    private let waitingEmpty = Atomic<Bool>(true)

    // Read on the delivery thread, written on the cluster thread.
    private enum Route { case plain, group(filter: String, name: String), heartbeat, retained, takeover, rest }
    private let routes = Mutex<[UInt64: Route]>([:])
    private let seen = Mutex<[String: UInt64]>([:])   // node → last heartbeat (monotonic ms)

    // Delivery thread only.
    private var lastSeq: [String: UInt64] = [:]

    // Figures.
    private let forwardedOut = Atomic<Int>(0)
    private let forwardedIn = Atomic<Int>(0)
    private let duplicates = Atomic<Int>(0)
    private let refused = Atomic<Int>(0)
    private let publishFailures = Atomic<Int>(0)
    private let connected = Atomic<Bool>(false)

    public init(settings: ClusterSettings, broker: Broker, loops: Int, logger: Logger) throws {
        self.settings = settings
        self.broker = broker
        self.logger = logger
        var r = SystemRandomNumberGenerator()
        epoch = String(r.next() & 0xFFFF_FFFF_FFFF, radix: 36)
        inboxes = (0..<max(1, loops)).map { _ in Inbox() }
        takenCount = Array(repeating: 0, count: max(1, loops))
        confirmed = takenCount
        origins = (0..<max(1, loops)).map { "\(settings.nodeName)/\(epoch)/\($0)" }
        retainedOrigin = "\(settings.nodeName)/\(epoch)/r"
        sem_init(wake, 0, 0)
        func client(_ role: String, noEcho: Bool) throws -> NatsClient {
            try NatsClient(.init(servers: settings.servers, name: "turnpike \(settings.nodeName) \(role)", noEcho: noEcho, randomize: settings.randomizeServers,
                                 user: settings.user, password: settings.password, token: settings.token,
                                 credentialsFile: settings.credentialsFile, caFile: settings.caFile,
                                 certFile: settings.certFile, keyFile: settings.keyFile), delegate: self)
        }
        main = try client("main", noEcho: true)
        groups = try client("groups", noEcho: false)
        registry = SessionRegistry(client: main, nodeName: settings.nodeName, prefix: settings.subjectPrefix,
                                   replicas: settings.kvReplicas, logger: logger)
        connected.store(main.isConnected, ordering: .relaxed)
    }

    /// Subscribes for the interest the node has already (recovered sessions) and starts the
    /// cluster thread.
    public func start(initialInterest: [InterestChange]) throws {
        interest.withLock { $0 = initialInterest + $0 }
        let heartbeats = main.reserveToken()
        routes.withLock { $0[heartbeats] = .heartbeat }
        try main.subscribe(settings.subjectPrefix + ".hb.*", queue: nil, token: heartbeats)
        let takeovers = main.reserveToken()
        routes.withLock { $0[takeovers] = .takeover }
        try main.subscribe(settings.subjectPrefix + ".takeover." + settings.nodeName, queue: nil, token: takeovers)
        let restAnswers = main.reserveToken()
        routes.withLock { $0[restAnswers] = .rest }
        try main.subscribe(restPrefix + "*", queue: nil, token: restAnswers)
        thread = Threads.start { self.run() }
        signal()
        logger.info("cluster: node \(settings.nodeName) on NATS \(settings.servers.joined(separator: ", "))\(main.isConnected ? " (connected to \(main.connectedURL))" : " (not reachable yet: serving alone, retrying)")")
    }

    // MARK: ClusterLink (loops)

    public func forward(_ message: Message, fromLoop loop: Int) {
        inboxes[loop % inboxes.count].messages.withLock { $0.append(message) }
        signal()
    }

    public func interestChanged(_ change: InterestChange) {
        interest.withLock { $0.append(change) }
        signal()
    }

    public func afterInterestRegistered(_ done: @escaping @Sendable () -> Void) {
        barriers.withLock { $0.append(done) }
        signal()
    }

    public func claim(clientId: String, cleanStart: Bool, done: @escaping @Sendable ([UInt8]?) -> Void) {
        registry.claim(.init(clientId: clientId, cleanStart: cleanStart, started: monotonicMicros()) { [weak self] state, from in
            if let from, let self { self.handedFrom.withLock { $0[clientId] = from } }
            done(state)
        })
    }

    /// Asynchronous: the old node answers after a grace of its own (Broker.finishDeparture), so a
    /// blocking request would hold a registry worker that long. The answer comes to
    /// `<prefix>.rest.<node>.<token>`; the cluster thread sends the request and times it out.
    public func collectRest(clientId: String, done: @escaping @Sendable ([UInt8]?) -> Void) {
        guard let from = handedFrom.withLock({ $0.removeValue(forKey: clientId) }) else { done(nil); return }
        let token = restTokens.wrappingAdd(1, ordering: .relaxed).newValue
        rests.withLock { $0[token] = (monotonicMilliseconds() + 3000, done) }
        restRequests.withLock {
            $0.append((settings.subjectPrefix + ".takeover." + from, restPrefix + String(token), [2] + Array(clientId.utf8)))
        }
        signal()
    }

    public func metricsSnapshot() -> [(name: String, value: String)] {
        let now = monotonicMilliseconds()
        let limit = UInt64(settings.nodeTimeout) * 1000
        let others = seen.withLock { $0.filter { now &- $0.value < limit }.keys.sorted() }
        return [("node", settings.nodeName), ("nodes", String(others.count + 1)),
                ("nodes/list", ([settings.nodeName] + others).sorted().joined(separator: ",")),
                ("nats/connected", connected.load(ordering: .relaxed) ? "1" : "0"),
                ("nats/url", main.connectedURL),
                ("messages/forwarded/out", String(forwardedOut.load(ordering: .relaxed))),
                ("messages/forwarded/in", String(forwardedIn.load(ordering: .relaxed))),
                ("messages/duplicates", String(duplicates.load(ordering: .relaxed))),
                ("messages/refused", String(refused.load(ordering: .relaxed))),
                ("messages/publish_failed", String(publishFailures.load(ordering: .relaxed))),
                ("registry/ready", registry.isReady ? "1" : "0"),
                ("registry/claims", String(registry.claims.load(ordering: .relaxed))),
                ("registry/takeovers", String(registry.takeovers.load(ordering: .relaxed))),
                ("registry/failures", String(registry.failures.load(ordering: .relaxed))),
                ("registry/last_latency_us", String(registry.lastLatencyMicros.load(ordering: .relaxed))),
                ("registry/max_latency_us", String(registry.maxLatencyMicros.load(ordering: .relaxed)))]
    }

    public func stop() {
        guard running.exchange(false, ordering: .acquiringAndReleasing) else { return }
        sem_post(wake)
        if let t = thread { pthread_join(t, nil) }
        registry.stop()
        _ = main.flush(timeoutMs: 1000)
        main.close()
        groups.close()
    }

    private func signal() {
        if !pending.exchange(true, ordering: .acquiringAndReleasing) { sem_post(wake) }
    }

    // MARK: The cluster thread

    private func run() {
        while running.load(ordering: .acquiring) {
            var deadline = timespec()
            clock_gettime(CLOCK_REALTIME, &deadline)
            deadline.tv_nsec += waiting.isEmpty ? 200_000_000 : 2_000_000
            if deadline.tv_nsec >= 1_000_000_000 { deadline.tv_sec += 1; deadline.tv_nsec -= 1_000_000_000 }
            _ = sem_timedwait(wake, &deadline)
            pending.store(false, ordering: .releasing)
            // Barriers first: every interest change queued before one of them is applied below.
            let ready = barriers.withLock { b -> [@Sendable () -> Void] in
                let out = b
                b.removeAll()
                return out
            }
            applyInterest()
            if !ready.isEmpty { settle(ready) }
            releaseWaiting()
            publishInboxes()
            for r in replies.withLock({ q -> [(subject: String, payload: [UInt8])] in let out = q; q.removeAll(); return out }) {
                _ = main.publish(r.subject, r.payload)
            }
            for r in restRequests.withLock({ q -> [(subject: String, reply: String, payload: [UInt8])] in let out = q; q.removeAll(); return out }) {
                _ = main.publish(r.subject, reply: r.reply, r.payload)
            }
            expireRests()
            let now = monotonicMilliseconds()
            if now &- lastHeartbeat >= 1000 {
                lastHeartbeat = now
                heartbeat(now: now)
            }
            if !retainedReady, main.isConnected, now &- lastRetainedAttempt >= 2000 {
                lastRetainedAttempt = now
                setUpRetained()
            }
            if !registry.isReady, main.isConnected, now &- lastRegistryAttempt >= 2000 {
                lastRegistryAttempt = now
                do {
                    try registry.setUp()
                    logger.info("cluster: session registry in \(SessionRegistry.bucketCount) JetStream key-value buckets (\(settings.kvReplicas) replicas)")
                } catch {
                    logger.error("cluster: session registry not available yet (retrying; CONNECTs are handled by this node alone meanwhile): \(error)")
                }
            }
        }
        publishInboxes()
        for (_, r) in rests.withLock({ w -> [UInt64: (deadline: UInt64, done: @Sendable ([UInt8]?) -> Void)] in let out = w; w.removeAll(); return out }) {
            r.done(nil)
        }
    }

    /// Rests the old node did not send in time (it died): the arrivals go on without them.
    private func expireRests() {
        let now = monotonicMilliseconds()
        let late = rests.withLock { w -> [@Sendable ([UInt8]?) -> Void] in
            guard !w.isEmpty else { return [] }
            let gone = w.filter { $0.value.deadline <= now }
            for k in gone.keys { w[k] = nil }
            return gone.map(\.value.done)
        }
        if !late.isEmpty { logger.notice("cluster: \(late.count) session rest(s) not answered within 3 s") }
        for done in late { done(nil) }
    }

    private func applyInterest() {
        let changes = interest.withLock { c -> [InterestChange] in
            let out = c
            c.removeAll()
            return out
        }
        for change in changes {
            switch change {
            case .added(let filter, let group):
                for subject in Subjects.subjects(forFilter: filter, prefix: settings.subjectPrefix) {
                    if let group { addQueue(subject, filter: filter, group: group) } else { addPlain(subject) }
                }
            case .removed(let filter, let group):
                for subject in Subjects.subjects(forFilter: filter, prefix: settings.subjectPrefix) {
                    if let group { removeQueue(subject, filter: filter, group: group) } else { removePlain(subject) }
                }
            }
        }
    }

    /// The NATS server has processed every SUB sent so far once it answers a flush; the SUBACKs
    /// then wait for the retained messages stored in the stream up to now to be applied here.
    /// A node not connected to NATS answers at once (it serves alone meanwhile).
    private func settle(_ ready: [@Sendable () -> Void]) {
        var target: UInt64 = 0
        if main.isConnected {
            _ = main.flush(timeoutMs: 1000)
            _ = groups.flush(timeoutMs: 1000)
            if retainedReady { target = main.streamLastSequence(retainedStream) ?? 0 }
        }
        let deadline = monotonicMilliseconds() + 1000
        for done in ready { waiting.append((target, deadline, done)) }
        waitingEmpty.store(false, ordering: .relaxed)
    }

    private func releaseWaiting() {
        guard !waiting.isEmpty else { return }
        let applied = retainedApplied.load(ordering: .acquiring)
        let now = monotonicMilliseconds()
        waiting.removeAll { w in
            guard w.seq <= applied || now >= w.deadline else { return false }
            broker.afterClusterRetained(w.done)   // behind the retained messages already handed over
            return true
        }
        if waiting.isEmpty { waitingEmpty.store(true, ordering: .relaxed) }
    }

    private func addPlain(_ subject: String) {
        if let s = plainSubs[subject] { plainSubs[subject] = (s.token, s.refs + 1); return }
        let token = main.reserveToken()
        routes.withLock { $0[token] = .plain }
        do {
            try main.subscribe(subject, queue: nil, token: token)
            plainSubs[subject] = (token, 1)
        } catch {
            routes.withLock { $0[token] = nil }
            logger.error("cluster: \(error)")
        }
    }

    private func removePlain(_ subject: String) {
        guard let s = plainSubs[subject] else { return }
        if s.refs > 1 { plainSubs[subject] = (s.token, s.refs - 1); return }
        plainSubs[subject] = nil
        main.unsubscribe(s.token)
        routes.withLock { $0[s.token] = nil }
    }

    /// One NATS queue group per share group: `$share/g/a/+` on every node is the group
    /// `g.<hash of g and a/+>`, so each of its messages goes to one node of the cluster.
    private static func queueName(filter: String, group: String) -> String {
        "g" + String(ClusterHash.of(group.utf8 + [0] + filter.utf8), radix: 16)
    }

    private func addQueue(_ subject: String, filter: String, group: String) {
        let key = subject + " " + Self.queueName(filter: filter, group: group)
        if let s = queueSubs[key] { queueSubs[key] = (s.token, s.refs + 1); return }
        let token = groups.reserveToken()
        routes.withLock { $0[token] = .group(filter: filter, name: group) }
        do {
            try groups.subscribe(subject, queue: Self.queueName(filter: filter, group: group), token: token)
            queueSubs[key] = (token, 1)
        } catch {
            routes.withLock { $0[token] = nil }
            logger.error("cluster: \(error)")
        }
    }

    private func removeQueue(_ subject: String, filter: String, group: String) {
        let key = subject + " " + Self.queueName(filter: filter, group: group)
        guard let s = queueSubs[key] else { return }
        if s.refs > 1 { queueSubs[key] = (s.token, s.refs - 1); return }
        queueSubs[key] = nil
        groups.unsubscribe(s.token)
        routes.withLock { $0[s.token] = nil }
    }

    private var taken: [Message] = []
    /// Messages taken from each loop's inbox so far, and how many of them the loop was told
    /// are sent (it holds the PUBACKs of its QoS 1/2 publishers until then).
    private var takenCount: [UInt64]
    private var confirmed: [UInt64]

    private func publishInboxes() {
        let now = monotonicMilliseconds()
        var acknowledged = false   // a QoS 1/2 message, whose publisher waits for its PUBACK
        var streamed = false       // a retained copy went to the JetStream stream
        for (i, inbox) in inboxes.enumerated() {
            inbox.messages.withLock { swap(&$0, &taken) }
            let before = takenCount[i]
            takenCount[i] &+= UInt64(taken.count)
            for (k, m) in taken.enumerated() {
                if m.qos != .atMostOnce { acknowledged = true }
                // Its place in this loop's forward stream numbers it (gaps where a message is
                // not sent are fine: receivers only need the numbers to grow).
                let seq = before &+ UInt64(k) &+ 1
                guard let subject = Subjects.subject(forTopic: m.topic, prefix: settings.subjectPrefix) else { continue }
                guard let msg = Envelope.make(m, subject: subject, origin: origins[i], seq: seq, now: now) else {
                    ClusterCounters.add(publishFailures)
                    continue
                }
                if m.retain, let copy = Envelope.make(m, subject: settings.subjectPrefix + ".r" + subject.dropFirst(settings.subjectPrefix.utf8.count),
                                                      origin: retainedOrigin, seq: seq, now: now) {
                    // Before the stream is set up (JetStream not answering yet) as a plain message.
                    let rc = retainedReady ? main.publishToStream(copy) : main.publish(copy)
                    if rc == NATS_OK { streamed = streamed || retainedReady } else {
                        logger.warning("cluster: retained message on \(m.topic) not stored for the other nodes: \(NatsError("publish", rc))")
                    }
                }
                let rc = main.publish(msg)
                if rc == NATS_OK { ClusterCounters.add(forwardedOut) } else {
                    ClusterCounters.add(publishFailures)
                    logger.warning("cluster: a message on \(m.topic) was not sent to the other nodes: \(NatsError("publish", rc))")
                }
            }
            taken.removeAll(keepingCapacity: true)
        }
        guard acknowledged else { return }
        // The NATS server answers a flush after it has handled everything sent before it: the
        // messages are on their way to every node with interest; a retained one is in the
        // replicated stream once JetStream acknowledged it. Not connected: they wait in
        // libnats's reconnect buffer, and the PUBACKs leave now (this node serves alone).
        if main.isConnected {
            if !main.flush(timeoutMs: 1000) {
                logger.warning("cluster: NATS did not confirm forwarded messages within 1 s; acknowledging them anyway")
            }
            if streamed {
                let lost = main.waitForStream(timeoutMs: 2000)
                if lost > 0 { logger.warning("cluster: JetStream did not confirm \(lost) retained message(s) within 2 s; the other nodes may not have them") }
            }
        }
        for i in takenCount.indices where takenCount[i] != confirmed[i] {
            confirmed[i] = takenCount[i]
            broker.clusterForwarded(loop: i, count: takenCount[i])
        }
    }

    // MARK: Retained messages

    /// Every retained message (and every clear) also goes to `<prefix>.r.…`, captured by a
    /// JetStream stream that keeps the last one per subject, replicated `kv_replicas` times.
    /// Each node reads the stream with an ordered consumer, last per subject first: at start it
    /// gets every retained message of the cluster, then each change in the stream's order, its
    /// own included, so every node's retained store converges on the same state.
    private var retainedStream: String { settings.subjectPrefix.uppercased().map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined() + "_RETAINED" }

    private func setUpRetained() {
        do {
            try main.ensureStream(name: retainedStream, subject: settings.subjectPrefix + ".r.>", replicas: settings.kvReplicas, perSubject: 1)
            let token = main.reserveToken()
            routes.withLock { $0[token] = .retained }
            do { try main.subscribeLastPerSubject(settings.subjectPrefix + ".r.>", token: token) } catch {
                routes.withLock { $0[token] = nil }
                throw error
            }
            retainedReady = true
            logger.info("cluster: retained messages shared through JetStream stream \(retainedStream) (\(settings.kvReplicas) replicas)")
        } catch {
            logger.error("cluster: retained messages not shared yet (retrying): \(error)")
        }
    }

    private func heartbeat(now: UInt64) {
        let subject = settings.subjectPrefix + ".hb." + settings.nodeName   // node names are single tokens
        var msg: OpaquePointer?
        guard natsMsg_Create(&msg, subject, nil, settings.nodeName, Int32(settings.nodeName.utf8.count)) == NATS_OK, let msg else { return }
        _ = main.publish(msg)
        // Nodes that went quiet.
        let limit = UInt64(settings.nodeTimeout) * 1000
        let gone = seen.withLock { s -> [String] in
            let g = s.filter { now &- $0.value >= limit }.map(\.key)
            for k in g { s[k] = nil }
            return g
        }
        for g in gone { logger.warning("cluster: node \(g) is gone (no heartbeat for \(settings.nodeTimeout) s)") }
    }

    // MARK: NatsClientDelegate (libnats threads)

    func natsMessage(_ msg: OpaquePointer, subscription: UInt64) {
        guard let route = routes.withLock({ $0[subscription] }) else { return }
        if case .takeover = route {
            // Another node's CONNECT for a client id whose session is here: 1 byte (0: take it,
            // 1: take it with clean start, 2: send the rest) + the client id; the answer is
            // 0x00 (none) or 0x01 + the session's state (or its rest).
            guard let replyTo = natsMsg_GetReply(msg).map({ String(cString: $0) }) else { return }
            let n = Int(natsMsg_GetDataLength(msg))
            let body = Array(UnsafeRawBufferPointer(start: natsMsg_GetData(msg), count: n))
            guard let flag = body.first, flag <= 2, let clientId = String(validating: body.dropFirst(), as: UTF8.self) else { return }
            let answer: @Sendable ([UInt8]?) -> Void = { [weak self] state in
                guard let self else { return }
                let payload: [UInt8] = state.map { [1] + $0 } ?? [0]
                self.replies.withLock { $0.append((replyTo, payload)) }
                self.signal()
            }
            if flag == 2 {
                broker.finishDeparture(clientId: clientId, reply: answer)
            } else {
                broker.exportSession(clientId: clientId, discard: flag == 1, reply: answer)
            }
            return
        }
        if case .rest = route {
            let subject = String(cString: natsMsg_GetSubject(msg))
            guard let token = subject.split(separator: ".").last.flatMap({ UInt64($0) }),
                  let r = rests.withLock({ $0.removeValue(forKey: token) }) else { return }
            let n = Int(natsMsg_GetDataLength(msg))
            let body = Array(UnsafeRawBufferPointer(start: natsMsg_GetData(msg), count: n))
            r.done(body.first == 1 ? Array(body.dropFirst()) : nil)
            return
        }
        if case .heartbeat = route {
            let n = Int(natsMsg_GetDataLength(msg))
            let name = String(decoding: UnsafeRawBufferPointer(start: natsMsg_GetData(msg), count: n), as: UTF8.self)
            let now = monotonicMilliseconds()
            let isNew = seen.withLock { s -> Bool in
                let isNew = s[name] == nil
                s[name] = now
                return isNew
            }
            if isNew { logger.info("cluster: node \(name) is here") }
            return
        }
        var retainedSeq: UInt64 = 0
        if case .retained = route { retainedSeq = NatsClient.streamSequence(msg) }
        defer {
            // Counted as handed over even when refused below, so no SUBACK waits for it.
            if retainedSeq > retainedApplied.load(ordering: .relaxed) {
                retainedApplied.store(retainedSeq, ordering: .releasing)
                if !waitingEmpty.load(ordering: .relaxed) { signal() }
            }
        }
        let subject = String(cString: natsMsg_GetSubject(msg))
        let prefix: String
        if case .retained = route { prefix = settings.subjectPrefix + ".r" } else { prefix = settings.subjectPrefix }
        guard let topic = Subjects.topic(fromSubject: subject, prefix: prefix),
              let d = Envelope.decode(msg, topic: topic, now: monotonicMilliseconds(), wallSeconds: wallClockSeconds()) else {
            ClusterCounters.add(refused)
            return
        }
        switch route {
        case .plain:
            // A message matching several of this node's subscriptions comes once per subscription.
            if let last = lastSeq[d.origin], d.seq <= last {
                ClusterCounters.add(duplicates)
                return
            }
            lastSeq[d.origin] = d.seq
            ClusterCounters.add(forwardedIn)
            broker.receiveFromCluster(d.message, group: nil)
        case .group(let filter, let name):
            ClusterCounters.add(forwardedIn)
            broker.receiveFromCluster(d.message, group: (filter, name))
        case .retained:
            broker.applyClusterRetained(d.message)
        case .heartbeat, .takeover, .rest:
            break
        }
    }

    func natsConnectionChanged(connected up: Bool) {
        connected.store(main?.isConnected ?? up, ordering: .relaxed)
        if up { logger.notice("cluster: connected to NATS \(main?.connectedURL ?? "")") } else { logger.warning("cluster: NATS connection lost; reconnecting (messages to other nodes are buffered meanwhile)") }
    }

    func natsError(_ text: String) {
        logger.error("cluster: NATS: \(text)")
    }
}

enum ClusterCounters {
    @inline(__always)
    static func add(_ a: borrowing Atomic<Int>) { a.wrappingAdd(1, ordering: .relaxed) }
}
