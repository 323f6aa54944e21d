import EventLoop
import MQTTClient
import MQTTCodec
import Synchronization

/// Everything the loops need to know about a run; immutable once built.
struct Plan: Sendable {
    enum Command: String, Sendable { case conn, sub, pub, fleet }

    var command: Command
    var hosts: [String]
    var port: Int
    var sources: [String]
    var version: ProtocolVersion
    var prefix: String
    var username: String?
    var password: String?
    var keepAlive: UInt16
    var clean: Bool
    var sessionExpiry: UInt32
    var connectTimeoutMs: UInt64
    /// Clients in this process, and the sequence number of the first.
    var count: Int
    var startNumber: Int
    /// sub: filters; pub: the topic (templates).
    var topics: [String]
    var qos: QoS
    var retain: Bool
    /// Milliseconds between publishes of one client; 0: as fast as the window allows.
    var publishInterval: Double
    var payloadSize: Int
    var message: [UInt8]?
    /// pub: the payload is JSON, `{"timestamp":<µs>,"speed":<n>,"pad":"x…"}` of `payloadSize`
    /// bytes, for rules that read fields (the send time then comes from `timestamp`).
    var jsonPayload = false
    /// Messages per publisher; 0: no limit.
    var limit: Int
    var inflight: Int
    var waitForAll: Bool
    /// pub: spread the messages over this many topics (0: each client keeps its own topic).
    var topicSpread: Int = 0
    /// TLS client context (-S), shared by every client of this process.
    var tls: TLSContext? = nil
    // fleet
    var cars = 0
    var backends = 0
    var backendStart = 0
    var commandShare = 0.0
    /// Sequence number of the first car of the whole run (all workers), and how many cars in all.
    var fleetFirstSeq = 0
    var fleetTotalCars = 0
}

/// One slot per car across the process: a command is in flight to it (at most one).
final class CommandSlots: Sendable {
    private let slots: Mutex<[Bool]>
    init(count: Int) { slots = Mutex([Bool](repeating: false, count: count)) }
    func acquire(_ i: Int) -> Bool {
        slots.withLock { s in
            guard i >= 0, i < s.count, !s[i] else { return false }
            s[i] = true
            return true
        }
    }
    func release(_ i: Int) {
        slots.withLock { s in if i >= 0 && i < s.count { s[i] = false } }
    }
}

/// One simulated client: its connection plus what its role needs.
final class BenchClient {
    enum Role { case conn, sub, pub, car, backend }
    let role: Role
    let seq: Int
    let conn: MQTTConnection
    var topic = ""
    var payload: [UInt8] = []
    var sent = 0
    var pubStart: UInt64 = 0
    var publishing = false
    var readyToPublish = false
    var finished = false
    var wasConnected = false
    // car
    var vin = ""
    var cmdTopic = ""
    var ackTopic = ""
    var pendingAck: [UInt8]?
    var sim = CarSim(seed: 1)
    // pub, QoS 1/2: when each packet id in flight was sent (µs), for the ack latency
    var sentAt: [UInt16: UInt64] = [:]
    // pub --spread: what the topic template is expanded with, per message
    var topicName = ""
    var topicUser: String?

    init(role: Role, seq: Int, conn: MQTTConnection) {
        self.role = role; self.seq = seq; self.conn = conn
    }
}

/// The clients of one loop and their bookkeeping. Loop-confined, except `stats` (atomics).
final class LoopAgent: MQTTConnectionDelegate {
    let loop: EventLoop
    let plan: Plan
    let stats = LoopStats()
    let slots: CommandSlots?
    private let scratch = ReadScratch()
    private var clients: [BenchClient] = []
    private var publishers: [BenchClient] = []
    private var stopping = false
    private var pumpTimer: LoopTimer?
    private var pumpPosted = false
    private let burst = 64
    private let outputHighWater = 64 * 1024

