#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import EventLoop
import MQTTCodec

/// Benchmarks only (`bench/sessionbench`); nothing in the broker calls it, and it is on no
/// packet's path. It drives the broker's own code — the session registry, `Session`, the topic
/// tree, `Broker.publish` (match, then enqueue) and the store writes — on loop 0 of a started
/// broker, without sockets: it leaves what a client that connected with clean start 0 (MQTT 5,
/// a session expiry), subscribed and disconnected leaves, and it times routing messages to such
/// sessions. Each call runs as one task on loop 0 and waits for it, so timers, store commits
/// and everything else the loop does happen between calls, on the loop, as in the broker.
public final class SessionBenchmark: @unchecked Sendable {
    private let broker: Broker

    /// `broker` must be started with `threads = 1` (every session on loop 0, where the calls run).
    public init(broker: Broker) {
        precondition(broker.contexts.count == 1, "SessionBenchmark drives loop 0 only: start the broker with threads = 1")
        self.broker = broker
    }

    private final class Box<T>: @unchecked Sendable { var value: T?; init() {} }

    private func onLoop<T>(_ body: @escaping (LoopContext) -> T) -> T {
        let ctx = broker.contexts[0]
        let done = DispatchSemaphore(value: 0)
        let box = Box<T>()
        ctx.loop.execute {
            box.value = body(ctx)
            done.signal()
        }
        done.wait()
        return box.value!
    }

    private func lookUp(_ ids: [String]) -> [Session] {
        broker.sessions.update { table in ids.map { table[$0]! } }
    }

    /// Monotonic nanoseconds.
    public static func nanoseconds() -> UInt64 { clock(CLOCK_MONOTONIC) }

    /// CPU nanoseconds of the calling thread (what a timed stretch cost the loop, without the
    /// time another process had the core).
    static func threadCPUNanoseconds() -> UInt64 { clock(CLOCK_THREAD_CPUTIME_ID) }

    private static func clock(_ id: clockid_t) -> UInt64 {
        var t = timespec()
        clock_gettime(id, &t)
        return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
    }

    /// What one timed stretch on the loop took: wall-clock and the loop thread's CPU time.
    public struct Timing: Sendable {
        public var nanoseconds: UInt64
        public var cpuNanoseconds: UInt64
        /// Deliveries (route) or matches (match) it produced.
        public var count: Int
    }

    /// CONNECT with clean start 0 and Session Expiry Interval `expiry` (MQTT 5) for ids not in
    /// the registry: the session is created, connected, durable and (with a store) stored, as
    /// `Broker.attach` and the CONNECT handler leave it.
    public func connect(_ clientIds: [String], expiry: UInt32) {
        onLoop { ctx in
            let b = self.broker
            for id in clientIds {
                let s = Session(clientId: id, owner: ctx.loop.index)
                let created = b.sessions.update { table -> Bool in
                    if table[id] != nil { return false }
                    table[id] = s
                    return true
                }
                precondition(created, "session \(id) exists")
                b.stats.sessions.wrappingAdd(1, ordering: .relaxed)
                s.protocolVersion = .v5
                s.expiryInterval = expiry
                s.setConnected(true)
                s.setDurable(expiry > 0)
                if expiry > 0 { b.persistSession(s, on: ctx) }
            }
        }
    }

    /// SUBSCRIBE: `filters[i]` for `clientIds[i]` at `qos` (0–2), through `Broker.subscribe`
    /// (the topic tree and the session's own table), then the session record rewritten as the
    /// SUBSCRIBE handler does. Returns the nanoseconds spent in `Broker.subscribe` alone.
    public func subscribe(_ clientIds: [String], filters: [String], qos: UInt8) -> UInt64 {
        precondition(clientIds.count == filters.count)
        let options = SubscriptionOptions(qos: QoS(rawValue: qos)!)
        return onLoop { ctx in
            let b = self.broker
            let sessions = self.lookUp(clientIds)
            let t0 = SessionBenchmark.nanoseconds()
            for i in sessions.indices {
                _ = b.subscribe(sessions[i], filter: filters[i], options: options, identifier: nil)
            }
            let took = SessionBenchmark.nanoseconds() - t0
            for s in sessions where s.isDurable { b.persistSession(s, on: ctx) }
            return took
        }
    }

