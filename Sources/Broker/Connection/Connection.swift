#if canImport(Glibc)
import Glibc
#endif
import DequeModule
import EventLoop
import Logging
import MQTTCodec
import RuleEngine

/// One client's network connection: reads and decodes packets, hands them to the handlers
/// (`Connection+*.swift`, one per packet type), and writes encoded packets back. Owned by one
/// loop; it holds no buffers while idle beyond a partial packet.
final class Connection: TimerNode, EventHandler, FlushTarget {
    enum State: UInt8 { case awaitingConnect, attaching, connected, closed }

    // Layout: Swift keeps stored properties in declaration order, so words come first, then
    // 4-, 2- and 1-byte fields, and what few connections use sits in `extras`: an idle
    // connection is 442 bytes without this, and there may be a million of them. The connection
    // is also its own keepalive timer (TimerNode): no timer object or closure per connection.
    let context: LoopContext
    /// The listener that accepted it (per-listener limits and certificate identity options).
    let listener: Listener
    /// Set on TLS listeners; OpenSSL then reads and writes the socket.
    let tls: TLSStream?
    let peer: String
    var clientId = ""
    /// The user name the client is known by (certificate identity, JWT subject or CONNECT's).
    var username: String?
    var session: Session?
    /// Identity and compiled ACL from CONNECT (Auth/); nil when nothing is authorized per client.
    var auth: ConnectionAuth?
    private var extras: ConnectionExtras?
    /// Bytes of an incomplete packet carried over to the next read.
    private var partial: [UInt8] = []
    private var output = WriteQueue()
    /// Acknowledgements waiting (AckGate.swift), oldest first.
    var gates = Deque<AckGate>()
    /// For the admin API: wall-clock ms of CONNACK, PUBLISH packets in and out, bytes in and out.
    var connectedAt: Int64 = 0
    var receivedPublishes = 0
    var sentPublishes = 0
    var receivedBytes = 0
    var sentBytes = 0
    var lastActivity: UInt64

    let fd: Int32
    /// The settings generation `auth` was compiled against.
    var authGeneration: UInt32 = 0
    private var maximumPacketSize32: UInt32
    private var clientMaximumPacketSize32 = UInt32.max
    private var keepAliveMilliseconds32: UInt32 = 0
    private var heldPubAcks32: Int32 = 0
    /// What this connection's CONNACK offers: fixed for its life, whatever a reload changes
    /// later (the client sized its own behaviour to them; the alias table is sized by one).
    private let offeredReceiveMaximum16: UInt16
    private let offeredTopicAliasMaximum16: UInt16
    private var clientReceiveMaximum16: UInt16 = 65535
    var clientTopicAliasMaximum: UInt16 = 0

    var state: State = .awaitingConnect
    var version: ProtocolVersion = .v3_1_1
    /// The peer is on this machine (127.0.0.0/8 or ::1): anonymous access by default.
    let fromLoopback: Bool
    /// The TLS client presented a certificate the listener's CA verified: it is not anonymous.
    var hasVerifiedCertificate = false
    private var handshakeWantsWrite = false
    private var flushScheduled = false
    private var writeInterest = false
    /// Why the socket is not being read; reading resumes when every reason is gone.
    struct ReadPause: OptionSet {
        let rawValue: UInt8
        /// CONNECT is being authenticated or the session handed over (Connection+Connect.swift).
        static let attaching = ReadPause(rawValue: 1)
        /// Over `max_publish_rate` / `max_publish_bytes_rate` (Connection+Publish.swift).
        static let throttled = ReadPause(rawValue: 2)
        /// Feeds a bridge whose buffer is full, with `on_full = backpressure`.
        static let bridgeFull = ReadPause(rawValue: 4)
    }
    private var readPauses: ReadPause = []
    /// Resumed a present session and has sent no new PUBLISH yet: an unknown v3.1.1 PUBREL is
    /// a resend [MQTT-4.4.0-1], not a protocol error.
    var resendingAfterReconnect = false
    /// v5 DISCONNECT 0x00 received: no will.
    var disconnectedNormally = false
    var cleanStart = true
    /// v5 Request Problem Information: reason strings only when the client wants them.
    var wantsProblemInformation = true

