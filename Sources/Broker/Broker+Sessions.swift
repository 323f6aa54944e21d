import EventLoop
import MQTTCodec

// Session life: CONNECT finds or creates a session (taking it over from another loop when
// needed), a closed connection leaves it to expire, and its end removes every trace.
//
// Hand-over protocol: session state is touched only on its owner loop. A CONNECT on loop B for
// a session owned by loop A asks A (through `execute`) to close the old connection and let go;
// A then sets the owner to B and asks B to finish the CONNECT. Deliveries that reach A after
// that are forwarded to B by `deliverLocally`.

extension Broker {
    /// Finds or creates the session for `clientId` and calls `done` on `connection`'s loop with
    /// the session and whether it was present.
    func attach(_ connection: Connection, clientId: String, cleanStart: Bool, expiry: UInt32,
                done: @escaping (Session, Bool) -> Void) {
        // In a cluster the session may be on another node: ask the registry first (off the
        // loop); what comes back is installed here, then the CONNECT goes on as on one node.
        if let cluster {
            let here = connection.context
            let pending = PendingAttach(connection: connection, done: done)
            cluster.claim(clientId: clientId, cleanStart: cleanStart) { [unowned self] state in
                here.loop.execute {
                    let (connection, done) = (pending.connection, pending.done)
                    // Installed even when the connection went away meanwhile: the other node let it go.
                    var imported: Session?
                    if let state, !cleanStart {
                        let s = self.importSession(clientId: clientId, state, on: here)
                        imported = s
                        // Make before break: the old node lets go once this one's interest is on
                        // NATS (also when the state did not decode: it need not wait 10 s).
                        cluster.afterInterestRegistered { [unowned self] in
                            cluster.collectRest(clientId: clientId) { [unowned self] rest in
                                if let s { self.finishArrival(s, rest: rest) }
                            }
                        }
                    }
                    guard connection.state == .attaching else {   // it went away meanwhile
                        if let s = imported, s.expiryInterval != 0xFFFF_FFFF {
                            s.disconnectedAt = Int64(wallClockMilliseconds())
                            self.armExpiryTimer(s, afterMilliseconds: UInt64(s.expiryInterval) * 1000, on: here)
                        }
                        return
                    }
                    self.attachHere(connection, clientId: clientId, cleanStart: cleanStart, expiry: expiry, done: done)
                }
            }
            return
        }
        attachHere(connection, clientId: clientId, cleanStart: cleanStart, expiry: expiry, done: done)
    }

    private func attachHere(_ connection: Connection, clientId: String, cleanStart: Bool, expiry: UInt32,
                            done: @escaping (Session, Bool) -> Void) {
        let here = connection.context
        enum Found { case created(Session), replaced(old: Session, new: Session), existing(Session) }
        let found: Found = sessions.update { table in
            if let s = table[clientId] {
                if cleanStart {
                    let fresh = Session(clientId: clientId, owner: here.loop.index)
                    table[clientId] = fresh
                    return .replaced(old: s, new: fresh)
                }
                return .existing(s)
            }
            let fresh = Session(clientId: clientId, owner: here.loop.index)
            table[clientId] = fresh
            return .created(fresh)
        }
        switch found {
        case .created(let s):
            stats.sessions.wrappingAdd(1, ordering: .relaxed)
            done(s, false)
        case .replaced(let old, let fresh):
            // The old session's records go on its own loop, later: the fresh one clears the
            // keys they share (its inbound QoS 2 ids) itself, and the old one leaves its record.
            fresh.replacesStored = old.isDurable
            // From now on the old session writes nothing (its connection may close before the
            // takeover reaches its loop, and would store it again after the fresh one's clear).
            old.setDurable(false)
            runOnOwner(old) { ctx in
                self.takeOver(old, on: ctx)
                self.endSession(old, on: ctx)
            }
            done(fresh, false)
        case .existing(let s):
            runOnOwner(s) { ctx in
                if s.isDead {
                    // It expired between the look-up and now: start again.
                    here.loop.execute {
                        self.attachHere(connection, clientId: clientId, cleanStart: cleanStart, expiry: expiry, done: done)
                    }
                    return
                }
                self.takeOver(s, on: ctx)
                if s.isDead {
                    // The old connection had expiry 0, so its session ended with it.
                    here.loop.execute {
                        self.attachHere(connection, clientId: clientId, cleanStart: cleanStart, expiry: expiry, done: done)
                    }
                    return
                }
                if ctx === here {
                    done(s, true)
                } else {
                    s.ownerIndex.store(here.loop.index, ordering: .releasing)
                    here.loop.execute { done(s, true) }
                }
            }
        }
    }

