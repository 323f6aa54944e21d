import EventLoop
import MQTTCodec
import Storage

// Where the broker writes to its durable store. Only what must outlive a connection is
// written: persistent sessions (expiry > 0), their queued QoS 1/2 messages (and those in flight
// when their connection closed), inbound QoS 2 ids, delayed wills and retained messages. A
// clean session (clean start, expiry 0) touches no disk. Each function adds to the calling
// loop's batch (LoopContext.batch); `LoopContext.flushPendingOutput` commits it at the end of
// the iteration and releases the acknowledgements that waited for it.

extension Broker {
    /// Adds nothing when there is no store; every write point starts here.
    @inline(__always)
    func writing(_ ctx: LoopContext, _ body: (Persistence, inout StoreBatch) -> Void) {
        guard let p = persistence else { return }
        body(p, &ctx.batch)
        ctx.wroteSinceMark = true
        if !ctx.commitScheduled {
            ctx.commitScheduled = true
            ctx.loop.scheduleFlush(ctx)
        }
    }

    // MARK: Sessions

    /// Writes `s`'s record (subscriptions, expiry; `disconnectedAt` 0 while connected).
    func persistSession(_ s: Session, disconnectedAt: UInt64 = 0, on ctx: LoopContext) {
        writing(ctx) { _, batch in
            let subs = s.subscriptions.map { SessionRecord.Subscription(filter: $0.key, options: $0.value.options, identifier: $0.value.identifier) }
            let record = SessionRecord(protocolVersion: s.protocolVersion, expiryInterval: s.expiryInterval,
                                       disconnectedAt: disconnectedAt, subscriptions: subs)
            if s.replacesStored {
                // What the session this one replaced stored under the client id is not its own.
                Broker.clearStoredSession(s, &batch)
            }
            batch.put(.sessions, key: RecordKeys.session(s.clientId), value: record.encode())
            s.isPersisted = true
        }
    }

    /// Removes every record of `s` (its session, inbound ids, will and deliveries) and forgets
    /// the deliveries' sequence numbers: called when it ends or stops being persistent.
    func forgetSession(_ s: Session, on ctx: LoopContext) {
        guard persistence != nil else { return }
        if s.replacesStored {
            // A clean start without expiry replaced a stored session: its record goes too.
            writing(ctx) { _, batch in Broker.clearStoredSession(s, &batch) }
        }
        for i in s.inflight.indices where s.inflight[i].storeSeq != 0 {
            forgetDelivery(s, seq: s.inflight[i].storeSeq, message: s.inflight[i].message, on: ctx)
            s.inflight[i].storeSeq = 0
        }
        for i in s.queue.indices where s.queue[i].storeSeq != 0 {
            forgetDelivery(s, seq: s.queue[i].storeSeq, message: s.queue[i].message, on: ctx)
            s.queue[i].storeSeq = 0
        }
        guard s.isPersisted || s.willPersisted || !s.inboundQoS2.isEmpty else { return }
        // Replaced by a clean start: the record and inbound ids under this client id are the
        // new session's now (it cleared the old ids when it wrote its record).
        let replaced = sessions.update { table in table[s.clientId].map { $0 !== s } ?? false }
        writing(ctx) { _, batch in
            if !replaced {
                batch.delete(.sessions, key: RecordKeys.session(s.clientId))
                for id in s.inboundQoS2 { batch.delete(.sessions, key: RecordKeys.inbound(s.clientId, id)) }
            }
            if s.willPersisted { batch.delete(.wills, key: Array(s.clientId.utf8)) }
        }
        s.isPersisted = false
        s.willPersisted = false
    }

    /// The session record and inbound ids stored under `s`'s client id (its predecessor's).
    static func clearStoredSession(_ s: Session, _ batch: inout StoreBatch) {
        let from = RecordKeys.sessionPrefix(s.clientId)
        var to = from
        to[to.count - 1] = 1
        batch.deleteRange(.sessions, from: from, to: to)
        s.replacesStored = false
    }

