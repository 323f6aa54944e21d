#if canImport(Glibc)
import Glibc
#endif
import EventLoop
import MQTTCodec

/// What one client connection is asked to do.
public struct MQTTClientOptions {
    public var host: String
    public var port: Int
    /// Local address to bind before connecting (mqbench `--ifaddr`); the port is picked at connect.
    public var sourceAddress: String?
    public var version: ProtocolVersion
    public var clientId: String
    public var username: String?
    public var password: [UInt8]?
    /// Seconds; 0 turns keepalive off.
    public var keepAlive: UInt16
    public var cleanStart: Bool
    /// v5 Session Expiry Interval (seconds); ignored before v5.
    public var sessionExpiry: UInt32?
    public var will: Will?
    /// Socket connect plus CONNACK must complete within this.
    public var connectTimeoutMilliseconds: UInt64
    /// Outgoing QoS 1/2 messages awaiting their final ack; also capped by the server's v5 Receive Maximum.
    public var maxInflight: Int
    /// TLS client context (shared by many connections); nil for plain TCP. The server's
    /// certificate is checked against `host` when the context verifies peers.
    public var tls: TLSContext?

    public init(host: String, port: Int, clientId: String, version: ProtocolVersion = .v5,
                sourceAddress: String? = nil, username: String? = nil, password: [UInt8]? = nil,
                keepAlive: UInt16 = 60, cleanStart: Bool = true, sessionExpiry: UInt32? = nil, will: Will? = nil,
                connectTimeoutMilliseconds: UInt64 = 10_000, maxInflight: Int = 65_535) {
        self.host = host; self.port = port; self.clientId = clientId; self.version = version
        self.sourceAddress = sourceAddress; self.username = username; self.password = password
        self.keepAlive = keepAlive; self.cleanStart = cleanStart; self.sessionExpiry = sessionExpiry
        self.will = will; self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
        self.maxInflight = maxInflight
    }
}

/// Why a connection ended (nil in `closed` means we disconnected on request).
public enum MQTTClientError: Error, Equatable, CustomStringConvertible {
    /// The TCP connect failed (errno).
    case connectFailed(Int32)
    /// CONNACK with a non-zero return / reason code.
    case refused(ReasonCode)
    /// No TCP connection or no CONNACK within the connect timeout.
    case connectTimeout
    /// The server closed the socket.
    case closedByPeer
    /// The server sent a v5 DISCONNECT with this reason code.
    case serverDisconnect(ReasonCode)
    /// No PINGRESP within the keepalive period.
    case keepAliveTimeout
    /// The server sent something we cannot accept.
    case protocolError(String)
    /// A read or write failed (errno).
    case ioError(Int32)
    /// The TLS handshake or a TLS read/write failed.
    case tlsFailed(String)

    /// A short grouping key, e.g. for counting failures by reason.
    public var key: String {
        switch self {
        case .connectFailed(let e): "connect error: \(Self.errnoName(e))"
        case .refused(let rc): "refused \(rc)"
        case .connectTimeout: "timeout"
        case .closedByPeer: "closed"
        case .serverDisconnect(let rc): "server disconnect \(rc)"
        case .keepAliveTimeout: "keepalive timeout"
        case .protocolError: "protocol error"
        case .ioError(let e): "io error: \(Self.errnoName(e))"
        case .tlsFailed: "tls error"
        }
    }

    public var description: String {
        if case .protocolError(let m) = self { return "protocol error: \(m)" }
        if case .tlsFailed(let m) = self { return "tls error: \(m)" }
        return key
    }

    static func errnoName(_ e: Int32) -> String {
        switch e {
        case ECONNREFUSED: "ECONNREFUSED"
        case ECONNRESET: "ECONNRESET"
        case ETIMEDOUT: "ETIMEDOUT"
        case EADDRNOTAVAIL: "EADDRNOTAVAIL"
        case EADDRINUSE: "EADDRINUSE"
        case EMFILE: "EMFILE"
        case ENFILE: "ENFILE"
        case EHOSTUNREACH: "EHOSTUNREACH"
        case ENETUNREACH: "ENETUNREACH"
        case EPIPE: "EPIPE"
        default: "errno \(e)"
        }
    }
}