    /// Runs `body` on the loop that owns `session`, following it if it moves meanwhile.
    func runOnOwner(_ session: Session, _ body: @escaping (LoopContext) -> Void) {
        let ctx = contexts[session.owner]
        ctx.loop.execute { [unowned self] in
            if session.owner != ctx.loop.index {
                self.runOnOwner(session, body)
                return
            }
            body(ctx)
        }
    }

    /// A new connection claims `session`: the old connection (if any) is told 0x8E and closed,
    /// and a will waiting for its delay is cancelled [MQTT-3.1.2-8 … 5.0 §3.1.2.5].
    func takeOver(_ session: Session, on ctx: LoopContext) {
        // The new connection writes the session's record; the old one's close must not write
        // one after it (from this loop, its batch could commit after the new owner's).
        session.setDurable(false)
        if let old = session.connection {
            // Its will is published only if it has no delay: the new connection cancels delayed ones.
            if let w = old.will, (w.properties.willDelayInterval ?? 0) > 0 { old.will = nil }
            old.disconnect(.sessionTakenOver, "session taken over by a new connection")
        }
        session.pendingWill = nil
        forgetWill(session, on: ctx)
        if let t = session.willTimer { ctx.loop.cancel(t) }
        if let t = session.expiryTimer { ctx.loop.cancel(t) }
    }

    /// After CONNACK: resend what was in flight (with DUP), then fill the window from the queue.
    func resume(_ session: Session) {
        guard let c = session.connection else { return }
        var i = 0
        while i < session.inflight.count {
            let o = session.inflight[i]
            switch o.state {
            case .awaitingPubAck, .awaitingPubRec:
                // Onward delivery has started, so expiry no longer applies [MQTT-3.3.2-5].
                if !c.sendPublish(o.message, qos: o.qos, retain: o.retain, packetId: o.packetId, dup: true, identifiers: o.identifiers) {
                    session.inflight.remove(at: i)
                    forgetDelivery(session, seq: o.storeSeq, message: o.message, on: c.context)
                    continue
                }
            case .awaitingPubComp:
                c.send(.pubrel(AckPacket(packetId: o.packetId)))
            }
            i += 1
        }
        fillWindow(session)
    }

    /// The connection of `session` closed (on the owner loop).
    func sessionDisconnected(_ session: Session, connection: Connection, publishWill: Bool) {
        let ctx = connection.context
        if session.connection === connection { session.connection = nil }
        session.setConnected(false)
        session.disconnectedAt = Int64(wallClockMicroseconds() / 1000)
        if session.isDead { return }
        if publishWill, let will = connection.will {
            let delay = will.properties.willDelayInterval ?? 0
            if delay == 0 || session.expiryInterval == 0 {
                sendWill(will, session: session, on: ctx)
            } else {
                // Published after the delay or at session end, whichever comes first.
                session.pendingWill = will
                persistWill(session, will, publishAt: wallClockMilliseconds() + UInt64(delay) * 1000, on: ctx)
                armWillTimer(session, afterMilliseconds: UInt64(delay) * 1000, on: ctx)
            }
        }
        sessionWentOffline(session, on: ctx)
    }

    /// What follows a closed connection once its will is dealt with (also `SessionBenchmark`'s
    /// disconnect): a session without expiry ends, a persistent one stays, stored, until expiry.
    func sessionWentOffline(_ session: Session, on ctx: LoopContext) {
        if session.expiryInterval == 0 {
            endSession(session, on: ctx)
            return
        }
        // Unacknowledged shared-subscription messages go to another member of their group.
        handBackShared(session, on: ctx)
        // What must now outlive the connection goes to the store.
        persistOffline(session, on: ctx)
        if session.expiryInterval != 0xFFFF_FFFF {
            armExpiryTimer(session, afterMilliseconds: UInt64(session.expiryInterval) * 1000, on: ctx)
        }
    }