    var latency = makeHistogram()
    var connectLatency = makeHistogram()
    var commandLatency = makeHistogram()
    var commandRTT = makeHistogram()
    /// PUBLISH sent → PUBACK/PUBCOMP received, for `pub` at QoS 1/2.
    var ackLatency = makeHistogram()
    /// `latency` per 100 ms of send time (key: ms since the epoch / 100): count and maximum, so
    /// a report can say when its slowest messages were sent (e.g. during the connect phase).
    var latencySeries: [UInt64: SecondStats] = [:]
    var failures: [String: Int] = [:]

    init(loop: EventLoop, plan: Plan, slots: CommandSlots?) {
        self.loop = loop
        self.plan = plan
        self.slots = slots
    }

    // MARK: Starting clients

    /// Starts client number `index` of this process (0-based).
    func startClient(index: Int) {
        guard !stopping else { LoopStats.inc(stats.started); return }
        let role: BenchClient.Role
        let seq: Int
        var name: String
        switch plan.command {
        case .conn: role = .conn; seq = plan.startNumber + index; name = "\(plan.prefix)_conn_\(seq)"
        case .sub: role = .sub; seq = plan.startNumber + index; name = "\(plan.prefix)_sub_\(seq)"
        case .pub: role = .pub; seq = plan.startNumber + index; name = "\(plan.prefix)_pub_\(seq)"
        case .fleet:
            // The backend connects first, so it is subscribed before the first telemetry.
            let pre = plan.prefix.isEmpty ? "" : plan.prefix + "_"
            if index < plan.backends {
                role = .backend; seq = plan.backendStart + index; name = "\(pre)backend-\(seq)"
            } else {
                role = .car; seq = plan.startNumber + index - plan.backends; name = "\(pre)car-\(seq)"
            }
        }
        let user = plan.username.map { expand($0, seq: seq, clientId: name, username: nil) }
        let host = plan.hosts[index % plan.hosts.count]
        let source = plan.sources.isEmpty ? nil : plan.sources[index % plan.sources.count]
        var options = MQTTClientOptions(
            host: host, port: plan.port, clientId: name, version: plan.version, sourceAddress: source,
            username: user, password: plan.password.map { Array($0.utf8) }, keepAlive: plan.keepAlive,
            cleanStart: plan.clean, sessionExpiry: plan.sessionExpiry > 0 ? plan.sessionExpiry : nil,
            connectTimeoutMilliseconds: plan.connectTimeoutMs, maxInflight: plan.inflight)
        options.tls = plan.tls
        let conn = MQTTConnection(loop: loop, scratch: scratch, options: options)
        let c = BenchClient(role: role, seq: seq, conn: conn)
        conn.tag = clients.count
        conn.delegate = self
        clients.append(c)
        switch role {
        case .pub:
            c.topic = expand(plan.topics[0], seq: seq, clientId: name, username: user)
            if plan.topicSpread > 0 { c.topicUser = user; c.topicName = name }
            if let m = plan.message {
                c.payload = m
            } else if plan.jsonPayload {
                c.payload = jsonTelemetry(size: plan.payloadSize, speed: seq % 200)
            } else {
                c.payload = [UInt8](repeating: UInt8(ascii: "x"), count: plan.payloadSize)
            }
        case .car:
            c.vin = vin(for: seq)
            c.topic = "cars/\(c.vin)/telemetry"
            c.cmdTopic = "cars/\(c.vin)/cmd"
            c.ackTopic = "cars/\(c.vin)/cmd/ack"
            c.sim = CarSim(seed: UInt64(seq) &+ 0x9E37_79B9)
        default:
            break
        }
        LoopStats.inc(stats.open)
        LoopStats.inc(stats.started)
        conn.start()
    }

    private func client(_ c: MQTTConnection) -> BenchClient { clients[c.tag] }

    // MARK: Delegate

