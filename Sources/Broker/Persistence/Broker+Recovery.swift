import EventLoop
import MQTTCodec
import Storage

/// What start-up found in the store (logged, and returned for tests).
public struct RecoverySummary: Sendable, CustomStringConvertible {
    public var sessions = 0
    public var expiredSessions = 0
    public var queuedMessages = 0
    public var inflightMessages = 0
    public var inboundQoS2 = 0
    public var retained = 0
    public var wills = 0
    public var willsDue = 0
    /// Records of disk-buffered bridges handed back to their bridge, and those kept for a
    /// bridge the configuration no longer has.
    public var bridgeRecords = 0
    public var bridgeRecordsKept = 0
    /// Records that did not decode, or referred to something missing (dropped, named in the log).
    public var damaged = 0
    public var milliseconds: UInt64 = 0

    public var description: String {
        "\(sessions) sessions (\(expiredSessions) expired while the broker was down), \(queuedMessages) queued and "
            + "\(inflightMessages) inflight messages, \(inboundQoS2) inbound QoS 2 ids, \(retained) retained messages, "
            + "\(wills) delayed wills (\(willsDue) due now), \(bridgeRecords) bridge records to deliver"
            + (bridgeRecordsKept > 0 ? " (\(bridgeRecordsKept) more kept for bridges not configured)" : "")
            + ", \(damaged) damaged records dropped, in \(milliseconds) ms"
    }
}

// Start-up: everything in the store becomes broker state again before the first listener
// opens. Sessions are spread over the loops; their expiry and will-delay timers restart from
// wall-clock deadlines, so time the broker was down counts. A record that does not decode is
// logged with its key and dropped; the rest is recovered.

