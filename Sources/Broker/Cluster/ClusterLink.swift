import EventLoop
import MQTTCodec

/// A change of this node's subscription interest: the first subscription to a filter (per share
/// group for shared ones), or the last one gone.
public enum InterestChange: Sendable, Equatable {
    case added(filter: String, group: String?)
    case removed(filter: String, group: String?)
}

/// What the broker knows of the cluster (Sources/Cluster implements it on NATS). The broker
/// tells it what is published here and how its interest changes; the cluster hands messages
/// from other nodes back through `Broker.receiveFromCluster`. Nothing here may block a loop.
public protocol ClusterLink: AnyObject, Sendable {
    /// A message published on this node (a client, a rule, a will), after local routing. Runs
    /// on the publisher's loop: it only queues.
    func forward(_ message: Message, fromLoop loop: Int)
    /// Called under the topic tree's write lock: it only queues.
    func interestChanged(_ change: InterestChange)
    /// A CONNECT for `clientId` on this node: the cluster's session registry says which node
    /// had the session; that node disconnects its connection (0x8E) and sends the session's
    /// state, unless `cleanStart`. `done` gets the state (nil: none elsewhere), on any thread.
    func claim(clientId: String, cleanStart: Bool, done: @escaping @Sendable ([UInt8]?) -> Void)
    /// After a session came with `claim` and its subscriptions are on NATS: the node it came
    /// from sends what reached the session there meanwhile, and lets it go. `done` gets that
    /// rest (nil: nothing, or no answer), on any thread.
    func collectRest(clientId: String, done: @escaping @Sendable ([UInt8]?) -> Void)
    /// After a SUBSCRIBE, before its SUBACK: `done` runs (on any thread) once every interest
    /// change queued so far is registered with the NATS server (so what another node publishes
    /// after the SUBACK comes here) and the retained messages the cluster had stored by then are
    /// in this node's retained store. Bounded: `done` runs within about a second whatever NATS does.
    func afterInterestRegistered(_ done: @escaping @Sendable () -> Void)
    /// Figures for `$SYS/broker/cluster/…`, name → value.
    func metricsSnapshot() -> [(name: String, value: String)]
    func stop()
}

extension Broker {
    /// Joins the cluster: from now on interest changes go to `link`, which gets the current
    /// interest back (taken under the same lock, so no change falls between). Call before `start`.
    public func attachCluster(_ link: any ClusterLink) -> [InterestChange] {
        cluster = link
        return tree.observeInterest { change in link.interestChanged(change) }
    }

    /// A message from another node, published on the loop that `publisherClientId` hashes to (so
    /// one publisher's messages keep their order): delivered to local subscribers as a local
    /// message would be, without running the rules again or going back to the cluster. With
    /// `group`, only to one member of that share group (the cluster chose this node for it).
    public func receiveFromCluster(_ message: Message, group: (filter: String, name: String)?) {
        let ctx = contexts[Int(ClusterHash.of(message.publisherClientId.utf8) % UInt64(contexts.count))]
        ctx.fromCluster.send(.message(message, group: group))
    }

    /// Runs `body` (on some loop) once every message handed to `receiveFromCluster` before this
    /// call has been routed and its deliveries sent to their sessions' loops (stored ones after
    /// their commit): what the cluster delivered here before a takeover request is in the
    /// session before it is exported.
    func afterClusterDeliveries(_ body: @escaping @Sendable () -> Void) {
        let remaining = Countdown(contexts.count)
        for ctx in contexts {
            ctx.fromCluster.send(.barrier { [unowned ctx] in
                // Stored deliveries reach their owner after their commit: wait only when some
                // are still waiting (a commit costs an fsync with durability "sync").
                if !ctx.deferredDeliveries.contains(where: { $0 > 0 }) {
                    if remaining.tick() { body() }
                } else {
                    ctx.whenCommitted { if remaining.tick() { body() } }
                }
            })
        }
    }

    /// The cluster's retained state for one topic (a message, or a clear with an empty
    /// payload), in the order the cluster agreed on: stored here and on disk, delivered to no one.
    public func applyClusterRetained(_ message: Message) {
        let ctx = contexts[0]
        ctx.loop.execute { [unowned self] in
            let n = self.retained.store(message)
            self.stats.retained.store(n, ordering: .relaxed)
            self.persistRetained(message, on: ctx)
        }
    }

    /// Runs `body` on the loop that applies the cluster's retained messages, after those handed
    /// to `applyClusterRetained` so far.
    public func afterClusterRetained(_ body: @escaping @Sendable () -> Void) {
        contexts[0].loop.execute(body)
    }

    func deliverFromCluster(_ r: RemoteMessage, on ctx: LoopContext) {
        let m: Message, filter: String, name: String
        switch r {
        case .barrier(let then):
            then()
            return
        case .message(let message, nil):
            publish(message, from: ctx, runRules: false, fromCluster: true)
            return
        case .message(let message, let group?):
            (m, filter, name) = (message, group.filter, group.name)
        }
        guard let g = tree.sharedGroup(filter: filter, name: name), let member = tree.pickShared(g, excluding: nil) else {
            BrokerStats.add(stats.publishDropped, 1)
            return
        }
        dispatch(Delivery(session: member.session, message: m, qos: min(m.qos, member.options.qos),
                          retain: member.options.retainAsPublished ? m.retain : false,
                          identifiers: member.identifier.map { [$0] } ?? [], group: g), on: ctx)
        sendOutbound(on: ctx)
    }
}

/// FNV-1a, 64 bits: which loop a remote publisher's messages run on, which registry bucket a
/// client id is in, a share group's NATS queue name. Stable across nodes and releases.
public enum ClusterHash {
    public static func of<S: Sequence<UInt8>>(_ bytes: S) -> UInt64 {
        var h: UInt64 = 14_695_981_039_346_656_037
        for b in bytes { h = (h ^ UInt64(b)) &* 1_099_511_628_211 }
        return h
    }
}

/// What the cluster hands a loop: a message from another node (for one share group's member
/// when `group` is set), or a barrier that runs once the loop has routed what came before it.
enum RemoteMessage {
    case message(Message, group: (filter: String, name: String)?)
    case barrier(@Sendable () -> Void)
}