    func connectionDidConnect(_ c: MQTTConnection, sessionPresent: Bool, connectMicroseconds: UInt64) {
        let bc = client(c)
        bc.wasConnected = true
        LoopStats.inc(stats.connected)
        LoopStats.inc(stats.connectOK)
        connectLatency.recordClamped(connectMicroseconds)
        if stopping { c.disconnect(); return }
        let qos = plan.qos
        switch bc.role {
        case .conn:
            break
        case .sub:
            let subs = plan.topics.map {
                Subscription(filter: expand($0, seq: bc.seq, clientId: c.options.clientId, username: c.options.username),
                             options: SubscriptionOptions(qos: qos))
            }
            c.subscribe(subs)
        case .pub:
            readyOrStart(bc)
        case .car:
            c.subscribe([Subscription(filter: bc.cmdTopic, options: SubscriptionOptions(qos: qos))])
        case .backend:
            c.subscribe([Subscription(filter: "$share/backend/cars/+/telemetry", options: SubscriptionOptions(qos: qos)),
                         Subscription(filter: "$share/backend/cars/+/cmd/ack", options: SubscriptionOptions(qos: qos))])
        }
    }

    func connection(_ c: MQTTConnection, didSubscribe packetId: UInt16, codes: [ReasonCode]) {
        let bc = client(c)
        if let bad = codes.first(where: { $0.isError }) {
            fail("suback \(bad)")
        } else {
            LoopStats.inc(stats.subscribed)
        }
        if bc.role == .car { readyOrStart(bc) }
    }

    func connection(_ c: MQTTConnection, didReceive publish: PublishPacket) {
        let bc = client(c)
        switch bc.role {
        case .car:
            // A command: {"timestamp":T,...}; answer on .../cmd/ack with the same timestamp.
            LoopStats.inc(stats.commandsReceived)
            if let ts = jsonTimestamp(publish.payload) {
                recordLatency(&commandLatency, since: ts)
                let ack = Array("{\"timestamp\":\(ts),\"vin\":\"\(bc.vin)\"}".utf8)
                if plan.qos == .atMostOnce || c.canPublishQoS {
                    c.publish(topic: bc.ackTopic, payload: ack, qos: plan.qos)
                } else {
                    bc.pendingAck = ack
                }
            }
        case .backend:
            handleBackend(c, publish)
        default:
            LoopStats.inc(stats.received)
            let p = publish.payload
            if let ts = jsonTimestamp(p) {
                recordMessageLatency(since: ts)
            } else if p.count >= 8 {
                var ts: UInt64 = 0
                p.withUnsafeBytes { ts = UInt64(bigEndian: $0.loadUnaligned(as: UInt64.self)) }
                recordMessageLatency(since: ts)
            }
        }
    }

    func connection(_ c: MQTTConnection, didComplete packetId: UInt16, reasonCode: ReasonCode) {
        let bc = client(c)
        if reasonCode.isError && reasonCode != .noMatchingSubscribers {
            LoopStats.inc(stats.publishFailed)
            fail("puback \(reasonCode)")
        } else if bc.role == .pub || bc.role == .car {
            LoopStats.inc(stats.acked)
        }
        if let t = bc.sentAt.removeValue(forKey: packetId) {
            let now = wallClockMicroseconds()
            ackLatency.recordClamped(now > t ? now - t : 0)
        }
        if stopping {
            if c.inflight == 0 { c.disconnect() }
            return
        }
        if let ack = bc.pendingAck, c.canPublishQoS {
            bc.pendingAck = nil
            c.publish(topic: bc.ackTopic, payload: ack, qos: plan.qos)
        }
        if bc.publishing {
            if trySend(bc) { postPump() }
        }
    }

    func connectionWritable(_ c: MQTTConnection) {
        let bc = client(c)
        if bc.publishing, !stopping, trySend(bc) { postPump() }
    }

    func connection(_ c: MQTTConnection, didClose error: MQTTClientError?) {
        let bc = client(c)
        LoopStats.inc(stats.open, -1)
        if bc.wasConnected { LoopStats.inc(stats.connected, -1) }
        if let error {
            fail(error.key)
            if !bc.wasConnected { LoopStats.inc(stats.connectFailed) }
        }
        if bc.publishing || bc.role == .pub { markFinished(bc) }
        bc.publishing = false
    }

