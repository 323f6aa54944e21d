import CNats
import Glibc
import Synchronization

/// A libnats error: the status text and libnats's last error message.
public struct NatsError: Error, CustomStringConvertible {
    public let description: String
    init(_ what: String, _ s: natsStatus) {
        var text = String(cString: natsStatus_GetText(s))
        var last = NATS_OK
        if let detail = nats_GetLastError(&last), detail.pointee != 0 {
            let d = String(cString: detail)
            if d != text { text += ": " + d }
        }
        description = "\(what): \(text)"
    }
}

/// Where libnats reports to: the owner of a NatsClient (message and connection callbacks come
/// on libnats's threads).
protocol NatsClientDelegate: AnyObject {
    func natsMessage(_ msg: OpaquePointer, subscription: UInt64)
    func natsConnectionChanged(connected: Bool)
    func natsError(_ text: String)
}

/// One libnats connection (C types stay in this file and Envelope.swift). Every URL is given
/// so the client fails over between them and reconnects for ever; a failed first connect is
/// retried in the background (the node serves alone meanwhile).
final class NatsClient: @unchecked Sendable {
    private(set) var connection: OpaquePointer?
    private weak var delegate: NatsClientDelegate?
    /// Subscription tokens, so a message names which subscription it came through.
    private var subscriptions: [UInt64: OpaquePointer] = [:]
    /// Unique across every client of the process (their owners share one route table).
    private static let nextToken = Atomic<UInt64>(1)
    private var boxes: [UInt64: UnsafeMutablePointer<SubscriptionBox>] = [:]

    struct SubscriptionBox {
        let client: Unmanaged<NatsClient>
        let token: UInt64
    }

    struct Settings {
        var servers: [String]
        var name: String
        var noEcho: Bool
        var randomize = true
        var user: String?
        var password: String?
        var token: String?
        var credentialsFile: String?
        var caFile: String?
        var certFile: String?
        var keyFile: String?
    }

