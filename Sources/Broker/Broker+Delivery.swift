import EventLoop
import Logging
import MQTTCodec

// The path of a message: `publish` stores it if retained, matches it against the topic tree and
// hands one delivery per matched session to the session's owner loop (directly when that is
// this loop, else in one mailbox batch per loop). On the owner loop `enqueue` sends it now or
// queues it behind the inflight window.

extension Broker {
    /// Routes a message published on `ctx`'s loop. Returns the number of sessions it went to.
    @discardableResult
    func publish(_ message: Message, from ctx: LoopContext, runRules: Bool = true, fromCluster: Bool = false) -> Int {
        // A retained message from another node reaches the retained store through the cluster's
        // stream, in the order every node applies (applyClusterRetained).
        if message.retain && !fromCluster {
            let n = retained.store(message)
            stats.retained.store(n, ordering: .relaxed)
            persistRetained(message, on: ctx)
        }
        ctx.matches.removeAll(keepingCapacity: true)
        tree.match(topic: message.topic, into: &ctx.matches, seen: &ctx.seen)
        var count = 0
        for m in ctx.matches {
            // No Local: not back to the session that published it [MQTT-3.8.3-3].
            if m.options.noLocal && message.publisher == ObjectIdentifier(m.session) { continue }
            let qos = min(message.qos, m.options.qos)
            dispatch(Delivery(session: m.session, message: message, qos: qos,
                              retain: m.options.retainAsPublished ? message.retain : false,
                              identifiers: m.identifiers, group: m.group), on: ctx)
            count += 1
        }
        sendOutbound(on: ctx)
        ctx.matches.removeAll(keepingCapacity: true)
        if !fromCluster, let cluster {
            ctx.clusterForwarded &+= 1
            cluster.forward(message, fromLoop: ctx.loop.index)
        }
        if runRules {
            // The broker's own $SYS topics are not counted: nobody subscribing to them is normal.
            if count == 0, !message.topic.utf8.starts(with: Broker.sysPrefix) { ctx.counters.droppedNoSubscribers &+= 1 }
            if count == 0 { fireMessageEvent(.messageDropped, message, to: nil, reason: "no_subscribers", on: ctx) }
            self.runRules(for: message, on: ctx)
        }
        return count
    }

    /// One delivery routed on `ctx`'s loop: stored when its session is offline and durable (here,
    /// on the publisher's loop, so that the publisher's acknowledgement can wait for it), then
    /// enqueued here or handed to the session's owner loop (in `ctx.outbound`: `sendOutbound`).
    @inline(__always)
    func dispatch(_ delivery: Delivery, on ctx: LoopContext) {
        var d = delivery
        let s = d.session
        if d.qos != .atMostOnce, persistence != nil, s.isDurable, !s.isConnected {
            d.storeSeq = persistDelivery(session: s, message: d.message, qos: d.qos, retain: d.retain,
                                         identifiers: d.identifiers, on: ctx)
        }
        let owner = s.owner
        if owner == ctx.loop.index {
            enqueue(d, on: ctx)
        } else if d.storeSeq != 0 || ctx.deferredDeliveries[owner] > 0 {
            // Its record must be on disk before the owner can update or delete it; and what
            // follows it to the same loop waits behind it, so this publisher's order holds.
            let target = contexts[owner]
            ctx.deferredDeliveries[owner] += 1
            ctx.whenCommitted { [unowned ctx] in
                ctx.deferredDeliveries[owner] -= 1
                target.deliveries.send(d)
            }
        } else {
            ctx.outbound[owner].append(d)
        }
    }

    /// The deliveries `dispatch` batched for other loops: one mailbox send per loop.
    func sendOutbound(on ctx: LoopContext) {
        for i in ctx.outbound.indices where !ctx.outbound[i].isEmpty {
            contexts[i].deliveries.send(contentsOf: ctx.outbound[i])
            ctx.outbound[i].removeAll(keepingCapacity: true)
        }
    }

    /// A delivery arriving through this loop's mailbox.
    func deliverLocally(_ d: Delivery, on ctx: LoopContext) {
        if d.session.owner != ctx.loop.index {
            // The session moved while the delivery was on its way.
            contexts[d.session.owner].deliveries.send(d)
            return
        }
        enqueue(d, on: ctx)
    }