    /// The connections close (no will): sessions with an expiry stay, offline, stored, their
    /// expiry timer armed (`Broker.sessionWentOffline`, as after a real close).
    public func disconnect(_ clientIds: [String]) {
        onLoop { ctx in
            for s in self.lookUp(clientIds) {
                s.connection = nil
                s.setConnected(false)
                s.disconnectedAt = Int64(wallClockMicroseconds() / 1000)
                self.broker.sessionWentOffline(s, on: ctx)
            }
        }
    }

    /// Publishes one message per topic through `Broker.publish` on loop 0, as a PUBLISH from a
    /// client on that loop would after decoding: a fresh shared `Message` (QoS `qos`, sharing
    /// `payload`), retained store skipped (not retained), topic-tree match, one delivery per
    /// matched session enqueued on its session (all on loop 0: no mailbox), the stored delivery
    /// written into the loop's batch when there is a store, the rule engine asked (no rules).
    public func route(_ topics: [String], payload: [UInt8], qos: UInt8) -> Timing {
        let q = QoS(rawValue: qos)!
        return onLoop { ctx in
            let b = self.broker
            var deliveries = 0
            let wall = ctx.wallClock
            let c0 = SessionBenchmark.threadCPUNanoseconds()
            let t0 = SessionBenchmark.nanoseconds()
            for t in topics {
                let m = Message(topic: t, payload: payload, qos: q, retain: false, properties: Properties(),
                                expiresAt: nil, publisher: nil, publisherClientId: "sessionbench", receivedAt: wall)
                deliveries &+= b.publish(m, from: ctx)
            }
            let t1 = SessionBenchmark.nanoseconds()
            return Timing(nanoseconds: t1 - t0, cpuNanoseconds: SessionBenchmark.threadCPUNanoseconds() - c0, count: deliveries)
        }
    }

    /// The topic-tree match alone (`TopicTree.match` into the loop's scratch), per topic.
    public func match(_ topics: [String]) -> Timing {
        onLoop { ctx in
            let tree = self.broker.tree
            var matches = 0
            let c0 = SessionBenchmark.threadCPUNanoseconds()
            let t0 = SessionBenchmark.nanoseconds()
            for t in topics {
                ctx.matches.removeAll(keepingCapacity: true)
                tree.match(topic: t, into: &ctx.matches, seen: &ctx.seen)
                matches &+= ctx.matches.count
            }
            let t1 = SessionBenchmark.nanoseconds()
            let cpu = SessionBenchmark.threadCPUNanoseconds() - c0
            ctx.matches.removeAll(keepingCapacity: true)
            return Timing(nanoseconds: t1 - t0, cpuNanoseconds: cpu, count: matches)
        }
    }

    /// Empties the queues of `clientIds` as if each message had been delivered and acknowledged
    /// (stored deliveries forgotten), so that every timed batch meets the same state. Returns
    /// the number of messages removed.
    @discardableResult
    public func drain(_ clientIds: [String]) -> Int {
        onLoop { ctx in
            let b = self.broker
            var n = 0
            for s in self.lookUp(clientIds) where !s.queue.isEmpty {
                for q in s.queue { b.forgetDelivery(s, seq: q.storeSeq, message: q.message, on: ctx) }
                n += s.queue.count
                b.stats.messagesStored.wrappingAdd(-s.queue.count, ordering: .relaxed)
                s.queue.removeAll()
            }
            return n
        }
    }

    /// Sessions in the registry and subscriptions in the topic tree.
    public var counts: (sessions: Int, subscriptions: Int) {
        onLoop { _ in (self.broker.sessions.count, self.broker.tree.count) }
    }

    /// Messages queued for offline sessions, all sessions together.
    public var queuedMessages: Int { broker.stats.messagesStored.load(ordering: .relaxed) }
}