extension Broker {
    func recover() throws -> RecoverySummary {
        var summary = RecoverySummary()
        guard let p = persistence else { return summary }
        let started = monotonicMilliseconds()
        let store = p.store
        let wallNow = wallClockMilliseconds()
        let monoNow = monotonicMilliseconds()
        var cleanup = StoreBatch()
        var damagedKeys: [String] = []
        func damaged(_ ks: Keyspace, _ key: UnsafeRawBufferPointer, _ why: String) {
            summary.damaged += 1
            if damagedKeys.count < 20 { damagedKeys.append("\(ks.rawValue)/\(describeKey(key)): \(why)") }
            cleanup.delete(ks, key: Array(key))
        }

        // When the broker last said it was alive: the moment sessions connected at a crash
        // were cut off.
        var crashedAt = wallNow
        if let alive = try store.get(.meta, key: RecordKeys.alive), let t = try? RecordReader.read(alive, { r throws(StorageError) in try r.u64() }) {
            crashedAt = min(t, wallNow)
        }

        // Messages referenced by deliveries.
        var messages: [UInt64: Message] = [:]
        var maxMessageId: UInt64 = 0
        try store.scan(.messages) { key, value in
            guard key.count == 8, let id = RecordKey.u64(at: 0, in: key) else { damaged(.messages, key, "bad key"); return true }
            maxMessageId = max(maxMessageId, id)
            do {
                var r = RecordReader(value)
                messages[id] = Persistence.message(try MessageRecord.decode(&r), wallNow: wallNow, monoNow: monoNow)
            } catch { damaged(.messages, key, "\(error)") }
            return true
        }

        // Sessions and their inbound QoS 2 ids.
        struct Found { var record: SessionRecord; var inbound: [UInt16] = []; var deliveries: [(UInt64, DeliveryRecord)] = [] }
        var found: [String: Found] = [:]
        var orphanInbound: [(String, UInt16)] = []
        try store.scan(.sessions) { key, value in
            guard let (id, rest) = RecordKeys.split(key), let kind = rest.first else { damaged(.sessions, key, "bad key"); return true }
            switch kind {
            case RecordKind.session where rest.count == 1:
                do {
                    var r = RecordReader(value)
                    let record = try SessionRecord.decode(&r)
                    found[id, default: Found(record: record)].record = record
                } catch { damaged(.sessions, key, "\(error)") }
            case RecordKind.inbound where rest.count == 3:
                let pid = UInt16(rest[1]) << 8 | UInt16(rest[2])
                if found[id] != nil { found[id]!.inbound.append(pid) } else { orphanInbound.append((id, pid)) }
            default:
                damaged(.sessions, key, "unknown record kind")
            }
            return true
        }
        for (id, pid) in orphanInbound {
            if found[id] != nil { found[id]!.inbound.append(pid) } else { cleanup.delete(.sessions, key: RecordKeys.inbound(id, pid)) }
        }

        // Deliveries, in each session's order.
        var refs: [UInt64: Int] = [:]
        var maxSeq: UInt64 = 0
        try store.scan(.deliveries) { key, value in
            guard let (id, rest) = RecordKeys.split(key), rest.count == 8, let seq = RecordKey.u64(at: 0, in: rest) else {
                damaged(.deliveries, key, "bad key"); return true
            }
            maxSeq = max(maxSeq, seq)
            do {
                var r = RecordReader(value)
                let d = try DeliveryRecord.decode(&r)
                guard messages[d.messageId] != nil else { damaged(.deliveries, key, "message \(d.messageId) is missing"); return true }
                guard found[id] != nil else { cleanup.delete(.deliveries, key: Array(key)); return true } // session ended
                found[id]!.deliveries.append((seq, d))
                refs[d.messageId, default: 0] += 1
            } catch { damaged(.deliveries, key, "\(error)") }
            return true
        }
        p.seedIds(message: maxMessageId + 1, seq: maxSeq + 1)

        // Message records nobody refers to any more; the rest get their reference counts back.
        for (id, m) in messages {
            if let n = refs[id] {
                m.storeRef.store(id << Persistence.refBits | UInt64(n), ordering: .relaxed)
            } else {
                cleanup.delete(.messages, key: RecordKeys.message(id))
            }
        }

        // Delayed wills.
        var wills: [String: WillRecord] = [:]
        try store.scan(.wills) { key, value in
            guard let id = String(validating: key, as: UTF8.self) else { damaged(.wills, key, "bad key"); return true }
            do {
                var r = RecordReader(value)
                wills[id] = try WillRecord.decode(&r)
            } catch { damaged(.wills, key, "\(error)") }
            return true
        }

        // Rebuild the sessions.
        var due: [(Session, Will)] = []
        var index = 0
        for (id, f) in found {
            let r = f.record
            let offSince = r.disconnectedAt == 0 ? crashedAt : r.disconnectedAt
            let expiresAt: UInt64? = r.expiryInterval == 0xFFFF_FFFF ? nil : offSince + UInt64(r.expiryInterval) * 1000
            let will = wills.removeValue(forKey: id)
            if let e = expiresAt, e <= wallNow {
                // It expired while the broker was down; a delayed will still goes out [MQTT-3.1.2-8].
                summary.expiredSessions += 1
                cleanup.delete(.sessions, key: RecordKeys.session(id))
                for pid in f.inbound { cleanup.delete(.sessions, key: RecordKeys.inbound(id, pid)) }
                for (seq, d) in f.deliveries {
                    cleanup.delete(.deliveries, key: RecordKeys.delivery(id, seq))
                    if let m = messages[d.messageId] { p.releaseMessage(m, into: &cleanup) }
                }
                if let w = will {
                    cleanup.delete(.wills, key: Array(id.utf8))
                    let s = Session(clientId: id, owner: 0)
                    due.append((s, w.will))
                }
                continue
            }
            let owner = index % contexts.count
            index += 1
            let s = Session(clientId: id, owner: owner)
            s.protocolVersion = r.protocolVersion
            s.expiryInterval = r.expiryInterval
            s.isPersisted = true
            s.setDurable(true)
            for sub in r.subscriptions {
                if tree.subscribe(session: s, filter: sub.filter, options: sub.options, identifier: sub.identifier) {
                    stats.subscriptions.wrappingAdd(1, ordering: .relaxed)
                }
                s.subscriptions[sub.filter] = SubscriptionRecord(options: sub.options, identifier: sub.identifier)
            }
            s.inboundQoS2 = Set(f.inbound)
            summary.inboundQoS2 += f.inbound.count
            for (seq, d) in f.deliveries {
                let m = messages[d.messageId]!
                if let state = d.state.outbound {
                    var o = OutboundMessage(packetId: d.packetId, message: m, qos: d.qos, retain: d.retain,
                                            identifiers: d.identifiers, group: nil, state: state)
                    o.storeSeq = seq
                    s.inflight.append(o)
                    summary.inflightMessages += 1
                } else {
                    var q = QueuedMessage(message: m, qos: d.qos, retain: d.retain, identifiers: d.identifiers, group: nil)
                    q.storeSeq = seq
                    s.queue.append(q)
                    summary.queuedMessages += 1
                }
            }
            s.restorePacketIds()
            stats.messagesStored.wrappingAdd(s.queue.count, ordering: .relaxed)
            if let w = will {
                s.pendingWill = w.will
                s.willPersisted = true
                summary.wills += 1
            }
            sessions.update { $0[id] = s }
            stats.sessions.wrappingAdd(1, ordering: .relaxed)
            summary.sessions += 1
            // Timers belong to the owner loop: armed there once it runs.
            let willAt = will?.publishAt
            contexts[owner].loop.execute { [unowned self] in
                self.armRecoveredTimers(s, expiresAt: expiresAt, willAt: willAt)
            }
        }
        // Wills whose session record is gone (cannot happen in a consistent store): publish them.
        for (id, w) in wills {
            cleanup.delete(.wills, key: Array(id.utf8))
            due.append((Session(clientId: id, owner: 0), w.will))
        }
        summary.willsDue = due.count
        if !due.isEmpty {
            contexts[0].loop.execute { [unowned self] in
                for (s, w) in due { self.sendWill(w, session: s, on: self.contexts[0]) }
            }
        }

        // Retained messages.
        try store.scan(.retained) { key, value in
            do {
                var r = RecordReader(value)
                let m = Persistence.message(try MessageRecord.decode(&r), wallNow: wallNow, monoNow: monoNow)
                if m.isExpired(now: monoNow) || m.payload.isEmpty {
                    cleanup.delete(.retained, key: Array(key))
                } else {
                    _ = retained.store(m)
                    summary.retained += 1
                }
            } catch { damaged(.retained, key, "\(error)") }
            return true
        }
        stats.retained.store(retained.count, ordering: .relaxed)

        // Disk-buffered bridge records, back to their bridge in the order they were written.
        var forBridge: [String: [BridgeRecord]] = [:]
        var unknown: [String: Int] = [:]
        var maxBridgeRecordId: UInt64 = 0
        try store.scan(.bridges) { key, value in
            guard let (bridge, rest) = RecordKeys.split(key), rest.count == 8, let id = RecordKey.u64(at: 0, in: rest) else {
                damaged(.bridges, key, "bad key"); return true
            }
            maxBridgeRecordId = max(maxBridgeRecordId, id)
            guard contexts[0].bridges[bridge] != nil else { unknown[bridge, default: 0] += 1; return true }
            do {
                var r = RecordReader(value)
                let stored = try StoredBridgeRecord.decode(&r)
                let waited = wallNow > stored.submittedAt ? wallNow - stored.submittedAt : 0
                forBridge[bridge, default: []].append(stored.record(storeId: id, submittedAt: monoNow - min(monoNow, waited)))
            } catch { damaged(.bridges, key, "\(error)") }
            return true
        }
        p.seedBridgeRecordId(maxBridgeRecordId + 1)
        for (bridge, records) in forBridge {
            contexts[0].bridges[bridge]!.restore(records, from: "the store")
            summary.bridgeRecords += records.count
        }
        for (bridge, n) in unknown.sorted(by: { $0.key < $1.key }) {
            summary.bridgeRecordsKept += n
            logger.warning("storage: \(n) records of bridge \(bridge) are kept in the store: the configuration has no such bridge (add it back to deliver them)")
        }

        if !cleanup.isEmpty { try store.commitNow(cleanup) }
        summary.milliseconds = monotonicMilliseconds() - started
        for k in damagedKeys { logger.error("storage: dropped damaged record \(k)") }
        logger.info("storage: recovered \(summary)")
        return summary
    }

    /// On the session's owner loop after a restart: the expiry and will-delay timers resume
    /// from their wall-clock deadlines.
    private func armRecoveredTimers(_ s: Session, expiresAt: UInt64?, willAt: UInt64?) {
        guard !s.isDead, s.connection == nil else { return }
        let ctx = contexts[s.owner]
        let now = wallClockMilliseconds()
        if s.pendingWill != nil, let at = willAt {
            armWillTimer(s, afterMilliseconds: at > now ? at - now : 0, on: ctx)
        }
        if let e = expiresAt {
            armExpiryTimer(s, afterMilliseconds: e > now ? e - now : 0, on: ctx)
        }
    }
}