    /// Gives a message to a session on its owner loop: sent now when connected and the window
    /// has room, else queued (QoS 1/2) within `max_queued_messages`, else dropped and counted.
    func enqueue(_ d: Delivery, on ctx: LoopContext) {
        let s = d.session
        if s.holdsArrivals, !s.isDead {
            s.arrivalHold!.append(d)   // behind what the node it came from still has (finishArrival)
            return
        }
        guard !s.isDead, !d.message.isExpired(now: ctx.loop.now) else {
            if !s.isDead { ctx.counters.droppedExpired &+= 1 }
            forgetDelivery(s, seq: d.storeSeq, message: d.message, on: ctx)
            return
        }
        let c = s.connection
        if d.qos == .atMostOnce {
            guard let c else { return } // QoS 0 is not kept for offline sessions
            if c.pendingOutputBytes > 8 * 1024 * 1024 {
                ctx.counters.droppedClientSlow &+= 1
                drop(d, reason: "client is not reading (8 MiB pending)")
                return
            }
            _ = c.sendPublish(d.message, qos: .atMostOnce, retain: d.retain, packetId: 0, dup: false, identifiers: d.identifiers)
            return
        }
        var q = QueuedMessage(message: d.message, qos: d.qos, retain: d.retain, identifiers: d.identifiers, group: d.group)
        q.storeSeq = d.storeSeq
        if let c, s.queue.isEmpty, s.inflight.count < window(c) {
            send(q, to: s, via: c)
            return
        }
        let maxQueued = ctx.settings.limits.maxQueuedMessages
        if s.queue.count >= maxQueued {
            forgetDelivery(s, seq: d.storeSeq, message: d.message, on: ctx)
            ctx.counters.droppedQueueFull &+= 1
            drop(d, reason: "queue full (max_queued_messages \(maxQueued))")
            return
        }
        if q.storeSeq == 0, s.isDurable {
            // Queued for a durable session (offline, or online behind a full window): it must
            // outlive the connection, so it is stored, by the owner loop.
            q.storeSeq = persistDelivery(session: s, message: q.message, qos: q.qos, retain: q.retain,
                                         identifiers: q.identifiers, on: ctx)
        }
        s.queue.append(q)
        stats.messagesStored.wrappingAdd(1, ordering: .relaxed)
    }

    private func window(_ c: Connection) -> Int {
        min(c.limits.maxInflight, c.clientReceiveMaximum)
    }

    private func send(_ q: QueuedMessage, to s: Session, via c: Connection) {
        let id = s.nextPacketId()
        if c.sendPublish(q.message, qos: q.qos, retain: q.retain, packetId: id, dup: false, identifiers: q.identifiers) {
            var o = OutboundMessage(packetId: id, message: q.message, qos: q.qos, retain: q.retain,
                                    identifiers: q.identifiers, group: q.group,
                                    state: q.qos == .exactlyOnce ? .awaitingPubRec : .awaitingPubAck)
            o.storeSeq = q.storeSeq
            s.inflight.append(o)
            // A stored delivery now has a packet id: a restart resends it with DUP, as a reconnect would.
            updateDelivery(s, o, on: c.context)
        } else {
            forgetDelivery(s, seq: q.storeSeq, message: q.message, on: c.context)
        }
    }

    private func drop(_ d: Delivery, reason: String) {
        let s = d.session
        fireMessageEvent(.messageDropped, d.message, to: s, reason: reason.hasPrefix("queue full") ? "queue_full" : "client_slow",
                         on: contexts[s.owner])
        s.droppedMessages += 1
        stats.publishDropped.wrappingAdd(1, ordering: .relaxed)
        // Logged at the first drop and then at most every 10 s per session, with the count, so a
        // flood of drops cannot flood the log too.
        let now = contexts[s.owner].loop.now
        if s.droppedMessages == 1 || now &- s.lastDropLog >= 10_000 {
            s.lastDropLog = now
            var fields: Logger.Metadata = ["clientid": .string(s.clientId), "topic": .string(d.message.topic), "reason": .string(reason)]
            if let c = s.connection { fields["peer"] = .string(c.peer); if let u = c.username { fields["username"] = .string(u) } }
            logger.warning("dropped message on \(d.message.topic) for client \(s.clientId): \(reason); \(s.droppedMessages) dropped for this client so far", metadata: fields)
        }
    }