    private func fail(_ key: String) {
        failures[key, default: 0] += 1
        LoopStats.inc(stats.errors)
    }

    private func markFinished(_ bc: BenchClient) {
        guard !bc.finished else { return }
        bc.finished = true
        LoopStats.inc(stats.finished)
    }

    @inline(__always)
    private func recordLatency(_ h: inout LatencyHistogram, since ts: UInt64) {
        let now = wallClockMicroseconds()
        // Not a timestamp of ours (e.g. a -m payload): ignore.
        guard ts <= now &+ 1_000_000, now &- ts < 3_600_000_000 else { return }
        h.recordClamped(now > ts ? now - ts : 0)
    }

    /// A received message (sub, fleet telemetry): the latency histogram and its send second.
    @inline(__always)
    private func recordMessageLatency(since ts: UInt64) {
        let now = wallClockMicroseconds()
        guard ts <= now &+ 1_000_000, now &- ts < 3_600_000_000 else { return }
        let v = now > ts ? now - ts : 0
        latency.recordClamped(v)
        latencySeries[ts / 100_000, default: SecondStats()].add(v)
    }

    // MARK: Publishing

    private func readyOrStart(_ bc: BenchClient) {
        if plan.waitForAll {
            bc.readyToPublish = true
        } else {
            startPublishing(bc)
        }
    }

    /// -w: every client of the process is connected (or failed): start them all.
    func startAllPublishers() {
        for c in clients where c.readyToPublish && !c.publishing { startPublishing(c) }
    }

    private func startPublishing(_ bc: BenchClient) {
        guard !stopping, bc.conn.isConnected, !bc.publishing else { return }
        bc.publishing = true
        bc.pubStart = loop.now
        publishers.append(bc)
        if trySend(bc) { postPump() }
        if plan.publishInterval > 0 { armPumpTimer() }
    }

    /// Publishes what is due for `bc`; true when it stopped only because of the burst cap
    /// (more could go right away).
    @discardableResult
    private func trySend(_ bc: BenchClient) -> Bool {
        let c = bc.conn
        guard bc.publishing, c.isConnected else { return false }
        let qos = plan.qos
        var n = 0
        while n < burst {
            if plan.limit > 0 && bc.sent >= plan.limit {
                if qos == .atMostOnce || c.inflight == 0 { markFinished(bc); bc.publishing = false }
                return false
            }
            if plan.publishInterval > 0 {
                let due = Int(Double(loop.now &- bc.pubStart) / plan.publishInterval) + 1
                if bc.sent >= due { return false }
            }
            if qos == .atMostOnce {
                if c.pendingOutputBytes >= outputHighWater { return !c.isWriteBlocked }
            } else if !c.canPublishQoS {
                return false
            }
            if bc.role == .car {
                let body = bc.sim.telemetry(vin: bc.vin, timestamp: wallClockMicroseconds(), interval: plan.publishInterval)
                c.publish(topic: bc.topic, payload: body, qos: qos)
            } else {
                if plan.jsonPayload {
                    writeJSONTimestamp(&bc.payload, wallClockMicroseconds())
                } else if plan.message == nil && bc.payload.count >= 8 {
                    let ts = wallClockMicroseconds().bigEndian
                    bc.payload.withUnsafeMutableBytes { $0.storeBytes(of: ts, as: UInt64.self) }
                }
                if plan.topicSpread > 0 {
                    // Message j of client s goes to %i = first + (s - first + j * clients) mod N:
                    // every topic gets its turn, each client's messages to one topic stay in order.
                    let first = plan.startNumber
                    let n = first + (bc.seq - first + bc.sent * plan.count) % plan.topicSpread
                    bc.topic = expand(plan.topics[0], seq: n, clientId: bc.topicName, username: bc.topicUser)
                }
                if let id = c.publish(topic: bc.topic, payload: bc.payload, qos: qos, retain: plan.retain), qos != .atMostOnce {
                    bc.sentAt[id] = wallClockMicroseconds()
                }
            }
            bc.sent += 1
            n += 1
            LoopStats.inc(stats.sent)
        }
        return true
    }

