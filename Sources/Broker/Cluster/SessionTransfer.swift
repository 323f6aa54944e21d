import EventLoop
import MQTTCodec
import Storage

// A session moving between nodes (a car reconnecting through the load balancer to another
// node): the node that had it exports it, the one the car is on now imports it before CONNACK.
// The format reuses the store's records (Records.swift), version 1:
//
//   u8 1, bytes SessionRecord, varint n × u16 inbound QoS 2 ids,
//   varint n × (bytes DeliveryRecord, bytes MessageRecord)   queued and inflight, in order
//
// Make before break: the old node keeps the session's subscriptions after the export and
// collects what still reaches it, until the new node has the subscriptions on NATS and asks
// for that rest (u8 2, varint n × (bytes DeliveryRecord, bytes MessageRecord)). Meanwhile the
// new node holds what reaches it directly; the rest goes in front, and a message that came both
// ways (published while both nodes had interest) is delivered once.

enum SessionTransfer {
    static func encode(_ s: Session, wallNow: UInt64, monoNow: UInt64) -> [UInt8] {
        var w = RecordWriter(reservingCapacity: 256)
        w.u8(1)
        let subs = s.subscriptions.map { SessionRecord.Subscription(filter: $0.key, options: $0.value.options, identifier: $0.value.identifier) }
        w.bytes(SessionRecord(protocolVersion: s.protocolVersion, expiryInterval: s.expiryInterval, disconnectedAt: 0,
                              subscriptions: subs.sorted { $0.filter < $1.filter }).encode())
        w.varint(UInt64(s.inboundQoS2.count))
        for id in s.inboundQoS2.sorted() { w.u16(id) }
        w.varint(UInt64(s.inflight.count + s.queue.count))
        for o in s.inflight {
            w.bytes(DeliveryRecord(messageId: 0, qos: o.qos, retain: o.retain, state: DeliveryRecord.State(o.state),
                                   packetId: o.packetId, identifiers: o.identifiers).encode())
            w.bytes(Persistence.record(o.message, wallNow: wallNow, monoNow: monoNow).encode())
        }
        for q in s.queue {
            w.bytes(DeliveryRecord(messageId: 0, qos: q.qos, retain: q.retain, state: .queued, packetId: 0,
                                   identifiers: q.identifiers).encode())
            w.bytes(Persistence.record(q.message, wallNow: wallNow, monoNow: monoNow).encode())
        }
        return w.buffer
    }

    static func encodeRest(_ s: Session, wallNow: UInt64, monoNow: UInt64) -> [UInt8] {
        var w = RecordWriter(reservingCapacity: 64)
        w.u8(2)
        w.varint(UInt64(s.inflight.count + s.queue.count))
        for o in s.inflight {
            w.bytes(DeliveryRecord(messageId: 0, qos: o.qos, retain: o.retain, state: .queued, packetId: 0, identifiers: o.identifiers).encode())
            w.bytes(Persistence.record(o.message, wallNow: wallNow, monoNow: monoNow).encode())
        }
        for q in s.queue {
            w.bytes(DeliveryRecord(messageId: 0, qos: q.qos, retain: q.retain, state: .queued, packetId: 0, identifiers: q.identifiers).encode())
            w.bytes(Persistence.record(q.message, wallNow: wallNow, monoNow: monoNow).encode())
        }
        return w.buffer
    }

    static func decodeRest(_ bytes: [UInt8]) throws(StorageError) -> [(DeliveryRecord, MessageRecord)] {
        try RecordReader.read(bytes) { r throws(StorageError) in
            guard try r.u8() == 2 else { throw .corruption("session rest: unknown format version") }
            let deliveries = try readDeliveries(&r)
            try r.expectEnd()
            return deliveries
        }
    }

    private static func readDeliveries(_ r: inout RecordReader) throws(StorageError) -> [(DeliveryRecord, MessageRecord)] {
        let m = try r.varint()
        guard m <= UInt64(r.remaining / 2) else { throw .corruption("session transfer: \(m) deliveries") }
        var deliveries: [(DeliveryRecord, MessageRecord)] = []
        for _ in 0..<m {
            let d = try RecordReader.read(try r.byteArray()) { r2 throws(StorageError) in try DeliveryRecord.decode(&r2) }
            let msg = try RecordReader.read(try r.byteArray()) { r2 throws(StorageError) in try MessageRecord.decode(&r2) }
            deliveries.append((d, msg))
        }
        return deliveries
    }

    struct Decoded {
        var record: SessionRecord
        var inbound: [UInt16]
        var deliveries: [(DeliveryRecord, MessageRecord)]
    }

    static func decode(_ bytes: [UInt8]) throws(StorageError) -> Decoded {
        try RecordReader.read(bytes) { r throws(StorageError) in
            guard try r.u8() == 1 else { throw .corruption("session transfer: unknown format version") }
            let record = try RecordReader.read(try r.byteArray()) { r2 throws(StorageError) in try SessionRecord.decode(&r2) }
            let n = try r.varint()
            guard n <= UInt64(r.remaining / 2) else { throw .corruption("session transfer: \(n) inbound ids") }
            var inbound: [UInt16] = []
            for _ in 0..<n { inbound.append(try r.u16()) }
            let deliveries = try readDeliveries(&r)
            try r.expectEnd()
            return Decoded(record: record, inbound: inbound, deliveries: deliveries)
        }
    }
}