    /// The pending will goes out after `ms` unless a reconnect or the session's end comes first.
    func armWillTimer(_ session: Session, afterMilliseconds ms: UInt64, on ctx: LoopContext) {
        let timer = session.willTimer ?? LoopTimer { [unowned self, unowned session] in
            guard let w = session.pendingWill, !session.isDead else { return }
            let ctx = self.contexts[session.owner]
            session.pendingWill = nil
            self.forgetWill(session, on: ctx)
            self.sendWill(w, session: session, on: ctx)
        }
        session.willTimer = timer
        ctx.loop.schedule(timer, afterMilliseconds: ms)
    }

    /// The session ends after `ms` without a connection.
    func armExpiryTimer(_ session: Session, afterMilliseconds ms: UInt64, on ctx: LoopContext) {
        let timer = session.expiryTimer ?? LoopTimer { [unowned self, unowned session] in
            guard !session.isDead, session.connection == nil else { return }
            self.logger.debug("session \(session.clientId) expired")
            self.endSession(session, on: self.contexts[session.owner])
        }
        session.expiryTimer = timer
        ctx.loop.schedule(timer, afterMilliseconds: ms)
    }

    /// The session ends: a pending will goes out, subscriptions and queued messages go away.
    func endSession(_ session: Session, on ctx: LoopContext) {
        guard !session.isDead else { return }
        if let w = session.pendingWill {
            session.pendingWill = nil
            sendWill(w, session: session, on: ctx)
        }
        handBackShared(session, on: ctx)
        forgetSession(session, on: ctx)
        session.setDurable(false)
        session.isDead = true
        if let t = session.willTimer { ctx.loop.cancel(t) }
        if let t = session.expiryTimer { ctx.loop.cancel(t) }
        for filter in session.subscriptions.keys {
            if tree.unsubscribe(session: session, filter: filter) {
                stats.subscriptions.wrappingAdd(-1, ordering: .relaxed)
            }
        }
        session.subscriptions.removeAll()
        if !session.queue.isEmpty || !session.inflight.isEmpty {
            stats.messagesStored.wrappingAdd(-(session.queue.count + session.inflight.count), ordering: .relaxed)
        }
        session.queue.removeAll()
        session.inflight.removeAll()
        // The client id is free for a new session only once the deletes of this one's records
        // are committed: a new session's record, written from another loop, could otherwise
        // commit first and be deleted (a CONNECT meanwhile finds this one dead and retries).
        ctx.whenCommitted { [unowned self] in
            let removed = self.sessions.update { table -> Bool in
                if table[session.clientId] === session {
                    table[session.clientId] = nil
                    return true
                }
                return false
            }
            // A clean-start replacement already took the registry slot but the count stays the same.
            if removed { self.stats.sessions.wrappingAdd(-1, ordering: .relaxed) }
        }
    }

    func sendWill(_ will: Will, session: Session, on ctx: LoopContext) {
        let now = ctx.loop.now
        var props = Message.passthrough(will.properties)
        props.messageExpiryInterval = nil
        let message = Message(topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain,
                              properties: props,
                              expiresAt: will.properties.messageExpiryInterval.map { now + UInt64($0) * 1000 },
                              publisher: ObjectIdentifier(session), publisherClientId: session.clientId,
                              receivedAt: ctx.wallClock)
        logger.debug("publishing will of \(session.clientId) to \(will.topic)")
        publish(message, from: ctx)
    }
}

/// A CONNECT waiting for the cluster's registry: carried to another thread and back to its loop.
private final class PendingAttach: @unchecked Sendable {
    let connection: Connection
    let done: (Session, Bool) -> Void
    init(connection: Connection, done: @escaping (Session, Bool) -> Void) { self.connection = connection; self.done = done }
}