/// Callbacks from a connection to its owner, on the connection's loop.
public protocol MQTTConnectionDelegate: AnyObject {
    /// CONNACK accepted.
    func connectionDidConnect(_ c: MQTTConnection, sessionPresent: Bool, connectMicroseconds: UInt64)
    /// SUBACK for `packetId`: one code per filter.
    func connection(_ c: MQTTConnection, didSubscribe packetId: UInt16, codes: [ReasonCode])
    /// An application message arrived (its ack is already queued; a QoS 2 duplicate is not reported twice).
    func connection(_ c: MQTTConnection, didReceive publish: PublishPacket)
    /// An outgoing QoS 1/2 message finished (PUBACK / PUBCOMP, or an error PUBREC); the window has room.
    func connection(_ c: MQTTConnection, didComplete packetId: UInt16, reasonCode: ReasonCode)
    /// Output that had filled the socket is written out: more may be queued.
    func connectionWritable(_ c: MQTTConnection)
    /// The connection is gone; `error` nil means `disconnect()` finished.
    func connection(_ c: MQTTConnection, didClose error: MQTTClientError?)
}

/// Socket reads land here, one per loop, shared by all its connections; only a partial packet
/// is copied into the connection.
public final class ReadScratch {
    public let buffer: UnsafeMutableRawBufferPointer
    public init(size: Int = 64 * 1024) {
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
    }
    deinit { buffer.deallocate() }
}

/// One MQTT client connection on an `EventLoop`: non-blocking connect, CONNECT/CONNACK,
/// SUBSCRIBE, PUBLISH at QoS 0/1/2 with their ack flows and an inflight window, inbound
/// PUBLISH with acks, PINGREQ keepalive and DISCONNECT. No reconnect and no retransmission
/// (nothing is lost on a live TCP connection). Loop-confined: call it only on its loop.
public final class MQTTConnection: EventHandler, FlushTarget {
    public enum State { case idle, connecting, tlsHandshake, awaitingConnAck, connected, disconnecting, closed }

    public let options: MQTTClientOptions
    public let loop: EventLoop
    public weak var delegate: MQTTConnectionDelegate?
    /// Owner's tag (e.g. its index), untouched by the connection.
    public var tag: Int = 0
    public private(set) var state: State = .idle
    public private(set) var fd: Int32 = -1

    private let scratch: ReadScratch
    private var decoder: PacketDecoder
    private var partial: [UInt8] = []
    private var output = WriteQueue()
    private var flushScheduled = false
    private var writeInterest = false
    private var timer: LoopTimer?
    private var startedAt: UInt64 = 0
    private var lastSent: UInt64 = 0
    private var pingOutstanding = false
    private var tlsStream: TLSStream?
    private var tlsWantsWrite = false

    /// Outgoing packet identifiers in use (bit set), allocated on first QoS > 0 publish.
    private var outgoingIds: [UInt64] = []
    /// Inbound QoS 2 identifiers between PUBREC and PUBREL.
    private var incomingQoS2: [UInt64] = []
    private var nextPacketId: UInt16 = 1
    public private(set) var inflight = 0
    /// The window: `options.maxInflight`, lowered by the server's Receive Maximum.
    public private(set) var window: Int

    public init(loop: EventLoop, scratch: ReadScratch, options: MQTTClientOptions) {
        self.loop = loop
        self.scratch = scratch
        self.options = options
        self.decoder = PacketDecoder(version: options.version)
        self.window = max(1, min(options.maxInflight, 65_535))
    }

    public var isConnected: Bool { state == .connected }
    /// Connected and below the inflight window.
    public var canPublishQoS: Bool { state == .connected && inflight < window }
    /// Bytes queued but not yet accepted by the socket.
    public var pendingOutputBytes: Int { output.pendingBytes }
    /// The socket refused more output; `connectionWritable` follows when it drains.
    public var isWriteBlocked: Bool { writeInterest }

    // MARK: Connecting

    /// Opens the socket and starts the handshake. A synchronous failure (e.g. no free port) is
    /// reported through `didClose` before this returns.
    public func start() {
        precondition(state == .idle, "start() called twice")
        startedAt = monotonicMicroseconds()
        let fd: Int32
        do {
            fd = try Socket.connect(host: options.host, port: options.port, sourceAddress: options.sourceAddress)
        } catch {
            state = .closed
            delegate?.connection(self, didClose: .connectFailed(error.errno))
            return
        }
        self.fd = fd
        state = .connecting
        do {
            try loop.register(fd: fd, handler: self, writable: true)
        } catch {
            Socket.close(fd)
            self.fd = -1
            state = .closed
            delegate?.connection(self, didClose: .connectFailed(error.errno))
            return
        }
        writeInterest = true
        armTimer(options.connectTimeoutMilliseconds)
    }