    /// An inbound QoS 2 id received (`add`) or released.
    func persistInbound(_ s: Session, _ packetId: UInt16, add: Bool, on ctx: LoopContext) {
        guard s.isDurable else { return }
        writing(ctx) { _, batch in
            let key = RecordKeys.inbound(s.clientId, packetId)
            if add { batch.put(.sessions, key: key, value: []) } else { batch.delete(.sessions, key: key) }
        }
    }

    // MARK: Deliveries

    /// Stores one delivery for `session` (any loop may call it: the key and the message
    /// reference need nothing of the session's loop-confined state). Returns its sequence number.
    func persistDelivery(session: Session, message: Message, qos: QoS, retain: Bool, identifiers: [UInt32],
                         state: DeliveryRecord.State = .queued, packetId: UInt16 = 0, on ctx: LoopContext) -> UInt64 {
        var seq: UInt64 = 0
        writing(ctx) { p, batch in
            seq = p.makeSeq()
            let id = p.retainMessage(message, wallNow: wallClockMilliseconds(), monoNow: ctx.loop.now, into: &batch)
            let record = DeliveryRecord(messageId: id, qos: qos, retain: retain, state: state, packetId: packetId, identifiers: identifiers)
            batch.put(.deliveries, key: RecordKeys.delivery(session.clientId, seq), value: record.encode())
        }
        return seq
    }

    /// Rewrites a stored delivery whose state changed (sent, or PUBREC received).
    func updateDelivery(_ session: Session, _ o: OutboundMessage, on ctx: LoopContext) {
        guard o.storeSeq != 0 else { return }
        writing(ctx) { _, batch in
            let record = DeliveryRecord(messageId: Persistence.messageId(o.message), qos: o.qos, retain: o.retain,
                                        state: DeliveryRecord.State(o.state), packetId: o.packetId, identifiers: o.identifiers)
            batch.put(.deliveries, key: RecordKeys.delivery(session.clientId, o.storeSeq), value: record.encode())
        }
    }

    /// A stored delivery is done (acknowledged, dropped, expired or handed on).
    func forgetDelivery(_ session: Session, seq: UInt64, message: Message, on ctx: LoopContext) {
        guard seq != 0 else { return }
        writing(ctx) { p, batch in
            batch.delete(.deliveries, key: RecordKeys.delivery(session.clientId, seq))
            p.releaseMessage(message, into: &batch)
        }
    }

    /// The connection of a durable session closed: its record says when, and what is queued or
    /// in flight is stored now (it was sent or queued while the client was online).
    func persistOffline(_ s: Session, on ctx: LoopContext) {
        guard persistence != nil, s.isDurable else { return }
        persistSession(s, disconnectedAt: wallClockMilliseconds(), on: ctx)
        for i in s.inflight.indices where s.inflight[i].storeSeq == 0 {
            let o = s.inflight[i]
            s.inflight[i].storeSeq = persistDelivery(session: s, message: o.message, qos: o.qos, retain: o.retain,
                                                     identifiers: o.identifiers, state: DeliveryRecord.State(o.state),
                                                     packetId: o.packetId, on: ctx)
        }
        for i in s.queue.indices where s.queue[i].storeSeq == 0 {
            let q = s.queue[i]
            s.queue[i].storeSeq = persistDelivery(session: s, message: q.message, qos: q.qos, retain: q.retain,
                                                  identifiers: q.identifiers, on: ctx)
        }
    }

    // MARK: Wills and retained messages

    func persistWill(_ s: Session, _ will: Will, publishAt: UInt64, on ctx: LoopContext) {
        guard s.isDurable else { return }
        writing(ctx) { _, batch in
            batch.put(.wills, key: Array(s.clientId.utf8), value: WillRecord(will: will, publishAt: publishAt).encode())
        }
        s.willPersisted = true
    }

    func forgetWill(_ s: Session, on ctx: LoopContext) {
        guard s.willPersisted else { return }
        writing(ctx) { _, batch in batch.delete(.wills, key: Array(s.clientId.utf8)) }
        s.willPersisted = false
    }