    /// Moves queued messages into the inflight window while it has room.
    func fillWindow(_ s: Session) {
        guard let c = s.connection else { return }
        let now = c.loop.now
        while s.inflight.count < window(c), let q = s.queue.popFirst() {
            stats.messagesStored.wrappingAdd(-1, ordering: .relaxed)
            if q.message.isExpired(now: now) {
                c.context.counters.droppedExpired &+= 1
                forgetDelivery(s, seq: q.storeSeq, message: q.message, on: c.context)
                continue
            }
            send(q, to: s, via: c)
        }
    }

    /// PUBACK / PUBCOMP (or an error PUBREC) ends an outbound exchange.
    func acknowledge(_ s: Session, packetId: UInt16, expecting: OutboundMessage.State) {
        guard let i = s.inflight.firstIndex(where: { $0.packetId == packetId && $0.state == expecting }) else { return }
        let done = s.inflight.remove(at: i)
        forgetDelivery(s, seq: done.storeSeq, message: done.message, on: contexts[s.owner])
        fireMessageEvent(.messageAcked, done.message, to: s, on: contexts[s.owner])
        fillWindow(s)
    }

    /// A session leaving (or ending) hands its unacknowledged shared-subscription messages to
    /// other members of the same group, so a member going away loses none of them.
    func handBackShared(_ s: Session, on ctx: LoopContext) {
        var handed: [(QueuedMessage)] = []
        s.inflight.removeAll { o in
            guard let g = o.group, o.state != .awaitingPubComp else { return false }
            handed.append(QueuedMessage(message: o.message, qos: o.qos, retain: o.retain, identifiers: o.identifiers, group: g))
            forgetDelivery(s, seq: o.storeSeq, message: o.message, on: ctx)
            return true
        }
        // (Only when there is a queue: removeAll(where:) gives even an empty Deque storage of
        // its own, which every offline session would then carry.)
        if !s.queue.isEmpty { s.queue.removeAll { q in
            guard q.group != nil else { return false }
            var handedOn = q
            handedOn.storeSeq = 0
            handed.append(handedOn)
            forgetDelivery(s, seq: q.storeSeq, message: q.message, on: ctx)
            stats.messagesStored.wrappingAdd(-1, ordering: .relaxed)
            return true
        } }
        for q in handed {
            guard let g = q.group, let m = tree.pickShared(g, excluding: s) else {
                // No other member: keep it with this session.
                s.queue.append(q)
                stats.messagesStored.wrappingAdd(1, ordering: .relaxed)
                continue
            }
            let d = Delivery(session: m.session, message: q.message, qos: min(q.message.qos, m.options.qos),
                             retain: q.retain, identifiers: m.identifier.map { [$0] } ?? [], group: g)
            if m.session.owner == ctx.loop.index { enqueue(d, on: ctx) } else { contexts[m.session.owner].deliveries.send(d) }
        }
    }

    // MARK: Subscriptions

    /// Adds a subscription for `session` (on its owner loop); returns whether it is new.
    func subscribe(_ session: Session, filter: String, options: SubscriptionOptions, identifier: UInt32?) -> Bool {
        let isNew = tree.subscribe(session: session, filter: filter, options: options, identifier: identifier)
        session.subscriptions[filter] = SubscriptionRecord(options: options, identifier: identifier)
        if isNew { stats.subscriptions.wrappingAdd(1, ordering: .relaxed) }
        return isNew
    }

    func unsubscribe(_ session: Session, filter: String) -> Bool {
        session.subscriptions[filter] = nil
        let existed = tree.unsubscribe(session: session, filter: filter)
        if existed { stats.subscriptions.wrappingAdd(-1, ordering: .relaxed) }
        return existed
    }

    /// Sends the retained messages matching a new subscription, retain flag set [MQTT-3.3.1-8].
    func deliverRetained(to session: Session, filter: String, options: SubscriptionOptions, identifier: UInt32?) {
        let ctx = contexts[session.owner]
        for m in retained.matching(filter, now: ctx.loop.now) {
            enqueue(Delivery(session: session, message: m, qos: min(m.qos, options.qos), retain: true,
                             identifiers: identifier.map { [$0] } ?? [], group: nil), on: ctx)
        }
    }
}
