import Dispatch
import EventLoop
import MQTTCodec
import Storage
import Synchronization

// What the admin listener (Sources/Admin) reads and does. Its HTTP threads never touch
// loop-confined state: each question goes to the loops with `execute`, every loop answers from
// its own thread, and the asking thread waits for the answers, a bounded time.

/// Answers from the loops, filled in by each loop's thread.
private final class Answers<T>: @unchecked Sendable {
    private let slots: Mutex<[T?]>
    let arrived = DispatchSemaphore(value: 0)

    init(count: Int) { slots = Mutex(Array(repeating: nil, count: count)) }

    func put(_ i: Int, _ value: T) {
        slots.withLock { $0[i] = value }
        arrived.signal()
    }

    var values: [T?] { slots.withLock { $0 } }
}

/// Connected clients of one listener and protocol version.
public struct ConnectionGroup: Hashable, Sendable {
    /// "tcp:1883", "ssl:8883".
    public var listener: String
    /// 3 (MQTT 3.1), 4 (3.1.1) or 5.
    public var protocolVersion: Int
}

/// One loop's answer to a metrics scrape.
public struct LoopReport: Sendable {
    public var loop: Int
    public var counters: LoopCounters
    public var connections: [ConnectionGroup: Int]
    /// QoS 1/2 messages in flight to, and queued for, the sessions this loop owns.
    public var inflight: Int
    public var queued: Int
    /// The longest iteration since the last scrape.
    public var longestIterationMilliseconds: UInt64
    /// The sessions this loop owns (summed over the loops: `sessionCounts()` from one walk).
    public var sessions: SessionCounts
}

/// Sessions by kind, counted without the loops (from flags any thread may read).
public struct SessionCounts: Sendable {
    public init() {}
    public var total = 0
    /// Outlive their connection (expiry > 0).
    public var persistent = 0
    /// Have no connection now.
    public var offline = 0
}

/// A client (a session, connected or not) as the admin API shows it; EMQX's fields.
/// A class: the API builds one per session (tens of thousands) and moves them through
/// filters and the page selection, where a struct of this size cost a copy of every field.
public final class ClientInfo: Sendable {
    public let clientId: String
    public let username: String?
    public let connected: Bool
    /// "ip:port" of the connection (nil while disconnected).
    public let peer: String?
    public let listener: String?
    public let protocolVersion: Int
    public let keepalive: Int
    public let cleanStart: Bool
    public let expiryInterval: UInt32
    /// Wall-clock ms; 0 when unknown.
    public let connectedAt: Int64
    public let createdAt: Int64
    public let disconnectedAt: Int64
    public let inflight: Int
    public let inflightMax: Int
    public let queued: Int
    public let queueMax: Int
    public let queueDropped: Int
    public let subscriptions: Int
    public let receivedMessages: Int
    public let sentMessages: Int
    public let receivedBytes: Int
    public let sentBytes: Int
    public let loop: Int

    init(clientId: String, username: String?, connected: Bool, peer: String?, listener: String?,
         protocolVersion: Int, keepalive: Int, cleanStart: Bool, expiryInterval: UInt32, connectedAt: Int64,
         createdAt: Int64, disconnectedAt: Int64, inflight: Int, inflightMax: Int, queued: Int,
         queueMax: Int, queueDropped: Int, subscriptions: Int, receivedMessages: Int, sentMessages: Int,
         receivedBytes: Int, sentBytes: Int, loop: Int) {
        self.clientId = clientId
        self.username = username
        self.connected = connected
        self.peer = peer
        self.listener = listener
        self.protocolVersion = protocolVersion
        self.keepalive = keepalive
        self.cleanStart = cleanStart
        self.expiryInterval = expiryInterval
        self.connectedAt = connectedAt
        self.createdAt = createdAt
        self.disconnectedAt = disconnectedAt
        self.inflight = inflight
        self.inflightMax = inflightMax
        self.queued = queued
        self.queueMax = queueMax
        self.queueDropped = queueDropped
        self.subscriptions = subscriptions
        self.receivedMessages = receivedMessages
        self.sentMessages = sentMessages
        self.receivedBytes = receivedBytes
        self.sentBytes = sentBytes
        self.loop = loop
    }
}