    /// A retained PUBLISH: stored, or (empty payload) cleared. `$SYS` values are rebuilt at
    /// start and never stored.
    func persistRetained(_ m: Message, on ctx: LoopContext) {
        guard persistence != nil, !m.topic.utf8.starts(with: Broker.sysPrefix) else { return }
        writing(ctx) { _, batch in
            let key = Array(m.topic.utf8)
            if m.payload.isEmpty {
                batch.delete(.retained, key: key)
            } else {
                batch.put(.retained, key: key, value: Persistence.record(m, wallNow: wallClockMilliseconds(), monoNow: ctx.loop.now).encode())
            }
        }
    }

    static let sysPrefix: [UInt8] = Array("$SYS/".utf8)

    /// Rewritten every second, so that after a crash the broker knows roughly when it stopped
    /// (sessions that were connected then start their expiry from that moment).
    func persistAlive(on ctx: LoopContext) {
        writing(ctx) { _, batch in
            var w = RecordWriter(reservingCapacity: 8)
            w.u64(wallClockMilliseconds())
            batch.put(.meta, key: RecordKeys.alive, value: w.buffer)
        }
    }
}

// MARK: Acknowledgements that wait (for the disk, for sinks)

extension Connection {
    /// Sends an acknowledgement now, or once what it waits for is confirmed: the commit of the
    /// writes its packet caused (durability "sync", `wrote`) and each sink in `tickets` (rule
    /// actions with `ack = 'after_sink'`). Once one waits, later ones wait behind it:
    /// acknowledgements leave in the order their packets arrived [MQTT-4.6.0-2].
    ///
    /// In a cluster it also waits until the cluster thread has sent the message (this loop's
    /// `forwarded`-th to the cluster, 0: none) to NATS and the NATS server has confirmed it (a
    /// flush): the message is on its way to every node with interest before the client is
    /// told it arrived.
    func sendAck(_ packet: Packet, wrote: Bool, tickets: [UInt64] = [], forwarded: UInt64 = 0) {
        let forwarded = forwarded != 0 ? forwarded : nil
        let forDisk = wrote && broker.persistence?.holdsAcks == true
        guard forDisk || forwarded != nil || !tickets.isEmpty || !gates.isEmpty else {
            send(packet)
            return
        }
        let gate = AckGate(packet: packet, waiting: (forDisk ? 1 : 0) + (forwarded != nil ? 1 : 0) + tickets.count)
        gates.append(gate)
        if gate.isPubAck { heldPubAcks += 1 }
        if let forwarded { context.clusterHeld.append((forwarded, HeldAck(connection: self, gate: gate))) }
        if forDisk {
            context.heldAcks.append(HeldAck(connection: self, gate: gate))
            if !context.commitScheduled {
                context.commitScheduled = true
                loop.scheduleFlush(context)
            }
        }
        if !tickets.isEmpty {
            gate.tickets = tickets
            for t in tickets { context.sinkGates[t] = (self, gate) }
            let timer = LoopTimer { [unowned self, unowned gate] in self.ackTimedOut(gate) }
            gate.timer = timer
            loop.schedule(timer, afterMilliseconds: UInt64(limits.ackTimeout) * 1000)
        }
        if gate.waiting == 0 { releaseGates() }
    }

    /// Sends what is at the front and confirmed, in order.
    func releaseGates() {
        while let g = gates.first, g.waiting == 0 {
            gates.removeFirst()
            if g.isPubAck { heldPubAcks -= 1 }
            if let t = g.timer { loop.cancel(t) }
            guard state != .closed else { continue }
            if let why = g.failure {
                // The client must not take it as done: v5 gets a failure code (the car may
                // resend), v3.1.1 — which has none — is disconnected and resends on reconnect.
                switch g.packet {
                case .puback(var a) where version == .v5:
                    a.reasonCode = .unspecifiedError
                    if wantsProblemInformation { a.properties.reasonString = why }
                    send(.puback(a))
                case .pubrec(var a) where version == .v5:
                    a.reasonCode = .unspecifiedError
                    if wantsProblemInformation { a.properties.reasonString = why }
                    send(.pubrec(a))
                default:
                    disconnect(.unspecifiedError, "\(why); acknowledgement withheld")
                    return
                }
                continue
            }
            send(g.packet)
        }
    }