    /// Interval publishing: one timer per loop walks the publishers (the wheel ticks every 50 ms;
    /// each client catches up on what is due, so the average rate is exact).
    private func armPumpTimer() {
        guard pumpTimer == nil || !pumpTimer!.isScheduled else { return }
        let t = pumpTimer ?? LoopTimer { [unowned self] in self.pump(timer: true) }
        pumpTimer = t
        loop.schedule(t, afterMilliseconds: UInt64(max(1, min(plan.publishInterval, 50))))
    }

    /// Full-speed publishing: one task per loop iteration while some client has more to send.
    private func postPump() {
        guard !pumpPosted, !stopping else { return }
        pumpPosted = true
        loop.execute { [unowned self] in
            self.pumpPosted = false
            self.pump(timer: false)
        }
    }

    private func pump(timer: Bool) {
        guard !stopping else { return }
        var more = false
        var i = 0
        while i < publishers.count {
            let bc = publishers[i]
            if !bc.publishing {
                publishers.swapAt(i, publishers.count - 1)
                publishers.removeLast()
                continue
            }
            if trySend(bc) { more = true }
            i += 1
        }
        if more { postPump() }
        if timer && !publishers.isEmpty { armPumpTimer() }
    }

    // MARK: Fleet backend

    private func handleBackend(_ c: MQTTConnection, _ p: PublishPacket) {
        let topic = p.topic.utf8
        if p.topic.hasSuffix("/telemetry") {
            LoopStats.inc(stats.received)
            guard let ts = jsonTimestamp(p.payload) else { return }
            recordMessageLatency(since: ts)
            guard !stopping, let slots else { return }
            // cars/<vin>/telemetry
            let parts = p.topic.split(separator: "/")
            guard parts.count == 3 else { return }
            let vin = parts[1]
            guard selected(vin), let seq = seqFromVIN(vin) else { return }
            let slot = seq - plan.fleetFirstSeq
            guard slots.acquire(slot) else { return }
            let body = Array("{\"timestamp\":\(wallClockMicroseconds()),\"cmd\":\"set_speed_limit\",\"value\":90}".utf8)
            if c.publish(topic: "cars/\(vin)/cmd", payload: body, qos: plan.qos) != nil {
                LoopStats.inc(stats.commandsSent)
            } else {
                slots.release(slot)
            }
        } else if topic.count > 8, p.topic.hasSuffix("/cmd/ack") {
            guard let ts = jsonTimestamp(p.payload) else { return }
            recordLatency(&commandRTT, since: ts)
            LoopStats.inc(stats.commandsRoundTripped)
            let parts = p.topic.split(separator: "/")
            if parts.count == 4, let seq = seqFromVIN(parts[1]) { slots?.release(seq - plan.fleetFirstSeq) }
        }
    }

    private func selected(_ vin: Substring) -> Bool {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in vin.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return Double(h % 1000) < plan.commandShare * 1000
    }

    // MARK: Stopping

    /// Stops publishing; each client disconnects once nothing is in flight.
    func beginStop() {
        stopping = true
        for c in clients {
            switch c.conn.state {
            case .connected:
                if c.conn.inflight == 0 { c.conn.disconnect() }
            case .connecting, .awaitingConnAck:
                c.conn.disconnect()
            default:
                break
            }
        }
    }

    /// After the drain deadline: close whatever is left.
    func forceClose() {
        for c in clients where c.conn.state != .closed && c.conn.state != .idle { c.conn.disconnect() }
        for c in clients where c.conn.state == .disconnecting { c.conn.abort() }
    }
}

// MARK: Fleet helpers

/// A 17-character VIN-like id: "TPK" and the sequence number on 14 digits.
func vin(for seq: Int) -> String {
    let digits = String(seq)
    return "TPK" + String(repeating: "0", count: max(0, 14 - digits.count)) + digits
}

func seqFromVIN(_ vin: Substring) -> Int? {
    guard vin.hasPrefix("TPK") else { return nil }
    return Int(vin.dropFirst(3))
}

