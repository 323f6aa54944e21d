import EventLoop
import MQTTCodec
import Storage

// A session moving between nodes (a car reconnecting through the load balancer to another
// node): the node that had it exports it, the one the car is on now imports it before CONNACK.
// The format reuses the store's records (Records.swift), version 1:
//
//   u8 1, bytes SessionRecord, varint n × u16 inbound QoS 2 ids,
//   varint n × (bytes DeliveryRecord, bytes MessageRecord)   queued and inflight, in order

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
            let m = try r.varint()
            guard m <= UInt64(r.remaining / 2) else { throw .corruption("session transfer: \(m) deliveries") }
            var deliveries: [(DeliveryRecord, MessageRecord)] = []
            for _ in 0..<m {
                let d = try RecordReader.read(try r.byteArray()) { r2 throws(StorageError) in try DeliveryRecord.decode(&r2) }
                let msg = try RecordReader.read(try r.byteArray()) { r2 throws(StorageError) in try MessageRecord.decode(&r2) }
                deliveries.append((d, msg))
            }
            try r.expectEnd()
            return Decoded(record: record, inbound: inbound, deliveries: deliveries)
        }
    }
}

extension Broker {
    /// Another node's car took this client id: its connection here gets DISCONNECT 0x8E and
    /// its session leaves this node. `reply` gets the session's state (nil: there was none, or
    /// `discard` said the new connection starts clean). Any thread; `reply` runs on a loop.
    public func exportSession(clientId: String, discard: Bool, reply: @escaping @Sendable ([UInt8]?) -> Void) {
        guard let s = sessions.update({ $0[clientId] }) else { reply(nil); return }
        runOnOwner(s) { [unowned self] ctx in
            guard !s.isDead, self.sessions.update({ $0[clientId] }) === s else { reply(nil); return }
            self.takeOver(s, on: ctx)
            let state = discard ? nil : SessionTransfer.encode(s, wallNow: wallClockMilliseconds(), monoNow: ctx.loop.now)
            // What was queued or in flight travels with the state: not handed back to share
            // groups, and its stored copies go with the session's records.
            for o in s.inflight { self.forgetDelivery(s, seq: o.storeSeq, message: o.message, on: ctx) }
            for q in s.queue { self.forgetDelivery(s, seq: q.storeSeq, message: q.message, on: ctx) }
            self.stats.messagesStored.wrappingAdd(-s.queue.count, ordering: .relaxed)
            s.queue.removeAll()
            s.inflight.removeAll()
            s.pendingWill = nil
            self.endSession(s, on: ctx)
            self.logger.info("client \(clientId): session taken over by another node\(state.map { " (\($0.count) bytes of state sent)" } ?? "")")
            reply(state)
        }
    }

    /// A session arriving from another node, installed on `ctx`'s loop before the CONNECT that
    /// brought it continues (which then finds it here, present).
    func importSession(clientId: String, _ bytes: [UInt8], on ctx: LoopContext) {
        let t: SessionTransfer.Decoded
        do { t = try SessionTransfer.decode(bytes) } catch {
            logger.error("client \(clientId): the session from another node does not decode (\(error)); starting clean")
            return
        }
        if let old = sessions.update({ $0[clientId] }) {
            // A session left here from an earlier visit: the other node's is newer.
            old.setDurable(false)
            runOnOwner(old) { [unowned self] octx in self.endSession(old, on: octx) }
        }
        let s = Session(clientId: clientId, owner: ctx.loop.index)
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
    }
}
