import EventLoop
import MQTTCodec

extension Connection {
    /// Authenticates a CONNECT and compiles this client's ACL (Auth/). Refuses the connection and
    /// returns false on bad credentials (0x86 / v3 4), a disallowed anonymous client or a will
    /// topic the ACL does not let it publish to (0x87 / v3 5).
    /// Only for decisions that need no hashing: `handleConnect` sends password and JWT checks to
    /// the broker's credential thread and applies the result with `applyAuthentication`.
    func authenticateConnect(_ c: ConnectPacket, clientId id: String) -> Bool {
        let decision = Authenticator.decide(context.settings.auth, allowAnonymous: allowsAnonymous,
                                            username: c.username, password: c.password,
                                            clientId: id, certificateIdentity: certificateIdentity, now: context.wallClock)
        return applyAuthentication(decision, c, clientId: id)
    }

    /// The client's compiled ACL for the packet being handled: compiled again, from the same
    /// identity, when a reload changed `[auth]` since (the ACL file re-applied to its next packet).
    var currentAuth: ConnectionAuth? {
        let settings = context.settings
        if authGeneration != UInt32(truncatingIfNeeded: settings.generation) {
            authGeneration = UInt32(truncatingIfNeeded: settings.generation)
            auth = settings.auth.isAuthorizationActive
                ? ConnectionAuth(configuration: settings.auth, username: aclUsername, clientId: clientId, claims: jwtClaims)
                : nil
        }
        return auth
    }

    /// Whether this client may connect without credentials: the listener's policy, or a client
    /// certificate the listener's CA verified (which proves an identity of its own).
    var allowsAnonymous: Bool {
        hasVerifiedCertificate || context.settings.allowsAnonymous(on: listener.configuration, fromLoopback: fromLoopback)
    }

    /// Acts on an authentication decision (made here or on the credential thread).
    func applyAuthentication(_ decision: Authenticator.Decision, _ c: ConnectPacket, clientId id: String) -> Bool {
        let config = context.settings.auth
        authGeneration = UInt32(truncatingIfNeeded: context.settings.generation)
        switch decision {
        case .refuse(let code, let why):
            context.counters.authFailures &+= 1
            refuseConnect(code, why)
            return false
        case .accept(let username, let claims):
            if let username { self.username = username }
            aclUsername = username
            jwtClaims = claims
            // The authenticated name may differ from CONNECT's (a JWT's sub).
            if username != nil, username != (certificateIdentity ?? c.username),
               refuseIfBanned(clientId: "", username: username) { return false }
            guard config.isAuthorizationActive else {
                auth = nil
                return true
            }
            let compiled = ConnectionAuth(configuration: config, username: username, clientId: id, claims: claims)
            if let w = c.will, !compiled.mayPublish(w.topic) {
                refuseConnect(.notAuthorized, "will topic '\(w.topic)' is not allowed by the ACL")
                return false
            }
            auth = compiled
            return true
        }
    }

    /// A PUBLISH the ACL refuses: v5 QoS 1/2 get PUBACK/PUBREC 0x87; v3 (which has no failure
    /// acknowledgement) and QoS 0 are acknowledged as usual and dropped. Counted in
    /// `$SYS/broker/publish/messages/denied`; logged at most once per client per 10 s.
    func denyPublish(_ p: PublishPacket, topic: String) {
        BrokerStats.add(broker.stats.publishDenied, 1)
        let now = loop.now
        if let a = auth {
            a.denialsSinceLog += 1
            if a.lastDenialLog == 0 || now >= a.lastDenialLog + 10_000 {
                logger.notice("client \(clientId): publish to '\(topic)' denied by the ACL (\(a.denialsSinceLog) denied in the last 10 s)", metadata: logFields)
                a.lastDenialLog = now
                a.denialsSinceLog = 0
            }
        }
        let code: ReasonCode = version == .v5 ? .notAuthorized : .success
        switch p.qos {
        case .atMostOnce: break
        case .atLeastOnce: sendAck(.puback(AckPacket(packetId: p.packetId, reasonCode: code)), wrote: false)
        case .exactlyOnce:
            // An error PUBREC ends the v5 exchange [MQTT-4.3.3]; v3 goes on to PUBREL/PUBCOMP,
            // so the id waits for its PUBREL like any other.
            var wrote = false
            if version != .v5, let session, session.inboundQoS2.insert(p.packetId).inserted {
                context.wroteSinceMark = false
                broker.persistInbound(session, p.packetId, add: true, on: context)
                wrote = context.wroteSinceMark
            }
            sendAck(.pubrec(AckPacket(packetId: p.packetId, reasonCode: code)), wrote: wrote)
        }
    }
}