    private func socketConnected() {
        let err = Socket.connectError(fd)
        if err != 0 {
            close(.connectFailed(err))
            return
        }
        if let ctx = options.tls {
            do {
                tlsStream = try TLSStream(context: ctx, fd: fd, serverName: options.host)
            } catch {
                close(.tlsFailed(error.description))
                return
            }
            state = .tlsHandshake
            writeInterest = false
            continueHandshake()
            return
        }
        state = .awaitingConnAck
        writeInterest = false
        loop.setInterest(fd: fd, readable: true, writable: false)
        sendConnect()
    }

    private func continueHandshake() {
        guard let tls = tlsStream else { return }
        switch tls.handshake() {
        case .done:
            state = .awaitingConnAck
            setTLSWantsWrite(false)
            sendConnect()
        case .wantRead: setTLSWantsWrite(false)
        case .wantWrite: setTLSWantsWrite(true)
        case .closed: close(.closedByPeer)
        case .failed(let e): close(.tlsFailed(e.description))
        }
    }

    private func setTLSWantsWrite(_ on: Bool) {
        tlsWantsWrite = on
        loop.setInterest(fd: fd, readable: true, writable: writeInterest || on)
    }

    private func sendConnect() {
        var props = Properties()
        if options.version == .v5, let e = options.sessionExpiry, e > 0 { props.sessionExpiryInterval = e }
        let connect = ConnectPacket(protocolVersion: options.version, cleanStart: options.cleanStart,
                                    keepAlive: options.keepAlive, clientId: options.clientId, will: options.will,
                                    username: options.username, password: options.password, properties: props)
        send(.connect(connect))
    }

    // MARK: Operations

    /// Subscribes to `subscriptions` under `packetId`.
    public func subscribe(_ subscriptions: [Subscription], packetId: UInt16 = 1) {
        send(.subscribe(SubscribePacket(packetId: packetId, subscriptions: subscriptions)))
    }

    /// Queues a PUBLISH. QoS > 0 takes a packet identifier and a place in the window: returns
    /// the identifier (0 for QoS 0), or nil when not connected or the window is full.
    @discardableResult
    public func publish(topic: String, payload: [UInt8], qos: QoS, retain: Bool = false) -> UInt16? {
        guard state == .connected else { return nil }
        var id: UInt16 = 0
        if qos != .atMostOnce {
            guard inflight < window else { return nil }
            id = allocatePacketId()
            inflight += 1
        }
        let v = options.version
        let p = PublishPacket(qos: qos, retain: retain, topic: topic, packetId: id, payload: payload)
        output.append { PacketEncoder.encode(.publish(p), version: v, into: &$0) }
        lastSent = loop.now
        requestFlush()
        return id
    }

    /// Sends DISCONNECT and closes once it is written (`didClose(nil)`). Before CONNACK it just closes.
    public func disconnect() {
        switch state {
        case .connected:
            send(.disconnect(DisconnectPacket()))
            state = .disconnecting
            if flushNow() { close(nil) } else { armTimer(2000) }
        case .connecting, .tlsHandshake, .awaitingConnAck, .idle:
            close(nil)
        case .disconnecting, .closed:
            break
        }
    }

    /// Closes at once without DISCONNECT (the server publishes the will, if any).
    public func abort() { close(nil) }

    // MARK: Packet identifiers

    private func allocatePacketId() -> UInt16 {
        if outgoingIds.isEmpty { outgoingIds = [UInt64](repeating: 0, count: 1024) }
        while true {
            let id = nextPacketId
            nextPacketId = nextPacketId == 65_535 ? 1 : nextPacketId + 1
            let w = Int(id >> 6), b = UInt64(1) << UInt64(id & 63)
            if outgoingIds[w] & b == 0 {
                outgoingIds[w] |= b
                return id
            }
        }
    }

    /// Frees an outgoing identifier; false when it was not in use.
    private func releasePacketId(_ id: UInt16) -> Bool {
        guard !outgoingIds.isEmpty else { return false }
        let w = Int(id >> 6), b = UInt64(1) << UInt64(id & 63)
        guard outgoingIds[w] & b != 0 else { return false }
        outgoingIds[w] &= ~b
        inflight -= 1
        return true
    }