    var broker: Broker { context.broker }
    var limits: BrokerConfiguration.Limits { context.settings.limits }
    var loop: EventLoop { context.loop }
    var logger: Logger { context.broker.logger }
    /// Who a log line is about, as fields (`log_format = "json"` makes them JSON members).
    var logFields: Logger.Metadata {
        var m: Logger.Metadata = ["peer": .string(peer)]
        if !clientId.isEmpty { m["clientid"] = .string(clientId) }
        if let username { m["username"] = .string(username) }
        return m
    }
    private var readPaused: Bool { !readPauses.isEmpty }

    var offeredReceiveMaximum: Int { Int(offeredReceiveMaximum16) }
    var offeredTopicAliasMaximum: Int { Int(offeredTopicAliasMaximum16) }
    /// Limits the client declared (v5 CONNECT properties).
    var clientMaximumPacketSize: Int {
        get { clientMaximumPacketSize32 == .max ? .max : Int(clientMaximumPacketSize32) }
        set { clientMaximumPacketSize32 = UInt32(clamping: newValue) }
    }
    var clientReceiveMaximum: Int {
        get { Int(clientReceiveMaximum16) }
        set { clientReceiveMaximum16 = UInt16(clamping: newValue) }
    }
    /// At most 1.5 × 65,535 s.
    var keepAliveMilliseconds: UInt64 {
        get { UInt64(keepAliveMilliseconds32) }
        set { keepAliveMilliseconds32 = UInt32(clamping: newValue) }
    }
    /// PUBACKs waiting for the durable store (they count against Receive Maximum).
    var heldPubAcks: Int {
        get { Int(heldPubAcks32) }
        set { heldPubAcks32 = Int32(clamping: newValue) }
    }
    /// The user name the ACL is compiled for, when it differs from CONNECT's.
    var aclUsername: String? {
        get { extras?.aclUsername }
        set { if newValue != nil || extras != nil { madeExtras().aclUsername = newValue } }
    }
    var jwtClaims: JWTClaims? {
        get { extras?.jwtClaims }
        set { if newValue != nil || extras != nil { madeExtras().jwtClaims = newValue } }
    }
    /// The client certificate's CN or subject, when the listener uses it as the username.
    var certificateIdentity: String? {
        get { extras?.certificateIdentity }
        set { if newValue != nil || extras != nil { madeExtras().certificateIdentity = newValue } }
    }
    var will: Will? {
        get { extras?.will }
        set { if newValue != nil || extras != nil { madeExtras().will = newValue } }
    }
    /// Inbound topic aliases (v5), allocated on first use.
    var inboundAliases: [String?] {
        get { extras?.inboundAliases ?? [] }
        _modify { yield &madeExtras().inboundAliases }
    }
    /// Outbound topic aliases chosen by us (v5), allocated on first use.
    var outboundAliases: [String: UInt16] {
        get { extras?.outboundAliases ?? [:] }
        _modify { yield &madeExtras().outboundAliases }
    }
    /// Publish rate limits, when configured (Connection+Publish.swift `chargePublish`).
    var publishRate: PublishRate? {
        get { extras?.publishRate }
        set { if newValue != nil || extras != nil { madeExtras().publishRate = newValue } }
    }
    /// The packet decoder for this connection's protocol version and packet size limit.
    var decoder: PacketDecoder { PacketDecoder(version: version, maximumPacketSize: Int(maximumPacketSize32)) }
    private func madeExtras() -> ConnectionExtras {
        if let extras { return extras }
        let e = ConnectionExtras()
        extras = e
        return e
    }

    init(fd: Int32, peer: String, fromLoopback: Bool, context: LoopContext, listener: Listener, tls: TLSStream?) {
        self.fd = fd
        self.peer = peer
        self.fromLoopback = fromLoopback
        self.context = context
        self.listener = listener
        self.tls = tls
        let limits = context.settings.limits
        self.maximumPacketSize32 = UInt32(clamping: limits.maxPacketSize)
        self.offeredReceiveMaximum16 = UInt16(clamping: limits.receiveMaximum)
        self.offeredTopicAliasMaximum16 = UInt16(clamping: limits.maxTopicAlias)
        self.lastActivity = context.loop.now
        super.init()
        if limits.maxPublishRate > 0 || limits.maxPublishBytesRate > 0 {
            publishRate = PublishRate(messages: limits.maxPublishRate, bytes: limits.maxPublishBytesRate, now: context.loop.now)
        }
    }