    init(_ s: Settings, delegate: NatsClientDelegate) throws {
        self.delegate = delegate
        var opts: OpaquePointer?
        try check("natsOptions_Create", natsOptions_Create(&opts))
        defer { natsOptions_Destroy(opts) }
        var cstrings = s.servers.map { strdup($0) }
        defer { cstrings.forEach { free($0) } }
        try cstrings.withUnsafeMutableBufferPointer { buf in
            try buf.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buf.count) { p in
                try check("servers", natsOptions_SetServers(opts, p, Int32(buf.count)))
            }
        }
        try check("name", natsOptions_SetName(opts, s.name))
        try check("no echo", natsOptions_SetNoEcho(opts, s.noEcho))
        try check("no randomize", natsOptions_SetNoRandomize(opts, !s.randomize))
        try check("max reconnect", natsOptions_SetMaxReconnect(opts, -1))
        try check("reconnect wait", natsOptions_SetReconnectWait(opts, 250))
        try check("reconnect buffer", natsOptions_SetReconnectBufSize(opts, 32 << 20))
        try check("ping interval", natsOptions_SetPingInterval(opts, 2000))
        try check("max pings out", natsOptions_SetMaxPingsOut(opts, 2))
        // One delivery thread for every subscription of the process: messages reach the
        // delegate in the order the server sent them, across subscriptions.
        try check("global delivery", natsOptions_UseGlobalMessageDelivery(opts, true))
        if let u = s.user { try check("user", natsOptions_SetUserInfo(opts, u, s.password)) }
        if let t = s.token { try check("token", natsOptions_SetToken(opts, t)) }
        if let c = s.credentialsFile { try check("credentials", natsOptions_SetUserCredentialsFromFiles(opts, c, nil)) }
        if s.caFile != nil || s.certFile != nil {
            try check("tls", natsOptions_SetSecure(opts, true))
            if let ca = s.caFile { try check("ca file", natsOptions_LoadCATrustedCertificates(opts, ca)) }
            if let cert = s.certFile, let key = s.keyFile { try check("certificate", natsOptions_LoadCertificatesChain(opts, cert, key)) }
        }
        let me = Unmanaged.passUnretained(self).toOpaque()
        try check("disconnected callback", natsOptions_SetDisconnectedCB(opts, { _, closure in
            Unmanaged<NatsClient>.fromOpaque(closure!).takeUnretainedValue().delegate?.natsConnectionChanged(connected: false)
        }, me))
        try check("reconnected callback", natsOptions_SetReconnectedCB(opts, { _, closure in
            Unmanaged<NatsClient>.fromOpaque(closure!).takeUnretainedValue().delegate?.natsConnectionChanged(connected: true)
        }, me))
        try check("error handler", natsOptions_SetErrorHandler(opts, { _, _, status, closure in
            Unmanaged<NatsClient>.fromOpaque(closure!).takeUnretainedValue().delegate?.natsError(String(cString: natsStatus_GetText(status)))
        }, me))
        try check("retry on failed connect", natsOptions_SetRetryOnFailedConnect(opts, true, { _, closure in
            Unmanaged<NatsClient>.fromOpaque(closure!).takeUnretainedValue().delegate?.natsConnectionChanged(connected: true)
        }, me))
        let rc = natsConnection_Connect(&connection, opts)
        // With retry on, NATS_NOT_YET_CONNECTED means it goes on trying in the background.
        if rc != NATS_OK && rc != NATS_NOT_YET_CONNECTED { throw NatsError("connect to \(s.servers.joined(separator: ","))", rc) }
    }

    var isConnected: Bool { connection.map { natsConnection_Status($0) == NATS_CONN_STATUS_CONNECTED } ?? false }

    var connectedURL: String {
        guard let c = connection else { return "" }
        var buf = [CChar](repeating: 0, count: 256)
        guard natsConnection_GetConnectedUrl(c, &buf, buf.count) == NATS_OK else { return "" }
        return String(cString: buf)
    }

    /// A token for the next subscription: the owner registers what it means before
    /// subscribing, so that no message arrives with a token it does not know yet.
    func reserveToken() -> UInt64 {
        Self.nextToken.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    /// Subscribes (in a queue group when `queue` is set); messages carry `token`.
    func subscribe(_ subject: String, queue: String?, token: UInt64) throws {
        let box = UnsafeMutablePointer<SubscriptionBox>.allocate(capacity: 1)
        box.initialize(to: SubscriptionBox(client: Unmanaged.passUnretained(self), token: token))
        var sub: OpaquePointer?
        let handler: natsMsgHandler = { _, _, msg, closure in
            let b = closure!.assumingMemoryBound(to: SubscriptionBox.self).pointee
            guard let msg else { return }
            if let d = b.client.takeUnretainedValue().delegate { d.natsMessage(msg, subscription: b.token) }
            natsMsg_Destroy(msg)
        }
        let rc = queue.map { natsConnection_QueueSubscribe(&sub, connection, subject, $0, handler, box) }
            ?? natsConnection_Subscribe(&sub, connection, subject, handler, box)
        guard rc == NATS_OK, let sub else {
            box.deinitialize(count: 1); box.deallocate()
            throw NatsError("subscribe \(subject)", rc)
        }
        // No client-side limit: a slow delivery thread must not make libnats drop messages.
        _ = natsSubscription_SetPendingLimits(sub, -1, -1)
        subscriptions[token] = sub
        boxes[token] = box
    }

    // MARK: JetStream

    private var js: OpaquePointer?

    private func jetStream() throws -> OpaquePointer {
        if let js { return js }
        var opts = jsOptions()
        jsOptions_Init(&opts)
        opts.Wait = 3000
        // A stream message JetStream refused (publishToStream): told to the delegate.
        opts.PublishAsync.ErrHandler = { _, pae, closure in
            guard let pae, let closure else { return }
            let me = Unmanaged<NatsClient>.fromOpaque(closure).takeUnretainedValue()
            let subject = pae.pointee.Msg.map { String(cString: natsMsg_GetSubject($0)) } ?? "?"
            let text = pae.pointee.ErrText.map { String(cString: $0) } ?? String(cString: natsStatus_GetText(pae.pointee.Err))
            me.delegate?.natsError("JetStream did not store the message on \(subject): \(text)")
        }
        opts.PublishAsync.ErrHandlerClosure = Unmanaged.passUnretained(self).toOpaque()
        var ctx: OpaquePointer?
        try check("JetStream", natsConnection_JetStream(&ctx, connection, &opts))
        js = ctx
        return ctx!
    }

    /// Creates the stream (file storage, `replicas`, at most `perSubject` messages per subject),
    /// or leaves it as it is when it exists.
    func ensureStream(name: String, subject: String, replicas: Int, perSubject: Int64) throws {
        let js = try jetStream()
        var cfg = jsStreamConfig()
        jsStreamConfig_Init(&cfg)
        var subjects: [UnsafePointer<CChar>?] = [UnsafePointer(strdup(subject))]
        defer { free(UnsafeMutablePointer(mutating: subjects[0])) }
        var err = jsErrCode(0)
        var info: UnsafeMutablePointer<jsStreamInfo>?
        let rc = name.withCString { n in
            subjects.withUnsafeMutableBufferPointer { subs in
                cfg.Name = n
                cfg.Subjects = subs.baseAddress
                cfg.SubjectsLen = 1
                cfg.MaxMsgsPerSubject = perSubject
                cfg.Replicas = Int64(replicas)
                cfg.Storage = js_FileStorage
                return js_AddStream(&info, js, &cfg, nil, &err)
            }
        }
        if let info { jsStreamInfo_Destroy(info) }
        if rc == NATS_OK || err == JSStreamNameExistErr { return }
        throw NatsError("stream \(name)", rc)
    }

    /// Publishes `msg` (taken) to the stream that captures its subject without waiting for the
    /// stream's acknowledgement; `waitForStream` waits for all of them.
    func publishToStream(_ msg: OpaquePointer) -> natsStatus {
        var m: OpaquePointer? = msg
        defer { natsMsg_Destroy(m) }   // no effect once libnats took it
        guard let js = try? jetStream() else { return NATS_NOT_YET_CONNECTED }
        return js_PublishMsgAsync(js, &m, nil)
    }

    /// Waits until JetStream has acknowledged every `publishToStream` so far (stored and
    /// replicated). On a timeout the unacknowledged ones are given up (returned as a count), so
    /// acknowledgements lost with a connection cannot pile up and stall later publishes.
    func waitForStream(timeoutMs: Int64) -> Int {
        guard let js else { return 0 }
        var o = jsPubOptions()
        jsPubOptions_Init(&o)
        o.MaxWait = timeoutMs
        guard js_PublishAsyncComplete(js, &o) != NATS_OK else { return 0 }
        var list = natsMsgList()
        guard js_PublishAsyncGetPendingList(&list, js) == NATS_OK else { return 0 }
        let n = Int(list.Count)
        natsMsgList_Destroy(&list)
        return n
    }

    /// The stream's last sequence number (0 when empty); nil when JetStream does not answer.
    func streamLastSequence(_ name: String) -> UInt64? {
        guard let js = try? jetStream() else { return nil }
        var info: UnsafeMutablePointer<jsStreamInfo>?
        var err = jsErrCode(0)
        guard js_GetStreamInfo(&info, js, name, nil, &err) == NATS_OK, let info else { return nil }
        defer { jsStreamInfo_Destroy(info) }
        return info.pointee.State.LastSeq
    }

    /// A JetStream message's sequence number in its stream (0 when it has none).
    static func streamSequence(_ msg: OpaquePointer) -> UInt64 {
        var meta: UnsafeMutablePointer<jsMsgMetaData>?
        guard natsMsg_GetMetaData(&meta, msg) == NATS_OK, let meta else { return 0 }
        defer { jsMsgMetaData_Destroy(meta) }
        return meta.pointee.Sequence.Stream
    }

    /// An ordered consumer of `subject`: first the last message of every subject, then each new
    /// one, in stream order; its messages carry `token`.
    func subscribeLastPerSubject(_ subject: String, token: UInt64) throws {
        let js = try jetStream()
        let box = UnsafeMutablePointer<SubscriptionBox>.allocate(capacity: 1)
        box.initialize(to: SubscriptionBox(client: Unmanaged.passUnretained(self), token: token))
        var so = jsSubOptions()
        jsSubOptions_Init(&so)
        so.Ordered = true
        so.Config.DeliverPolicy = js_DeliverLastPerSubject
        var sub: OpaquePointer?
        var err = jsErrCode(0)
        let handler: natsMsgHandler = { _, _, msg, closure in
            let b = closure!.assumingMemoryBound(to: SubscriptionBox.self).pointee
            guard let msg else { return }
            if let d = b.client.takeUnretainedValue().delegate { d.natsMessage(msg, subscription: b.token) }
            natsMsg_Destroy(msg)
        }
        let rc = js_Subscribe(&sub, js, subject, handler, box, nil, &so, &err)
        guard rc == NATS_OK, let sub else {
            box.deinitialize(count: 1); box.deallocate()
            throw NatsError("JetStream subscribe \(subject)", rc)
        }
        subscriptions[token] = sub
        boxes[token] = box
    }

    /// A key-value bucket (created with `replicas` when missing); destroyed with the client.
    func keyValue(bucket: String, replicas: Int) throws -> OpaquePointer {
        let js = try jetStream()
        var kv: OpaquePointer?
        if js_KeyValue(&kv, js, bucket) == NATS_OK, let kv { buckets.append(kv); return kv }
        var cfg = kvConfig()
        kvConfig_Init(&cfg)
        let rc = bucket.withCString { b -> natsStatus in
            cfg.Bucket = b
            cfg.History = 1
            cfg.Replicas = Int32(replicas)
            cfg.StorageType = js_FileStorage
            return js_CreateKeyValue(&kv, js, &cfg)
        }
        guard rc == NATS_OK, let kv else { throw NatsError("key-value bucket \(bucket)", rc) }
        buckets.append(kv)
        return kv
    }
    private var buckets: [OpaquePointer] = []

    enum KVGet { case value(String, revision: UInt64), missing, failed(NatsError) }

    static func kvGet(_ kv: OpaquePointer, _ key: String) -> KVGet {
        var e: OpaquePointer?
        let rc = kvStore_Get(&e, kv, key)
        if rc == NATS_NOT_FOUND { return .missing }
        guard rc == NATS_OK, let e else { return .failed(NatsError("registry get", rc)) }
        defer { kvEntry_Destroy(e) }
        return .value(String(cString: kvEntry_ValueString(e)), revision: kvEntry_Revision(e))
    }

    /// Create when `revision` is nil, else update only from that revision (compare-and-set).
    /// False when someone else wrote first.
    static func kvSet(_ kv: OpaquePointer, _ key: String, _ value: String, expecting revision: UInt64?) throws -> Bool {
        var rev: UInt64 = 0
        let rc = revision.map { kvStore_UpdateString(&rev, kv, key, value, $0) } ?? kvStore_CreateString(&rev, kv, key, value)
        if rc == NATS_OK { return true }
        // A create over an existing key, or an update from a stale revision.
        var last = NATS_OK
        if let d = nats_GetLastError(&last), String(cString: d).contains("wrong last sequence") { return false }
        throw NatsError("registry set", rc)
    }

    /// A request and its reply's payload; nil on timeout or when nobody answers.
    func request(_ subject: String, _ payload: [UInt8], timeoutMs: Int64) -> [UInt8]? {
        var reply: OpaquePointer?
        let rc = payload.withUnsafeBytes { p in natsConnection_Request(&reply, connection, subject, p.baseAddress, Int32(p.count), timeoutMs) }
        guard rc == NATS_OK, let reply else { return nil }
        defer { natsMsg_Destroy(reply) }
        let n = Int(natsMsg_GetDataLength(reply))
        return n == 0 ? [] : Array(UnsafeRawBufferPointer(start: natsMsg_GetData(reply), count: n))
    }

    /// A request whose answer comes to `reply` (a subject this client subscribes to).
    func publish(_ subject: String, reply: String, _ payload: [UInt8]) -> natsStatus {
        payload.withUnsafeBytes { p in natsConnection_PublishRequest(connection, subject, reply, p.baseAddress, Int32(p.count)) }
    }

    func publish(_ subject: String, _ payload: [UInt8]) -> natsStatus {
        payload.withUnsafeBytes { p in natsConnection_Publish(connection, subject, p.baseAddress, Int32(p.count)) }
    }

    func unsubscribe(_ token: UInt64) {
        guard let sub = subscriptions.removeValue(forKey: token) else { return }
        _ = natsSubscription_Unsubscribe(sub)
        natsSubscription_Destroy(sub)
        // The box may still be read by a callback in flight: kept until close.
    }

    /// Publishes and destroys `msg`.
    func publish(_ msg: OpaquePointer) -> natsStatus {
        defer { natsMsg_Destroy(msg) }
        return natsConnection_PublishMsg(connection, msg)
    }

    func flush(timeoutMs: Int64) -> Bool {
        guard let c = connection else { return false }
        return natsConnection_FlushTimeout(c, timeoutMs) == NATS_OK
    }

    func close() {
        for (_, sub) in subscriptions { natsSubscription_Destroy(sub) }
        subscriptions.removeAll()
        for kv in buckets { kvStore_Destroy(kv) }
        buckets.removeAll()
        if let js { jsCtx_Destroy(js); self.js = nil }
        if let c = connection {
            natsConnection_Close(c)
            natsConnection_Destroy(c)
            connection = nil
        }
        for (_, b) in boxes { b.deinitialize(count: 1); b.deallocate() }
        boxes.removeAll()
    }
}

private func check(_ what: String, _ s: natsStatus) throws {
    if s != NATS_OK { throw NatsError(what, s) }
}