/// One subscription of one session.
public struct SubscriptionInfo: Sendable {
    public var clientId: String
    public var topic: String
    public var qos: Int
    public var noLocal: Bool
    public var retainAsPublished: Bool
    public var retainHandling: Int
    public var identifier: UInt32?
}

/// A retained message.
public struct RetainedInfo: Sendable {
    public var topic: String
    public var qos: Int
    public var payload: [UInt8]
    public var fromClientId: String
    public var fromUsername: String?
    /// Wall-clock seconds it was published.
    public var publishedAt: Int64
}

/// The durable store's figures.
public struct StorageFigures: Sendable {
    public var bytesOnDisk: Int
    public var writes: Int
    public var commits: Int
    public var syncs: Int
    public var lastCommitLatencyMicros: Int
    public var pendingBatches: Int
    public var failedCommits: Int
}

extension Broker {
    /// The number of reactor loops.
    public var loopCount: Int { contexts.count }

    /// The cluster's figures (`$SYS/broker/cluster/…` without the prefix: `node`, `nodes`,
    /// `nodes/list`, `nats/connected`, …); nil when this node is not in a cluster.
    public var clusterFigures: [(name: String, value: String)]? { cluster?.metricsSnapshot() }

    /// Seconds since start.
    public var uptimeSeconds: Int { Int((monotonicMilliseconds() &- startedAt) / 1000) }

    /// Asks every loop `question` on its own thread; nil for a loop that did not answer within
    /// `timeoutMilliseconds` (it answers later into nothing).
    func askLoops<T>(timeoutMilliseconds: Int, _ question: @escaping (LoopContext) -> T) -> [T?] {
        let answers = Answers<T>(count: contexts.count)
        for (i, ctx) in contexts.enumerated() {
            ctx.loop.execute { answers.put(i, question(ctx)) }
        }
        let deadline = DispatchTime.now() + .milliseconds(timeoutMilliseconds)
        for _ in contexts where answers.arrived.wait(timeout: deadline) == .timedOut { break }
        return answers.values
    }

    /// Runs `body` on the loop owning `session` (following a hand-over) and waits for it.
    func askOwner<T>(_ session: Session, timeoutMilliseconds: Int, _ body: @escaping (LoopContext) -> T) -> T? {
        let answer = Answers<T>(count: 1)
        runOnOwner(session) { ctx in answer.put(0, body(ctx)) }
        _ = answer.arrived.wait(timeout: .now() + .milliseconds(timeoutMilliseconds))
        return answer.values[0]
    }

    /// Whether every loop answers within `timeoutMilliseconds` (the health check).
    public func loopsAnswer(timeoutMilliseconds: Int) -> (answered: Int, of: Int) {
        let answers = askLoops(timeoutMilliseconds: timeoutMilliseconds) { _ in true }
        return (answers.compactMap { $0 }.count, answers.count)
    }

    private func sessionSnapshot() -> [Session] {
        sessions.update { Array($0.values) }
    }

    /// The sessions by owner loop, in one pass: each loop then reads only its own (reading all
    /// of them from every loop was the bulk of a scrape at 19,000 sessions: cache misses, and
    /// two threads' reference counting on the same objects). A session that moves meanwhile
    /// is left out by the loop it moved from (`s.owner == me` again there).
    private func sessionsByOwner() -> [[Session]] {
        var byOwner = [[Session]](repeating: [], count: contexts.count)
        sessions.update { all in
            for i in byOwner.indices { byOwner[i].reserveCapacity(all.count / byOwner.count + 16) }
            for s in all.values { byOwner[s.owner].append(s) }
        }
        return byOwner
    }