/// `--json-payload`: `{"timestamp":<16 digits>,"speed":<n>,"pad":"x…"}`, padded to `size` bytes
/// (at least the fields themselves); the timestamp is rewritten in place per publish.
func jsonTelemetry(size: Int, speed: Int) -> [UInt8] {
    let head = "{\"timestamp\":0000000000000000,\"speed\":\(speed),\"pad\":\""
    let pad = max(0, size - head.utf8.count - 2)
    return Array(head.utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: pad) + Array("\"}".utf8)
}

/// Writes `ts` (µs since the epoch: 16 digits until the year 2286) after `{"timestamp":`.
func writeJSONTimestamp(_ payload: inout [UInt8], _ ts: UInt64) {
    var v = ts
    payload.withUnsafeMutableBufferPointer { b in
        var i = 13 + 15
        while i >= 13 { b[i] = UInt8(ascii: "0") + UInt8(v % 10); v /= 10; i -= 1 }
    }
}

/// The value of a leading `{"timestamp":<digits>` in a JSON payload.
func jsonTimestamp(_ p: [UInt8]) -> UInt64? {
    let prefix = Array("{\"timestamp\":".utf8)
    guard p.count > prefix.count else { return nil }
    for i in 0..<prefix.count where p[i] != prefix[i] { return nil }
    var v: UInt64 = 0
    var i = prefix.count
    while i < p.count, p[i] >= 48, p[i] <= 57 {
        v = v &* 10 &+ UInt64(p[i] - 48)
        i += 1
    }
    return i > prefix.count ? v : nil
}

/// A car's simulated state: a random walk over speed and heading, position and odometer
/// following from them, a slowly draining battery.
struct CarSim {
    var rng: UInt64
    var speed = 0.0        // km/h
    var heading = 0.0      // degrees
    var lat = 48.137
    var lon = 11.575
    var battery = 100.0    // percent
    var odometer = 0.0     // km

    init(seed: UInt64) {
        rng = seed | 1
        speed = Double(next() % 120)
        heading = Double(next() % 360)
        lat += Double(next() % 1000) / 10_000
        lon += Double(next() % 1000) / 10_000
        battery = 50 + Double(next() % 50)
        odometer = Double(next() % 200_000)
    }

    mutating func next() -> UInt64 {
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17
        return rng
    }

    mutating func telemetry(vin: String, timestamp: UInt64, interval: Double) -> [UInt8] {
        let dt = max(interval, 1) / 3_600_000 // hours
        speed = min(180, max(0, speed + Double(Int(next() % 21) - 10)))
        heading = (heading + Double(Int(next() % 11) - 5) + 360).truncatingRemainder(dividingBy: 360)
        let km = speed * dt
        odometer += km
        let rad = heading * .pi / 180
        lat += km / 111 * cosApprox(rad)
        lon += km / 75 * sinApprox(rad)
        battery = max(0, battery - km * 0.02)
        func r(_ x: Double, _ places: Double) -> Double { (x * places).rounded() / places }
        return Array(("{\"timestamp\":\(timestamp),\"vin\":\"\(vin)\",\"speed\":\(r(speed, 10)),"
            + "\"pos\":{\"lat\":\(r(lat, 1e6)),\"lon\":\(r(lon, 1e6))},\"heading\":\(r(heading, 10)),"
            + "\"battery\":\(r(battery, 10)),\"odometer\":\(r(odometer, 100))}").utf8)
    }
}

/// Enough trigonometry for a random walk (no Foundation in the loops).
func sinApprox(_ x: Double) -> Double {
    var v = x.truncatingRemainder(dividingBy: 2 * .pi)
    if v > .pi { v -= 2 * .pi } else if v < -.pi { v += 2 * .pi }
    let v2 = v * v
    return v * (1 - v2 / 6 * (1 - v2 / 20 * (1 - v2 / 42 * (1 - v2 / 72))))
}

func cosApprox(_ x: Double) -> Double { sinApprox(x + .pi / 2) }