    // MARK: Reading

    public func handleReadable() {
        if state == .connecting {
            socketConnected()
            if state != .awaitingConnAck && state != .tlsHandshake { return }
        }
        if state == .tlsHandshake {
            continueHandshake()
            if state != .awaitingConnAck { return }
        }
        var budget = 4
        while budget > 0 {
            budget -= 1
            guard state != .closed, state != .idle else { return }
            let result: IOResult<Int>
            if let tls = tlsStream {
                switch tls.read(into: scratch.buffer) {
                case .done(let n): result = .done(n)
                case .wantRead: result = .wouldBlock
                case .wantWrite: setTLSWantsWrite(true); result = .wouldBlock
                case .closed: result = .done(0)
                case .failed(let e): close(.tlsFailed(e.description)); return
                }
                // Decrypted bytes the socket will not signal again.
                if tls.hasBufferedPlaintext { budget = max(budget, 1) }
            } else {
                do {
                    result = try Socket.read(fd, into: scratch.buffer)
                } catch {
                    close(.ioError(error.errno))
                    return
                }
            }
            guard case .done(let n) = result else { return }
            if n == 0 {
                close(state == .disconnecting ? nil : .closedByPeer)
                return
            }
            let bytes = UnsafeRawBufferPointer(rebasing: scratch.buffer[0..<n])
            if partial.isEmpty {
                let used = process(bytes)
                if used < n, state != .closed {
                    partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[used...]))
                }
            } else {
                partial.append(contentsOf: bytes)
                let used = partial.withUnsafeBytes { process($0) }
                if state != .closed {
                    partial.removeFirst(used)
                    if partial.isEmpty && partial.capacity > 16 * 1024 { partial = [] }
                }
            }
            if n < scratch.buffer.count && !(tlsStream?.hasBufferedPlaintext ?? false) { return }
        }
    }

    private func process(_ bytes: UnsafeRawBufferPointer) -> Int {
        var offset = 0
        while offset < bytes.count, state != .closed {
            do {
                guard let (packet, used) = try decoder.decode(UnsafeRawBufferPointer(rebasing: bytes[offset...])) else { break }
                offset += used
                handle(packet)
            } catch {
                close(.protocolError(error.description))
                break
            }
        }
        return offset
    }

    private func handle(_ packet: Packet) {
        if state == .awaitingConnAck {
            guard case .connack(let ack) = packet else {
                close(.protocolError("expected CONNACK, got \(packet.type)"))
                return
            }
            if ack.reasonCode != .success {
                close(.refused(ack.reasonCode))
                return
            }
            state = .connected
            if let rm = ack.properties.receiveMaximum, Int(rm) < window { window = max(1, Int(rm)) }
            let keepAlive = ack.properties.serverKeepAlive ?? options.keepAlive
            if let t = timer { loop.cancel(t) }
            keepAliveMilliseconds = UInt64(keepAlive) * 1000
            if keepAliveMilliseconds > 0 { armTimer(keepAliveMilliseconds / 2) }
            let elapsed = monotonicMicroseconds() &- startedAt
            delegate?.connectionDidConnect(self, sessionPresent: ack.sessionPresent, connectMicroseconds: elapsed)
            return
        }
        switch packet {
        case .publish(let p):
            switch p.qos {
            case .atMostOnce:
                delegate?.connection(self, didReceive: p)
            case .atLeastOnce:
                send(.puback(AckPacket(packetId: p.packetId)))
                delegate?.connection(self, didReceive: p)
            case .exactlyOnce:
                send(.pubrec(AckPacket(packetId: p.packetId)))
                if incomingQoS2.isEmpty { incomingQoS2 = [UInt64](repeating: 0, count: 1024) }
                let w = Int(p.packetId >> 6), b = UInt64(1) << UInt64(p.packetId & 63)
                if incomingQoS2[w] & b == 0 {
                    incomingQoS2[w] |= b
                    delegate?.connection(self, didReceive: p)
                }
            }
        case .pubrel(let a):
            if !incomingQoS2.isEmpty {
                let w = Int(a.packetId >> 6), b = UInt64(1) << UInt64(a.packetId & 63)
                incomingQoS2[w] &= ~b
            }
            send(.pubcomp(AckPacket(packetId: a.packetId)))
        case .puback(let a):
            if releasePacketId(a.packetId) {
                delegate?.connection(self, didComplete: a.packetId, reasonCode: a.reasonCode)
            }
        case .pubrec(let a):
            if a.reasonCode.isError {
                if releasePacketId(a.packetId) {
                    delegate?.connection(self, didComplete: a.packetId, reasonCode: a.reasonCode)
                }
            } else {
                send(.pubrel(AckPacket(packetId: a.packetId)))
            }
        case .pubcomp(let a):
            if releasePacketId(a.packetId) {
                delegate?.connection(self, didComplete: a.packetId, reasonCode: a.reasonCode)
            }
        case .suback(let s):
            delegate?.connection(self, didSubscribe: s.packetId, codes: s.reasonCodes)
        case .unsuback:
            break
        case .pingresp:
            pingOutstanding = false
        case .disconnect(let d):
            close(.serverDisconnect(d.reasonCode))
        case .connack:
            close(.protocolError("second CONNACK"))
        case .connect, .subscribe, .unsubscribe, .pingreq, .auth:
            close(.protocolError("\(packet.type) from the server"))
        }
    }

    // MARK: Timers (connect timeout, then keepalive)

    private var keepAliveMilliseconds: UInt64 = 0

    private func armTimer(_ ms: UInt64) {
        let t = timer ?? LoopTimer { [unowned self] in self.timerFired() }
        timer = t
        loop.schedule(t, afterMilliseconds: ms)
    }

    private func timerFired() {
        switch state {
        case .connecting, .tlsHandshake, .awaitingConnAck:
            close(.connectTimeout)
        case .connected:
            // Fires every half keepalive: a PINGREQ unanswered for a whole period is a timeout.
            if pingOutstanding {
                close(.keepAliveTimeout)
                return
            }
            if loop.now &- lastSent >= keepAliveMilliseconds / 2 {
                pingOutstanding = true
                send(.pingreq)
            }
            armTimer(keepAliveMilliseconds / 2)
        case .disconnecting:
            close(nil)
        case .idle, .closed:
            break
        }
    }

    // MARK: Writing

    private func send(_ packet: Packet) {
        guard state != .closed, state != .idle else { return }
        let v = options.version
        output.append { PacketEncoder.encode(packet, version: v, into: &$0) }
        lastSent = loop.now
        requestFlush()
    }

    private func requestFlush() {
        if !flushScheduled && !writeInterest {
            flushScheduled = true
            loop.scheduleFlush(self)
        }
    }

    public func flushPendingOutput() {
        flushScheduled = false
        guard state != .closed, state != .connecting else { return }
        if flushNow(), state == .disconnecting { close(nil) }
    }

    /// True when everything queued is written.
    @discardableResult
    private func flushNow() -> Bool {
        let result: WriteQueue.FlushResult
        if let tls = tlsStream {
            var failure: String?
            let all = output.flush { bytes in
                switch tls.write(bytes) {
                case .done(let n): return n
                case .wantRead, .wantWrite: return nil
                case .closed: failure = "closed"; return nil
                case .failed(let e): failure = e.description; return nil
                }
            }
            if let failure {
                close(state == .disconnecting ? nil : .tlsFailed(failure))
                return false
            }
            result = all ? .flushed : .wouldBlock
        } else {
            result = output.flush(to: fd)
        }
        switch result {
        case .flushed:
            if writeInterest {
                writeInterest = false
                loop.setInterest(fd: fd, readable: true, writable: false)
                if state == .connected { delegate?.connectionWritable(self) }
            }
            return true
        case .wouldBlock:
            if !writeInterest {
                writeInterest = true
                loop.setInterest(fd: fd, readable: true, writable: true)
            }
            return false
        case .failed(let error):
            close(state == .disconnecting ? nil : .ioError(error.errno))
            return false
        }
    }

    public func handleWritable() {
        switch state {
        case .connecting:
            socketConnected()
        case .tlsHandshake:
            continueHandshake()
        case .closed, .idle:
            break
        default:
            if flushNow(), state == .disconnecting { close(nil) }
        }
    }

    // MARK: Closing

    private func close(_ error: MQTTClientError?) {
        guard state != .closed else { return }
        state = .closed
        if let t = timer { loop.cancel(t) }
        if let tls = tlsStream, tls.isHandshakeComplete { tls.shutdown() }
        tlsStream = nil
        if fd >= 0 {
            loop.deregister(fd: fd)
            Socket.close(fd)
        }
        output.reset()
        partial = []
        delegate?.connection(self, didClose: error)
    }
}