    /// Each loop's counters, connections, inflight and queued totals and lag. Only the metrics
    /// scrape `takesLag` (which starts a new lag period); other readers get 0 for it.
    ///
    /// Scraped every few seconds with tens of thousands of clients: connections are counted as
    /// they come and go (`LoopContext.countConnected`), and each loop walks only the sessions
    /// it owns, once.
    public func loopReports(timeoutMilliseconds: Int = 1000, takesLag: Bool = false) -> [LoopReport?] {
        let owned = sessionsByOwner()
        return askLoops(timeoutMilliseconds: timeoutMilliseconds) { ctx in
            let me = ctx.loop.index
            var groups: [ConnectionGroup: Int] = [:]
            for (l, counts) in ctx.connected {
                for (v, n) in counts.enumerated() where n > 0 {
                    groups[ConnectionGroup(listener: l.name, protocolVersion: v), default: 0] += n
                }
            }
            var inflight = 0, queued = 0
            var sessions = SessionCounts()
            for s in owned[me] where s.owner == me && !s.isDead {
                inflight += s.inflight.count
                queued += s.queue.count
                sessions.total += 1
                if s.isDurable { sessions.persistent += 1 }
                if !s.isConnected { sessions.offline += 1 }
            }
            return LoopReport(loop: me, counters: ctx.counters, connections: groups,
                              inflight: inflight, queued: queued,
                              longestIterationMilliseconds: takesLag ? ctx.loop.takeLongestIterationForMetrics() : 0,
                              sessions: sessions)
        }
    }

    public func sessionCounts() -> SessionCounts {
        var n = SessionCounts()
        for s in sessionSnapshot() where !s.isDead {
            n.total += 1
            if s.isDurable { n.persistent += 1 }
            if !s.isConnected { n.offline += 1 }
        }
        return n
    }

    public var storageFigures: StorageFigures? {
        guard let p = persistence else { return nil }
        let st = p.store.statistics
        return StorageFigures(bytesOnDisk: st.bytesOnDisk, writes: st.writesTotal, commits: st.commitsTotal,
                              syncs: st.syncsTotal, lastCommitLatencyMicros: st.lastCommitLatencyMicros,
                              pendingBatches: st.pendingBatches, failedCommits: p.failedCommits.load(ordering: .relaxed))
    }

    // MARK: Clients

    /// On the owner loop.
    private func info(_ s: Session, on ctx: LoopContext) -> ClientInfo {
        let c = s.connection
        let limits = ctx.settings.limits
        return ClientInfo(
            clientId: s.clientId, username: c?.username, connected: c != nil, peer: c?.peer,
            listener: c?.listener.name, protocolVersion: Int(s.protocolVersion.rawValue),
            keepalive: Int((c?.keepAliveMilliseconds ?? 0) / 1500), cleanStart: c?.cleanStart ?? true,
            expiryInterval: s.expiryInterval, connectedAt: c?.connectedAt ?? 0, createdAt: s.createdAt,
            disconnectedAt: c == nil ? s.disconnectedAt : 0,
            inflight: s.inflight.count,
            inflightMax: c.map { min(limits.maxInflight, $0.clientReceiveMaximum) } ?? limits.maxInflight,
            queued: s.queue.count, queueMax: limits.maxQueuedMessages, queueDropped: s.droppedMessages,
            subscriptions: s.subscriptions.count,
            receivedMessages: c?.receivedPublishes ?? 0, sentMessages: c?.sentPublishes ?? 0,
            receivedBytes: c?.receivedBytes ?? 0, sentBytes: c?.sentBytes ?? 0, loop: ctx.loop.index)
    }

    /// Every session, connected or not, in no particular order (the API sorts only the page it
    /// answers: with tens of thousands of sessions a full sort costs more than the rest).
    public func clients(timeoutMilliseconds: Int = 1000) -> [ClientInfo] {
        let owned = sessionsByOwner()
        let answers = askLoops(timeoutMilliseconds: timeoutMilliseconds) { ctx -> [ClientInfo] in
            let me = ctx.loop.index
            var out: [ClientInfo] = []
            out.reserveCapacity(owned[me].count)
            for s in owned[me] where s.owner == me && !s.isDead { out.append(self.info(s, on: ctx)) }
            return out
        }
        return answers.flatMap { $0 ?? [] }
    }