extension Broker {
    /// Another node's car took this client id: its connection here gets DISCONNECT 0x8E and
    /// its session leaves this node. `reply` gets the session's state (nil: there was none, or
    /// `discard` said the new connection starts clean). Any thread; `reply` runs on a loop.
    ///
    /// Called on the cluster's delivery thread, behind the messages it delivered before: those
    /// are routed and in the session's queue before it leaves (afterClusterDeliveries, then the
    /// owner's delivery mailbox drained), so a message another node acknowledged before the car
    /// moved travels with the session.
    public func exportSession(clientId: String, discard: Bool, reply: @escaping @Sendable ([UInt8]?) -> Void) {
        afterClusterDeliveries { [unowned self] in self.exportNow(clientId: clientId, discard: discard, reply: reply) }
    }

    private func exportNow(clientId: String, discard: Bool, reply: @escaping @Sendable ([UInt8]?) -> Void) {
        guard let s = sessions.update({ $0[clientId] }) else { reply(nil); return }
        runOnOwner(s) { [unowned self] ctx in
            ctx.deliveries.drainNow()
            guard !s.isDead, self.sessions.update({ $0[clientId] }) === s else { reply(nil); return }
            self.export(s, clientId: clientId, discard: discard, reply: reply, on: ctx)
        }
    }

    private func export(_ s: Session, clientId: String, discard: Bool, reply: @escaping @Sendable ([UInt8]?) -> Void, on ctx: LoopContext) {
        self.takeOver(s, on: ctx)
        if s.holdsArrivals {
            if !discard {
                // The car moves on before its last move is complete (the node it came from
                // has not sent what still reached it there): this one waits for that rest
                // (finishArrival, bounded by its timeout), then sends everything.
                s.afterArrival = { [unowned self, unowned s] in
                    guard !s.isDead else { reply(nil); return }
                    self.export(s, clientId: clientId, discard: false, reply: reply, on: self.contexts[s.owner])
                }
                return
            }
            s.arrivalHold = nil
        }
        let state = discard ? nil : SessionTransfer.encode(s, wallNow: wallClockMilliseconds(), monoNow: ctx.loop.now)
        // What was queued or in flight travels with the state: not handed back to share
        // groups, and its stored copies go with the session's records.
        for o in s.inflight { self.forgetDelivery(s, seq: o.storeSeq, message: o.message, on: ctx) }
        for q in s.queue { self.forgetDelivery(s, seq: q.storeSeq, message: q.message, on: ctx) }
        self.stats.messagesStored.wrappingAdd(-s.queue.count, ordering: .relaxed)
        s.queue.removeAll()
        s.inflight.removeAll()
        s.pendingWill = nil
        if state == nil {
            self.endSession(s, on: ctx)
        } else {
            // Its subscriptions stay until the new node has them on NATS and asks for the
            // rest; the client id is free here once the deletes of its records are
            // committed (as in endSession).
            self.forgetSession(s, on: ctx)
            self.departures.withLock { $0[clientId] = s }
            ctx.whenCommitted { [unowned self] in
                let left = self.sessions.update { table -> Bool in
                    guard table[clientId] === s else { return false }
                    table[clientId] = nil
                    return true
                }
                if left { self.stats.sessions.wrappingAdd(-1, ordering: .relaxed) }
            }
            let timer = LoopTimer { [unowned self, unowned ctx] in
                guard s.departureTimer != nil else { return }
                s.departureTimer = nil
                self.departures.withLock { d in if d[clientId] === s { d[clientId] = nil } }
                if !s.queue.isEmpty { self.logger.warning("client \(clientId): the node the session went to never asked for the \(s.queue.count) messages that reached it here afterwards; dropped") }
                self.endSession(s, on: ctx)
            }
            s.departureTimer = timer
            ctx.loop.schedule(timer, afterMilliseconds: Broker.departureTimeout)
        }
        self.logger.info("client \(clientId): session taken over by another node\(state.map { " (\($0.count) bytes of state sent)" } ?? "")")
        reply(state)
    }

    /// How long a departed session's subscriptions stay when the new node never asks for the rest.
    static let departureTimeout: UInt64 = 10_000
    /// Interest travels between NATS servers asynchronously: a message routed before the new
    /// node's subscriptions reached the publisher's server still comes here, this long after.
    static let departureGraceMilliseconds: UInt64 = 50

