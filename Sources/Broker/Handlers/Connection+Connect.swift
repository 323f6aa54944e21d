import EventLoop
import MQTTCodec
import RuleEngine

extension Connection {
    /// CONNECT (MQTT 3.1.1 §3.1, 5.0 §3.1): validate, then find or create the session.
    func handleConnect(_ c: ConnectPacket) {
        version = c.protocolVersion
        let v5 = version == .v5

        // Enhanced authentication is not offered: 5.0 §4.12 lets the server refuse it.
        if v5, c.properties.authenticationMethod != nil {
            refuseConnect(.badAuthenticationMethod, "enhanced authentication is not supported")
            return
        }

        if limits.strictUTF8, !refuseControlCharacters(c) { return }

        var id = c.clientId
        var assigned: String?
        if id.isEmpty {
            if !v5 && !c.cleanStart {
                // [MQTT-3.1.3-8]: zero-length id with CleanSession=0 is rejected with 0x02.
                refuseConnect(.v3IdentifierRejected, "empty client id with clean session 0")
                return
            }
            id = broker.makeClientId()
            assigned = id
        }
        clientId = id
        username = certificateIdentity ?? c.username

        // [bans], before credentials are checked: a banned client costs no password hash.
        if refuseIfBanned(clientId: assigned == nil ? id : "", username: certificateIdentity ?? c.username) { return }

        var keepAlive = Int(c.keepAlive)
        var serverKeepAlive: UInt16?
        if keepAlive > limits.maxKeepalive || (keepAlive == 0 && limits.maxKeepalive < 65535) {
            if v5 {
                keepAlive = limits.maxKeepalive
                serverKeepAlive = UInt16(limits.maxKeepalive)
            } else if keepAlive > limits.maxKeepalive {
                // v3 has no way to tell the client; refuse as mosquitto does.
                refuseConnect(.v3IdentifierRejected, "keepalive \(keepAlive) s exceeds max_keepalive \(limits.maxKeepalive) s")
                return
            }
        }

        if let w = c.will {
            if !Topic.isValidName(w.topic) || levelCount(w.topic) > limits.maxTopicLevels {
                refuseConnect(v5 ? .topicNameInvalid : .v3IdentifierRejected, "invalid will topic")
                return
            }
            will = w
        }

        // Credentials and the ACL (Connection+Auth.swift), before any session is touched. A
        // password hash or JWT signature check runs on the broker's credential thread, not here:
        // one PBKDF2 check costs ~140 ms, which would stall every client of this loop.
        if context.settings.auth.checksCredentials(username: c.username, password: c.password,
                                                       certificateIdentity: certificateIdentity) {
            state = .attaching
            pauseReading()
            let auth = context.settings.auth
            let (username, password, identity, now, anonymous) = (c.username, c.password, certificateIdentity, context.wallClock, allowsAnonymous)
            let (clientId, assignedId, keepAliveSeconds, cappedKeepAlive) = (id, assigned, keepAlive, serverKeepAlive)
            let loop = self.loop
            // The connection is confined to its loop: the closure only carries it back there.
            let connection = UncheckedSendable(self)
            broker.credentialQueue.async {
                let decision = Authenticator.decide(auth, allowAnonymous: anonymous, username: username, password: password, clientId: clientId,
                                                    certificateIdentity: identity, now: now)
                loop.execute {
                    let conn = connection.value
                    guard conn.state == .attaching else { return } // closed meanwhile
                    conn.state = .awaitingConnect
                    guard conn.applyAuthentication(decision, c, clientId: clientId) else { return }
                    conn.attachSession(c, clientId: clientId, assigned: assignedId, keepAlive: keepAliveSeconds,
                                       serverKeepAlive: cappedKeepAlive)
                    if conn.state == .connected { conn.resumeReading() }
                }
            }
            return
        }
        guard authenticateConnect(c, clientId: id) else { return }
        attachSession(c, clientId: id, assigned: assigned, keepAlive: keepAlive, serverKeepAlive: serverKeepAlive)
    }