    /// The client ids of every live session, in no order, without asking the loops: an
    /// unfiltered page of clients picks its ids from these and asks only for those.
    public func clientIds() -> [String] {
        sessions.update { all in all.compactMap { $0.value.isDead ? nil : $0.key } }
    }

    /// The clients with these ids (those that still have a session), in that order, each
    /// from its loop.
    public func clients(_ ids: [String], timeoutMilliseconds: Int = 1000) -> [ClientInfo] {
        var byOwner = [[Session]](repeating: [], count: contexts.count)
        sessions.update { all in
            for id in ids { if let s = all[id] { byOwner[s.owner].append(s) } }
        }
        let answers = askLoops(timeoutMilliseconds: timeoutMilliseconds) { ctx -> [ClientInfo] in
            byOwner[ctx.loop.index].compactMap { s in s.owner == ctx.loop.index && !s.isDead ? self.info(s, on: ctx) : nil }
        }
        var found: [String: ClientInfo] = [:]
        for case let a? in answers { for c in a { found[c.clientId] = c } }
        return ids.compactMap { found[$0] }
    }

    private func session(_ clientId: String) -> Session? {
        sessions.update { $0[clientId] }
    }

    /// One client; nil when no session has that id.
    public func client(_ clientId: String, timeoutMilliseconds: Int = 1000) -> ClientInfo? {
        guard let s = session(clientId) else { return nil }
        return askOwner(s, timeoutMilliseconds: timeoutMilliseconds) { ctx in
            s.isDead ? nil : self.info(s, on: ctx)
        } ?? nil
    }

    private func subscriptionInfos(_ s: Session) -> [SubscriptionInfo] {
        s.subscriptions.map { filter, r in
            SubscriptionInfo(clientId: s.clientId, topic: filter, qos: Int(r.options.qos.rawValue),
                             noLocal: r.options.noLocal, retainAsPublished: r.options.retainAsPublished,
                             retainHandling: Int(r.options.retainHandling), identifier: r.identifier)
        }.sorted { $0.topic < $1.topic }
    }

    /// A client's subscriptions; nil when no session has that id.
    public func subscriptions(of clientId: String, timeoutMilliseconds: Int = 1000) -> [SubscriptionInfo]? {
        guard let s = session(clientId) else { return nil }
        return askOwner(s, timeoutMilliseconds: timeoutMilliseconds) { _ in
            s.isDead ? nil : self.subscriptionInfos(s)
        } ?? nil
    }

    /// Every subscription of every session, by client id then filter.
    public func allSubscriptions(timeoutMilliseconds: Int = 1000) -> [SubscriptionInfo] {
        let owned = sessionsByOwner()
        let answers = askLoops(timeoutMilliseconds: timeoutMilliseconds) { ctx -> [SubscriptionInfo] in
            let me = ctx.loop.index
            var out: [SubscriptionInfo] = []
            for s in owned[me] where s.owner == me && !s.isDead && !s.subscriptions.isEmpty { out += self.subscriptionInfos(s) }
            return out
        }
        return answers.flatMap { $0 ?? [] }.sorted { ($0.clientId, $0.topic) < ($1.clientId, $1.topic) }
    }

    /// Kicks a client (EMQX's kickout): a connected v5 client gets DISCONNECT 0x98
    /// (Administrative action), and its session is discarded either way. False when no session
    /// has that id.
    public func kick(clientId: String) -> Bool {
        // An ended session stays in the registry until its deletes are committed; it is gone
        // for the API already (isDead is written on its loop: a stale read only means a kick
        // that finds nothing to do there).
        guard let s = session(clientId), !s.isDead else { return false }
        runOnOwner(s) { ctx in self.kick(s, on: ctx, why: "kicked through the admin API") }
        return true
    }

    /// On the owner loop.
    private func kick(_ s: Session, on ctx: LoopContext, why: String) {
        guard !s.isDead else { return }
        if let c = s.connection {
            // The session ends with the connection (sessionDisconnected sees expiry 0).
            s.expiryInterval = 0
            logger.notice("client \(s.clientId) (\(c.peer)): \(why)")
            c.disconnect(.administrativeAction, why)
        } else {
            endSession(s, on: ctx)
        }
    }