    /// Registers with the loop and arms the CONNECT timeout.
    func start() throws(SystemError) {
        try loop.register(fd: fd, handler: self)
        armKeepAlive(milliseconds: UInt64(limits.connectTimeout) * 1000)
    }

    // MARK: Reading

    func handleReadable() {
        // One read per wake-up: level-triggered epoll brings a busy client back next round,
        // so a flood from some clients cannot starve the others (or new connections) of the loop.
        guard state != .closed, !readPaused else { return }
        if let tls {
            if tls.isHandshakeComplete {
                readTLS(tls)
            } else if tls.hasStarted || context.mayStartHandshake() {
                continueHandshake(tls)
            }
            return
        }
        let result: IOResult<Int>
        do {
            result = try context.readScratch.withUnsafeMutableBytes { buf throws(SystemError) in
                try Socket.read(fd, into: buf)
            }
        } catch {
            close(reason: "read failed: \(error)")
            return
        }
        guard case .done(let n) = result else { return }
        if n == 0 {
            close(reason: "connection closed by peer")
            return
        }
        consumeRead(n)
    }

    /// Decodes what a read put in the loop's scratch buffer.
    private func consumeRead(_ n: Int) {
        lastActivity = loop.now
        BrokerStats.add(broker.stats.bytesReceived, n)
        receivedBytes &+= n
        if partial.isEmpty {
            let used = context.readScratch.withUnsafeBytes { process(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            if used < n, state != .closed {
                partial.append(contentsOf: context.readScratch[used..<n])
            }
        } else {
            partial.append(contentsOf: context.readScratch[0..<n])
            processPartial()
        }
    }

    // MARK: TLS

    private func continueHandshake(_ tls: TLSStream) {
        switch tls.handshake() {
        case .done:
            context.counters.tlsHandshakes &+= 1
            setHandshakeWantsWrite(false)
            hasVerifiedCertificate = listener.configuration.tls?.caFile != nil && tls.hasVerifiedPeerCertificate
            if listener.configuration.useIdentityAsUsername || listener.configuration.useSubjectAsUsername {
                guard let identity = tls.peerIdentity(wholeSubject: listener.configuration.useSubjectAsUsername) else {
                    close(reason: "TLS client sent no certificate identity, which this listener uses as the username")
                    return
                }
                certificateIdentity = identity
            }
            logger.debug("TLS from \(peer): \(tls.protocolVersion)\(tls.resumed ? ", resumed" : "")")
            // Application data may have arrived with the last handshake flight.
            readTLS(tls)
        case .wantRead: setHandshakeWantsWrite(false)
        case .wantWrite: setHandshakeWantsWrite(true)
        case .closed:
            context.counters.tlsHandshakeFailures &+= 1
            close(reason: "connection closed during the TLS handshake")
        case .failed(let e):
            context.counters.tlsHandshakeFailures &+= 1
            close(reason: "\(e)")
        }
    }

    private func setHandshakeWantsWrite(_ on: Bool) {
        guard handshakeWantsWrite != on, state != .closed else { return }
        handshakeWantsWrite = on
        loop.setInterest(fd: fd, readable: !readPaused, writable: writeInterest || on)
    }

    /// Reads one TLS record's worth, then whatever OpenSSL already holds decrypted (the socket
    /// will not signal those bytes again).
    private func readTLS(_ tls: TLSStream) {
        repeat {
            guard state != .closed, !readPaused else { return }
            let r = context.readScratch.withUnsafeMutableBytes { tls.read(into: $0) }
            switch r {
            case .done(let n): consumeRead(n)
            case .wantRead: setHandshakeWantsWrite(false); return
            case .wantWrite: setHandshakeWantsWrite(true); return
            case .closed: close(reason: "connection closed by peer"); return
            case .failed(let e): close(reason: "\(e)"); return
            }
        } while tls.hasBufferedPlaintext
    }

    private func processPartial() {
        let used = partial.withUnsafeBytes { process($0) }
        guard state != .closed else { return }
        partial.removeFirst(used)
        if partial.isEmpty && partial.capacity > 16 * 1024 { partial = [] }
    }

    /// Decodes and handles every complete packet; returns the bytes consumed.
    private func process(_ bytes: UnsafeRawBufferPointer) -> Int {
        var offset = 0
        while offset < bytes.count, state != .closed, state != .attaching, readPauses.isEmpty {
            if let refusal = refusedFromFixedHeader(bytes[offset]) {
                protocolViolation(.protocolError, refusal)
                break
            }
            do {
                guard let (packet, used) = try decoder.decode(UnsafeRawBufferPointer(rebasing: bytes[offset...])) else { break }
                offset += used
                BrokerStats.add(broker.stats.messagesReceived, 1)
                handle(packet)
                if publishRate != nil, case .publish = packet, state == .connected { chargePublish(bytes: used) }
            } catch {
                protocolViolation(error.reasonCode, error.message)
                break
            }
        }
        return offset
    }

    /// Packet types only a server sends (CONNACK, SUBACK, UNSUBACK, PINGRESP), and AUTH after
    /// a v5 CONNECT without an Authentication Method (the only kind accepted), are a Protocol
    /// Error whatever their body holds: decided from the first byte, before the body is read.
    private func refusedFromFixedHeader(_ first: UInt8) -> String? {
        guard state == .connected else { return nil }
        switch first >> 4 {
        case 2: return "CONNACK is a server-to-client packet"
        case 9: return "SUBACK is a server-to-client packet"
        case 11: return "UNSUBACK is a server-to-client packet"
        case 13: return "PINGRESP is a server-to-client packet"
        case 15 where version == .v5: return "AUTH without an Authentication Method in CONNECT"
        default: return nil
        }
    }

    /// Stops reading, e.g. while the session is handed over from another loop (later packets
    /// must wait for CONNACK's session); bytes already read stay in `partial`.
    func pauseReading(_ reason: ReadPause = .attaching) {
        let wasPaused = readPaused
        readPauses.insert(reason)
        if !wasPaused { loop.setInterest(fd: fd, readable: false, writable: writeInterest || handshakeWantsWrite) }
    }

    /// Lifts one reason; once none is left, handles what was already read, then reads again.
    func resumeReading(_ reason: ReadPause = .attaching) {
        guard readPauses.contains(reason), state != .closed else { return }
        readPauses.remove(reason)
        guard !readPaused else { return }
        loop.setInterest(fd: fd, readable: true, writable: writeInterest || handshakeWantsWrite)
        if !partial.isEmpty { processPartial() }
    }

    /// After a throttle pause (from its timer, never inside a read): also drains what OpenSSL
    /// already decrypted, which the socket will not signal again.
    func resumeAfterThrottle(_ reason: ReadPause = .throttled) {
        resumeReading(reason)
        if let tls, tls.isHandshakeComplete, tls.hasBufferedPlaintext, !readPaused, state != .closed { readTLS(tls) }
    }

    private func handle(_ packet: Packet) {
        if state == .awaitingConnect {
            guard case .connect(let c) = packet else {
                // [MQTT-3.1.0-1]: the first packet must be CONNECT.
                close(reason: "first packet was \(packet.type), not CONNECT")
                return
            }
            handleConnect(c)
            return
        }
        switch packet {
        case .connect:
            protocolViolation(.protocolError, "second CONNECT [MQTT-3.1.0-2]")
        case .publish(let p): handlePublish(p)
        case .puback(let a): handlePubAck(a)
        case .pubrec(let a): handlePubRec(a)
        case .pubrel(let a): handlePubRel(a)
        case .pubcomp(let a): handlePubComp(a)
        case .subscribe(let s): handleSubscribe(s)
        case .unsubscribe(let u): handleUnsubscribe(u)
        case .pingreq: send(.pingresp)
        case .disconnect(let d): handleDisconnect(d)
        case .auth:
            protocolViolation(.protocolError, "AUTH without an authentication method")
        case .connack, .suback, .unsuback, .pingresp:
            protocolViolation(.protocolError, "\(packet.type) is a server-to-client packet")
        }
    }

    // MARK: Keepalive

    func armKeepAlive(milliseconds: UInt64) {
        keepAliveMilliseconds = milliseconds
        if milliseconds == 0 {
            loop.cancel(self)
            return
        }
        loop.schedule(self, afterMilliseconds: milliseconds)
    }

    override func timerFired() { keepAliveExpired() }

    /// Due time reached: idle for the whole period, or reschedule for what is left. Checking
    /// here instead of rescheduling on every packet keeps reads free of timer work.
    private func keepAliveExpired() {
        guard state != .closed else { return }
        // Not read because it publishes too fast is not idle.
        if !readPauses.isDisjoint(with: [.throttled, .bridgeFull]) { lastActivity = loop.now }
        let idle = loop.now &- lastActivity
        if idle >= keepAliveMilliseconds {
            if let tls, !tls.isHandshakeComplete {
                close(reason: "TLS handshake not completed within \(limits.connectTimeout) s")
            } else if state == .awaitingConnect {
                close(reason: "no CONNECT within \(limits.connectTimeout) s")
            } else if state == .attaching && session == nil {
                // Still checking credentials or waiting for the session: no CONNACK was sent,
                // so no DISCONNECT may be either.
                close(reason: "CONNECT not completed within \(limits.connectTimeout) s")
            } else {
                disconnect(.keepAliveTimeout, "keepalive timeout")
            }
            return
        }
        loop.schedule(self, afterMilliseconds: keepAliveMilliseconds - idle)
    }

    // MARK: Writing

    /// Queues a packet; it leaves with the rest of this iteration's output.
    func send(_ packet: Packet) {
        guard state != .closed else { return }
        let v = version
        output.append { PacketEncoder.encode(packet, version: v, into: &$0) }
        BrokerStats.add(broker.stats.messagesSent, 1)
        requestFlush()
    }

    /// A PUBLISH whose payload is queued by reference (the shared message's array), not copied.
    func sendLargePublish(_ packet: PublishPacket) {
        guard state != .closed else { return }
        let v = version
        output.append { PacketEncoder.encodePublishHeader(packet, version: v, into: &$0) }
        output.appendChunk(packet.payload)
        BrokerStats.add(broker.stats.messagesSent, 1)
        requestFlush()
    }

    var pendingOutputBytes: Int { output.pendingBytes }

    private func requestFlush() {
        if !flushScheduled && !writeInterest {
            flushScheduled = true
            loop.scheduleFlush(self)
        }
    }

    func flushPendingOutput() {
        flushScheduled = false
        guard state != .closed else { return }
        flushNow()
    }

    @discardableResult
    private func flushNow() -> Bool {
        let before = output.pendingBytes
        let result: WriteQueue.FlushResult
        if let tls {
            guard tls.isHandshakeComplete else { return false }
            result = flushTLS(tls)
        } else {
            result = output.flush(to: fd)
        }
        BrokerStats.add(broker.stats.bytesSent, before - output.pendingBytes)
        sentBytes &+= before - output.pendingBytes
        switch result {
        case .flushed:
            // A connection that has only had control packets (CONNACK, SUBACK, PINGRESP) keeps
            // no write buffer while it idles; one that carries messages keeps its small one.
            if sentPublishes == 0 && receivedPublishes == 0 { output.releaseStorage() }
            if writeInterest {
                writeInterest = false
                loop.setInterest(fd: fd, readable: !readPaused, writable: handshakeWantsWrite)
            }
            return true
        case .wouldBlock:
            if !writeInterest {
                writeInterest = true
                loop.setInterest(fd: fd, readable: !readPaused, writable: true)
            }
            return false
        case .failed(let error):
            close(reason: "write failed: \(error)")
            return false
        }
    }

    func handleWritable() {
        guard state != .closed else { return }
        if let tls, handshakeWantsWrite {
            if tls.isHandshakeComplete { setHandshakeWantsWrite(false); readTLS(tls) } else { continueHandshake(tls) }
            if state == .closed { return }
        }
        flushNow()
    }

    private func flushTLS(_ tls: TLSStream) -> WriteQueue.FlushResult {
        var failure: TLSError?
        var closed = false
        let all = output.flush { bytes in
            switch tls.write(bytes) {
            case .done(let n): return n
            case .wantRead, .wantWrite: return nil
            case .closed: closed = true; return nil
            case .failed(let e): failure = e; return nil
            }
        }
        if all { return .flushed }
        if let failure { return .failed(SystemError(call: failure.description, errno: EIO)) }
        if closed { return .failed(SystemError(call: "TLS write", errno: EPIPE)) }
        return .wouldBlock
    }

    // MARK: Closing

    /// A protocol violation: v5 clients get DISCONNECT with the reason code first; v3 clients
    /// are simply closed (MQTT 3.1.1 has no server DISCONNECT).
    func protocolViolation(_ reason: ReasonCode, _ message: String) {
        if state == .awaitingConnect && reason == .unsupportedProtocolVersion {
            // [MQTT-3.1.2-2]: answer an unknown protocol level with CONNACK 0x01, then close.
            version = .v3_1_1
            send(.connack(ConnAckPacket(sessionPresent: false, reasonCode: .v3UnacceptableProtocolVersion)))
            close(reason: message)
            return
        }
        logger.info("client \(clientId.isEmpty ? peer : clientId): \(message); disconnecting with \(reason)")
        disconnect(reason, message)
    }

    /// Sends DISCONNECT with `reason` to a connected v5 client, then closes.
    func disconnect(_ reason: ReasonCode, _ message: String) {
        guard state != .closed else { return }
        if version == .v5 && state != .awaitingConnect {
            var props = Properties()
            if wantsProblemInformation && reason.isError { props.reasonString = message }
            send(.disconnect(DisconnectPacket(reasonCode: reason, properties: props)))
        }
        close(reason: message)
    }

    /// Flushes what can be flushed, closes the socket and lets the session know.
    func close(reason: String) {
        guard state != .closed else { return }
        let wasConnected = state == .connected
        // Closed before the last flush: a failing flush must not come back here.
        state = .closed
        if !output.isEmpty {
            let before = output.pendingBytes
            if let tls { _ = flushTLS(tls) } else { _ = output.flush(to: fd) }
            BrokerStats.add(broker.stats.bytesSent, before - output.pendingBytes)
            sentBytes &+= before - output.pendingBytes
        }
        if let tls, tls.isHandshakeComplete { tls.shutdown() }
        loop.cancel(self)
        if let t = publishRate?.timer { loop.cancel(t) }
        if let t = publishRate?.bridgeTimer { loop.cancel(t) }
        // Acknowledgements still waiting go nowhere now (their confirmations find no gate open).
        for g in gates { if let t = g.timer { loop.cancel(t) } }
        gates.removeAll()
        heldPubAcks = 0
        loop.deregister(fd: fd)
        Socket.close(fd)
        output.reset()
        partial = []
        context.remove(self)
        logger.debug("client \(clientId.isEmpty ? peer : clientId) closed: \(reason)", metadata: logFields)
        broker.stats.socketsOpen.wrappingAdd(-1, ordering: .relaxed)
        listener.open.wrappingAdd(-1, ordering: .relaxed)
        if wasConnected {
            broker.stats.clientsConnected.wrappingAdd(-1, ordering: .relaxed)
            context.countConnected(listener, version, -1)
        }
        if wasConnected {
            let (id, user, peer, normal) = (clientId, username, self.peer, disconnectedNormally)
            broker.fireEvent(.clientDisconnected, on: context) {
                // EMQX's reason words.
                let why = normal ? "normal"
                    : reason.contains("taken over") ? "takenover"
                    : reason.contains("keepalive") ? "keepalive_timeout"
                    : reason.contains("shutting down") ? "shutdown"
                    : "tcp_closed"
                return .clientDisconnected(clientid: id, username: user, reason: why, peername: peer,
                                           disconnectedAt: Int64(wallClockMicroseconds() / 1000))
            }
        }
        if let s = session {
            session = nil
            broker.sessionDisconnected(s, connection: self, publishWill: !disconnectedNormally)
        }
    }
}

/// What not every connection needs, allocated when first set: a will, topic aliases, a JWT's
/// claims, a certificate identity, an ACL user name other than CONNECT's.
private final class ConnectionExtras {
    var will: Will?
    var publishRate: PublishRate?
    var inboundAliases: [String?] = []
    var outboundAliases: [String: UInt16] = [:]
    var aclUsername: String?
    var certificateIdentity: String?
    var jwtClaims: JWTClaims?
}