    /// The second half of CONNECT, once the client is authenticated: session options,
    /// keepalive, then the session itself.
    func attachSession(_ c: ConnectPacket, clientId id: String, assigned: String?,
                               keepAlive: Int, serverKeepAlive: UInt16?) {
        // Flapping is counted for authenticated clients only, so nobody can get another
        // client's id refused without its credentials.
        if assigned == nil, let why = broker.flappingRefusal(clientId: id, now: loop.now, peer: peer, limits: limits) {
            refuseConnect(.connectionRateExceeded, why, quietly: true) // logged once per ban by flappingRefusal
            return
        }
        let v5 = version == .v5
        cleanStart = c.cleanStart
        var sessionExpiry: UInt32
        var expiryCapped = false
        if v5 {
            let requested = c.properties.sessionExpiryInterval ?? 0
            sessionExpiry = min(requested, limits.maxSessionExpiry)
            expiryCapped = sessionExpiry != requested
            if let rm = c.properties.receiveMaximum { clientReceiveMaximum = Int(rm) }
            if let mps = c.properties.maximumPacketSize { clientMaximumPacketSize = Int(mps) }
            clientTopicAliasMaximum = c.properties.topicAliasMaximum ?? 0
            wantsProblemInformation = (c.properties.requestProblemInformation ?? 1) == 1
        } else {
            sessionExpiry = c.cleanStart ? 0 : 0xFFFF_FFFF
        }

        // Keepalive: the server closes after 1.5 times the period without a packet [MQTT-3.1.2-24].
        armKeepAlive(milliseconds: UInt64(keepAlive) * 1500)
        if keepAlive == 0 { armKeepAlive(milliseconds: 0) }

        state = .attaching
        broker.attach(self, clientId: id, cleanStart: c.cleanStart, expiry: sessionExpiry) { [unowned self] session, present in
            self.completeConnect(session: session, present: present, assignedId: assigned,
                                 serverKeepAlive: serverKeepAlive, expiry: sessionExpiry, expiryCapped: expiryCapped)
        }
        if state == .attaching { pauseReading() }
    }

    /// Runs on this connection's loop once the session is ours.
    private func completeConnect(session: Session, present: Bool, assignedId: String?,
                                 serverKeepAlive: UInt16?, expiry: UInt32, expiryCapped: Bool) {
        guard state == .attaching else {
            // The client went away while its session was being handed over.
            session.setDurable(session.expiryInterval > 0)
            broker.sessionDisconnected(session, connection: self, publishWill: false)
            return
        }
        self.session = session
        session.connection = self
        session.protocolVersion = version
        session.expiryInterval = expiry
        session.setConnected(true)
        // A session that outlives its connection is in the store from now on; one that no
        // longer does leaves it.
        session.setDurable(expiry > 0)
        if expiry > 0 { broker.persistSession(session, on: context) } else { broker.forgetSession(session, on: context) }
        state = .connected
        connectedAt = Int64(wallClockMicroseconds() / 1000)
        context.countConnected(listener, version, 1)
        let n = broker.stats.clientsConnected.wrappingAdd(1, ordering: .relaxed).newValue
        if n > broker.stats.clientsMaximum.load(ordering: .relaxed) {
            broker.stats.clientsMaximum.store(n, ordering: .relaxed)
        }

        var props = Properties()
        if version == .v5 {
            props.assignedClientIdentifier = assignedId
            props.serverKeepAlive = serverKeepAlive
            if offeredReceiveMaximum < 65535 { props.receiveMaximum = UInt16(offeredReceiveMaximum) }
            props.maximumPacketSize = UInt32(limits.maxPacketSize)
            props.topicAliasMaximum = UInt16(offeredTopicAliasMaximum)
            props.retainAvailable = 1
            props.wildcardSubscriptionAvailable = 1
            props.subscriptionIdentifierAvailable = 1
            props.sharedSubscriptionAvailable = 1
            if expiryCapped { props.sessionExpiryInterval = expiry }
        }
        send(.connack(ConnAckPacket(sessionPresent: present, reasonCode: .success, properties: props)))
        resendingAfterReconnect = present
        logger.debug("client \(clientId) connected from \(peer) (\(version), session present: \(present))", metadata: logFields)
        broker.resume(session)
        let (id, user, peer, v, ka, clean, expiryInterval) = (clientId, username, self.peer, version, keepAliveMilliseconds / 1500, !present, expiry)
        broker.fireEvent(.clientConnected, on: context) {
            .clientConnected(clientid: id, username: user, peername: peer, sockname: "",
                             protoName: v == .v3_1 ? "MQIsdp" : "MQTT", protoVer: Int(v.rawValue),
                             keepalive: Int(ka), cleanStart: clean, expiryInterval: Int64(expiryInterval),
                             connectedAt: Int64(wallClockMicroseconds() / 1000))
        }
        resumeReading()
    }