    // MARK: Bans

    /// Adds a run-time ban and kicks the connected clients it matches. False when the same ban
    /// exists.
    public func addBan(_ ban: Ban) -> Bool {
        guard runtimeBans.add(ban, now: wallClockSeconds()) else { return false }
        logger.notice("banned \(ban.kind.rawValue) '\(ban.who)' through the admin API\(ban.reason.isEmpty ? "" : ": " + ban.reason)")
        let why = "banned through the admin API"
        switch ban.kind {
        case .clientid:
            if let s = session(ban.who) { runOnOwner(s) { ctx in self.kick(s, on: ctx, why: why) } }
        case .username, .peerhost:
            for ctx in contexts {
                ctx.loop.execute {
                    for c in ctx.connections.values where c.state == .connected {
                        let hit = ban.kind == .username ? c.username == ban.who : peerHost(c.peer) == ban.who
                        if hit, let s = c.session { self.kick(s, on: ctx, why: why) }
                    }
                }
            }
        }
        return true
    }

    public func removeBan(kind: Ban.Kind, who: String) -> Bool {
        runtimeBans.remove(kind: kind, who: who)
    }

    public func removeAllBans() { runtimeBans.removeAll() }

    /// The active run-time bans.
    public var bans: [Ban] { runtimeBans.list(now: wallClockSeconds()) }

    // MARK: Publishing and the retained store

    /// Publishes like a client would (rules run; no publisher, so no No Local and no message
    /// events). Returns the sessions it went to, nil when loop 0 did not answer in time.
    public func publishFromAdmin(topic: String, payload: [UInt8], qos: QoS, retain: Bool, properties: Properties,
                                 timeoutMilliseconds: Int = 1000) -> Int? {
        let ctx = contexts[0]
        let answer = Answers<Int>(count: 1)
        ctx.loop.execute {
            let now = ctx.loop.now
            let m = Message(topic: topic, payload: payload, qos: qos, retain: retain,
                            properties: Message.passthrough(properties),
                            expiresAt: properties.messageExpiryInterval.map { now + UInt64($0) * 1000 },
                            publisher: nil, publisherClientId: "", receivedAt: ctx.wallClock)
            answer.put(0, self.publish(m, from: ctx))
        }
        _ = answer.arrived.wait(timeout: .now() + .milliseconds(timeoutMilliseconds))
        return answer.values[0]
    }

    private func retainedInfo(_ m: Message) -> RetainedInfo {
        RetainedInfo(topic: m.topic, qos: Int(m.qos.rawValue), payload: m.payload, fromClientId: m.publisherClientId,
                     fromUsername: m.publisherUsername, publishedAt: m.receivedAt)
    }

    /// Retained messages by topic (the store is shared, not loop-confined).
    public func retainedMessages() -> [RetainedInfo] {
        retained.all(now: monotonicMilliseconds()).map(retainedInfo)
    }

    public func retainedMessage(topic: String) -> RetainedInfo? {
        guard let m = retained.message(topic: topic), !m.isExpired(now: monotonicMilliseconds()) else { return nil }
        return retainedInfo(m)
    }

    /// Clears the retained message on `topic` (from the store too), without publishing anything.
    /// False when there is none.
    public func deleteRetained(topic: String, timeoutMilliseconds: Int = 1000) -> Bool {
        guard retained.message(topic: topic) != nil else { return false }
        let ctx = contexts[0]
        let answer = Answers<Bool>(count: 1)
        ctx.loop.execute {
            let empty = Message(topic: topic, payload: [], qos: .atMostOnce, retain: true, properties: Properties(),
                                expiresAt: nil, publisher: nil, publisherClientId: "", receivedAt: ctx.wallClock)
            self.stats.retained.store(self.retained.store(empty), ordering: .relaxed)
            self.persistRetained(empty, on: ctx)
            answer.put(0, true)
        }
        _ = answer.arrived.wait(timeout: .now() + .milliseconds(timeoutMilliseconds))
        return true
    }
}