    /// `ack_timeout` passed before every sink confirmed.
    private func ackTimedOut(_ gate: AckGate) {
        var pending = 0
        for t in gate.tickets where context.sinkGates.removeValue(forKey: t) != nil { pending += 1 }
        guard pending > 0 else { return }
        gate.waiting -= pending
        gate.failure = gate.failure ?? "not confirmed by the bridge within ack_timeout \(limits.ackTimeout) s"
        logger.info("client \(clientId): \(gate.failure!)")
        releaseGates()
    }
}

extension Broker {
    /// The cluster has sent the first `count` messages loop `loop` forwarded (and NATS has
    /// them, or was unreachable): their acknowledgements may leave. Any thread.
    public func clusterForwarded(loop: Int, count: UInt64) {
        guard loop < contexts.count else { return }
        let ctx = contexts[loop]
        ctx.loop.execute {
            while let h = ctx.clusterHeld.first, h.count <= count {
                ctx.clusterHeld.removeFirst()
                h.ack.gate.waiting -= 1
                h.ack.connection.releaseGates()
            }
        }
    }

    /// A bridge's final word on a record whose publisher waits (`ack = 'after_sink'`): any thread.
    public func confirmSink(_ ticket: AckTicket, delivered: Bool, reason: String) {
        guard ticket.loop < contexts.count else { return }
        let ctx = contexts[ticket.loop]
        ctx.loop.execute {
            guard let (c, gate) = ctx.sinkGates.removeValue(forKey: ticket.id) else { return } // timed out
            gate.waiting -= 1
            if !delivered { gate.failure = gate.failure ?? reason }
            c.releaseGates()
        }
    }
}

extension LoopContext: FlushTarget {
    /// End of the iteration: this iteration's writes go to the store as one batch. The
    /// acknowledgements held on it are released when the store confirms it (on this loop).
    func flushPendingOutput() {
        commitScheduled = false
        guard let p = broker.persistence, !batch.isEmpty || !heldAcks.isEmpty || !afterCommit.isEmpty else { return }
        let b = batch
        batch = StoreBatch()
        committing.append((heldAcks, afterCommit))
        heldAcks = []
        afterCommit = []
        let loop = self.loop
        let me = UncheckedSendable(self)
        p.store.commit(b) { error in
            loop.execute { me.value.committed(error) }
        }
    }

    /// The store confirmed (or failed) the oldest batch this loop submitted.
    private func committed(_ error: StorageError?) {
        if let error {
            broker.persistence?.failedCommits.wrappingAdd(1, ordering: .relaxed)
            broker.logger.error("storage commit failed: \(error)")
        }
        guard let (acks, then) = committing.popFirst() else { return }
        for work in then { work() }
        for a in acks {
            a.gate.waiting -= 1
            if error != nil { a.gate.failure = a.gate.failure ?? "storage write failed" }
            a.connection.releaseGates()
        }
    }
}

extension DeliveryRecord.State {
    init(_ s: OutboundMessage.State) {
        switch s {
        case .awaitingPubAck: self = .awaitingPubAck
        case .awaitingPubRec: self = .awaitingPubRec
        case .awaitingPubComp: self = .awaitingPubComp
        }
    }

    /// The inflight state it stands for; nil while queued.
    var outbound: OutboundMessage.State? {
        switch self {
        case .queued: nil
        case .awaitingPubAck: .awaitingPubAck
        case .awaitingPubRec: .awaitingPubRec
        case .awaitingPubComp: .awaitingPubComp
        }
    }
}