    /// Refuses a client id or user name listed in `[bans]`: v5 CONNACK 0x8A (Banned), v3
    /// return code 5 (not authorized). Logged at most every 10 s broker-wide (a banned client
    /// in a reconnect loop would fill the log), else at debug level.
    func refuseIfBanned(clientId id: String, username: String?) -> Bool {
        guard let why = broker.banReason(clientId: id, username: username, peer: peer, bans: context.settings.bans) else { return false }
        context.counters.bannedRefusals &+= 1
        refuseConnect(.banned, why, quietly: !broker.shouldLog(broker.lastBanLog, now: loop.now))
        return true
    }

    /// CONNACK with a failure code, then close [MQTT-3.2.2-5]. `quietly` logs at debug level,
    /// for refusals a storm would repeat and that are reported elsewhere.
    func refuseConnect(_ code: ReasonCode, _ message: String, quietly: Bool = false) {
        var code = code
        if version != .v5 {
            // Map v5 codes to the six v3 return codes.
            switch code.rawValue {
            case 0x01...0x05: break
            case ReasonCode.badUserNameOrPassword.rawValue: code = .v3BadUserNameOrPassword
            case ReasonCode.notAuthorized.rawValue, ReasonCode.banned.rawValue: code = .v3NotAuthorized
            case ReasonCode.unsupportedProtocolVersion.rawValue: code = .v3UnacceptableProtocolVersion
            case ReasonCode.clientIdentifierNotValid.rawValue: code = .v3IdentifierRejected
            default: code = .v3ServerUnavailable
            }
        }
        var props = Properties()
        if version == .v5 && wantsProblemInformation { props.reasonString = message }
        send(.connack(ConnAckPacket(sessionPresent: false, reasonCode: code, properties: props)))
        if quietly {
            logger.debug("refused connection from \(peer): \(message) (\(code))", metadata: logFields)
        } else {
            logger.info("refused connection from \(peer): \(message) (\(code))", metadata: logFields)
        }
        close(reason: message)
    }

    /// `[limits] strict_utf8`: a client id with a control character or a non-character is
    /// CONNACK 0x85 (v3: 0x02); such a user name or will topic is malformed, CONNACK 0x81 for v5
    /// and a plain close for v3.1.1, which has no return code for it. Returns false when refused.
    private func refuseControlCharacters(_ c: ConnectPacket) -> Bool {
        if let bad = StrictUTF8.firstRefused(in: c.clientId) {
            refuseConnect(.clientIdentifierNotValid, "client id contains \(StrictUTF8.describe(bad)) (strict_utf8)")
            return false
        }
        for (what, text) in [("user name", c.username), ("will topic", c.will?.topic)] {
            guard let text, let bad = StrictUTF8.firstRefused(in: text) else { continue }
            let why = "\(what) contains \(StrictUTF8.describe(bad)) (strict_utf8)"
            if version == .v5 {
                refuseConnect(.malformedPacket, why)
            } else {
                logger.info("refused connection from \(peer): \(why); closing")
                close(reason: why)
            }
            return false
        }
        return true
    }

    func levelCount(_ topic: String) -> Int {
        var n = 1
        for b in topic.utf8 where b == UInt8(ascii: "/") { n += 1 }
        return n
    }
}

/// Carries a loop-confined object through a closure that hops threads and back to its loop.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