    /// The node the session went to has its subscriptions on NATS: after a grace for messages
    /// still on their way here, what reached the session since the export goes there, and the
    /// session ends here. `reply` gets the rest (nil: nothing, or no such departure). Any thread.
    public func finishDeparture(clientId: String, reply: @escaping @Sendable ([UInt8]?) -> Void) {
        let first = contexts[0]
        first.loop.execute { [unowned self, unowned first] in
            first.loop.schedule(LoopTimer { [unowned self] in
                self.afterClusterDeliveries { [unowned self] in
                    guard let s = self.departures.withLock({ $0.removeValue(forKey: clientId) }) else { reply(nil); return }
                    self.runOnOwner(s) { [unowned self] ctx in
                        ctx.deliveries.drainNow()
                        guard !s.isDead, let t = s.departureTimer else { reply(nil); return }
                        ctx.loop.cancel(t)
                        s.departureTimer = nil
                        let rest = s.queue.isEmpty && s.inflight.isEmpty ? nil
                            : SessionTransfer.encodeRest(s, wallNow: wallClockMilliseconds(), monoNow: ctx.loop.now)
                        if rest != nil { self.logger.info("client \(clientId): \(s.queue.count) messages that reached the session after it left sent after it") }
                        self.stats.messagesStored.wrappingAdd(-s.queue.count, ordering: .relaxed)
                        s.queue.removeAll()
                        s.inflight.removeAll()
                        self.endSession(s, on: ctx)
                        reply(rest)
                    }
                }
            }, afterMilliseconds: Broker.departureGraceMilliseconds)
        }
    }

    /// A session arriving from another node, installed on `ctx`'s loop before the CONNECT that
    /// brought it continues (which then finds it here, present).
    ///
    /// Returns the session, which holds what reaches it here until `finishArrival` brings the
    /// rest from the old node.
    @discardableResult
    func importSession(clientId: String, _ bytes: [UInt8], on ctx: LoopContext) -> Session? {
        let t: SessionTransfer.Decoded
        do { t = try SessionTransfer.decode(bytes) } catch {
            logger.error("client \(clientId): the session from another node does not decode (\(error)); starting clean")
            return nil
        }
        if let old = sessions.update({ $0[clientId] }) {
            // A session left here from an earlier visit: the other node's is newer.
            old.setDurable(false)
            runOnOwner(old) { [unowned self] octx in self.endSession(old, on: octx) }
        }
        let s = Session(clientId: clientId, owner: ctx.loop.index)
        s.arrivalHold = []
        s.protocolVersion = t.record.protocolVersion
        s.expiryInterval = t.record.expiryInterval
        for sub in t.record.subscriptions {
            _ = subscribe(s, filter: sub.filter, options: sub.options, identifier: sub.identifier)
        }
        s.inboundQoS2 = Set(t.inbound)
        let wallNow = wallClockMilliseconds()
        for (d, r) in t.deliveries {
            let m = Persistence.message(r, wallNow: wallNow, monoNow: ctx.loop.now)
            if let state = d.state.outbound {
                s.inflight.append(OutboundMessage(packetId: d.packetId, message: m, qos: d.qos, retain: d.retain,
                                                  identifiers: d.identifiers, group: nil, state: state))
            } else {
                s.queue.append(QueuedMessage(message: m, qos: d.qos, retain: d.retain, identifiers: d.identifiers, group: nil))
            }
        }
        s.restorePacketIds()
        stats.messagesStored.wrappingAdd(s.queue.count, ordering: .relaxed)
        s.setDurable(s.expiryInterval > 0)
        sessions.update { $0[clientId] = s }
        stats.sessions.wrappingAdd(1, ordering: .relaxed)
        persistOffline(s, on: ctx)
        logger.info("client \(clientId): session arrived from another node (\(s.subscriptions.count) subscriptions, \(s.queue.count) queued, \(s.inflight.count) in flight)")
        return s
    }

    /// The old node's rest (what reached the session there after the export; nil: nothing or
    /// no answer) goes in front of what this node held meanwhile; a message that came both ways
    /// is delivered once. Any thread.
    func finishArrival(_ s: Session, rest: [UInt8]?) {
        runOnOwner(s) { [unowned self] ctx in
            guard var held = s.arrivalHold else { return }
            s.arrivalHold = nil
            var rested: [(DeliveryRecord, MessageRecord)] = []
            if let rest {
                do { rested = try SessionTransfer.decodeRest(rest) } catch {
                    self.logger.error("client \(s.clientId): the rest of the session from the other node does not decode (\(error)); dropped")
                }
            }
            let wallNow = wallClockMilliseconds()
            for (d, r) in rested {
                let m = Persistence.message(r, wallNow: wallNow, monoNow: ctx.loop.now)
                if let i = held.firstIndex(where: { $0.qos == d.qos && $0.message.sameContent(as: m) }) {
                    // Published while both nodes had interest: came here too, delivered once.
                    self.enqueue(held.remove(at: i), on: ctx)
                } else {
                    self.dispatch(Delivery(session: s, message: m, qos: d.qos, retain: d.retain, identifiers: d.identifiers, group: nil), on: ctx)
                }
            }
            for d in held { self.enqueue(d, on: ctx) }
            if let then = s.afterArrival {   // a move that waited for this one to complete
                s.afterArrival = nil
                then()
            }
        }
    }
}
