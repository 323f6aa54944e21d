import MQTTCodec
import Storage

// The broker's records in the durable store (Storage keyspaces), format version 1.
//
//   keyspace    key                                   value
//   sessions    clientId 0x00 's'                     SessionRecord
//   sessions    clientId 0x00 'q' packetId(u16)       empty: an inbound QoS 2 id awaiting PUBREL
//   deliveries  clientId 0x00 seq(u64)                DeliveryRecord (queued or inflight, per session)
//   messages    id(u64)                               MessageRecord, shared by every delivery of it
//   retained    topic                                 MessageRecord
//   wills       clientId                              WillRecord (a will waiting for its delay)
//   bridges     bridgeId 0x00 id(u64)                 StoredBridgeRecord (a disk-buffered bridge's record)
//   meta        "alive"                               u64: wall-clock ms, rewritten every second
//
// Client ids and topics never contain U+0000 [MQTT-1.5.4-2], so 0x00 ends the client id and a
// prefix scan of `clientId 0x00` finds exactly one session's records. Integers in keys are
// big-endian, so iteration order is numeric order (a session's deliveries come back in the
// order they were queued). Times are wall-clock milliseconds: time the broker was down counts
// against expiry. Every value starts with its format version; a reader refuses unknown ones.

enum RecordKind {
    static let session: UInt8 = 0x73   // 's'
    static let inbound: UInt8 = 0x71   // 'q'
}

enum RecordKeys {
    static func sessionPrefix(_ clientId: String) -> [UInt8] {
        var k = Array(clientId.utf8)
        k.append(0)
        return k
    }

    static func session(_ clientId: String) -> [UInt8] {
        var k = sessionPrefix(clientId)
        k.append(RecordKind.session)
        return k
    }

    static func inbound(_ clientId: String, _ packetId: UInt16) -> [UInt8] {
        var k = sessionPrefix(clientId)
        k.append(RecordKind.inbound)
        k.append(UInt8(packetId >> 8)); k.append(UInt8(packetId & 0xFF))
        return k
    }

    static func delivery(_ clientId: String, _ seq: UInt64) -> [UInt8] {
        var k = sessionPrefix(clientId)
        RecordKey.append(seq, to: &k)
        return k
    }

    static func message(_ id: UInt64) -> [UInt8] { RecordKey.make([], id) }

    static let alive: [UInt8] = Array("alive".utf8)

    /// Bridge ids ("webhook.crm") are names from the configuration: no U+0000 either.
    static func bridgeRecord(_ bridge: String, _ id: UInt64) -> [UInt8] {
        var k = Array(bridge.utf8)
        k.append(0)
        RecordKey.append(id, to: &k)
        return k
    }

    /// Splits a sessions/deliveries key at its 0x00: the client id and what follows.
    static func split(_ key: UnsafeRawBufferPointer) -> (clientId: String, rest: UnsafeRawBufferPointer)? {
        guard let zero = key.firstIndex(of: 0) else { return nil }
        guard let id = String(validating: UnsafeRawBufferPointer(rebasing: key[0..<zero]), as: UTF8.self) else { return nil }
        return (id, UnsafeRawBufferPointer(rebasing: key[(zero + 1)...]))
    }
}

/// A persistent session as stored: what a reconnect or a restart needs to carry on.
struct SessionRecord: Equatable {
    struct Subscription: Equatable {
        var filter: String
        var options: SubscriptionOptions
        var identifier: UInt32?
    }
    var protocolVersion: ProtocolVersion
    var expiryInterval: UInt32
    /// When the connection closed (wall ms); 0 while connected.
    var disconnectedAt: UInt64
    var subscriptions: [Subscription]

    func encode() -> [UInt8] {
        var w = RecordWriter(reservingCapacity: 32 + subscriptions.count * 24)
        w.u8(1)
        w.u8(protocolVersion.rawValue)
        w.u32(expiryInterval)
        w.u64(disconnectedAt)
        w.varint(UInt64(subscriptions.count))
        for s in subscriptions {
            w.string(s.filter)
            w.u8(SessionRecord.optionsByte(s.options))
            w.varint(UInt64(s.identifier ?? 0))
        }
        return w.buffer
    }

    static func decode(_ r: inout RecordReader) throws(StorageError) -> SessionRecord {
        try expectVersion(&r, "session")
        guard let version = ProtocolVersion(rawValue: try r.u8()) else { throw .corruption("session record: unknown protocol level") }
        let expiry = try r.u32()
        let disconnectedAt = try r.u64()
        let n = try r.varint()
        guard n <= UInt64(r.remaining) else { throw .corruption("session record: \(n) subscriptions in \(r.remaining) bytes") }
        var subs: [Subscription] = []
        subs.reserveCapacity(Int(n))
        for _ in 0..<n {
            let filter = try r.string()
            let options = try optionsFromByte(try r.u8())
            let id = try r.varint()
            guard id <= 268_435_455 else { throw .corruption("session record: subscription identifier \(id) out of range") }
            subs.append(Subscription(filter: filter, options: options, identifier: id == 0 ? nil : UInt32(id)))
        }
        try r.expectEnd()
        return SessionRecord(protocolVersion: version, expiryInterval: expiry, disconnectedAt: disconnectedAt, subscriptions: subs)
    }

    /// The SUBSCRIBE options byte of MQTT 5.0 §3.8.3.1.
    static func optionsByte(_ o: SubscriptionOptions) -> UInt8 {
        o.qos.rawValue | (o.noLocal ? 0x04 : 0) | (o.retainAsPublished ? 0x08 : 0) | (o.retainHandling << 4)
    }

    static func optionsFromByte(_ b: UInt8) throws(StorageError) -> SubscriptionOptions {
        guard let qos = QoS(rawValue: b & 0x03), b >> 4 <= 2, b & 0xC0 == 0 else {
            throw .corruption("subscription options byte 0x\(String(b, radix: 16)) is invalid")
        }
        return SubscriptionOptions(qos: qos, noLocal: b & 0x04 != 0, retainAsPublished: b & 0x08 != 0, retainHandling: b >> 4)
    }
}

/// One message queued for (or in flight to) one session.
struct DeliveryRecord: Equatable {
    enum State: UInt8 {
        case queued = 0, awaitingPubAck = 1, awaitingPubRec = 2, awaitingPubComp = 3
        // The mapping to OutboundMessage.State is in Broker+Persistence.swift (this file stays
        // free of broker types so fuzz/run.sh can compile it alone).
    }
    var messageId: UInt64
    var qos: QoS
    var retain: Bool
    var state: State
    /// 0 while queued.
    var packetId: UInt16
    var identifiers: [UInt32]

    func encode() -> [UInt8] {
        var w = RecordWriter(reservingCapacity: 16 + identifiers.count * 2)
        w.u8(1)
        w.u64(messageId)
        w.u8(qos.rawValue | (retain ? 0x04 : 0) | state.rawValue << 4)
        w.u16(packetId)
        w.varint(UInt64(identifiers.count))
        for i in identifiers { w.varint(UInt64(i)) }
        return w.buffer
    }

    static func decode(_ r: inout RecordReader) throws(StorageError) -> DeliveryRecord {
        try expectVersion(&r, "delivery")
        let id = try r.u64()
        let flags = try r.u8()
        guard let qos = QoS(rawValue: flags & 0x03), qos != .atMostOnce, let state = State(rawValue: flags >> 4), flags & 0x08 == 0 else {
            throw .corruption("delivery record: flags 0x\(String(flags, radix: 16)) are invalid")
        }
        let packetId = try r.u16()
        if (state == .queued) != (packetId == 0) { throw .corruption("delivery record: packet id \(packetId) in state \(state)") }
        let n = try r.varint()
        guard n <= UInt64(r.remaining) else { throw .corruption("delivery record: \(n) identifiers in \(r.remaining) bytes") }
        var ids: [UInt32] = []
        for _ in 0..<n {
            let v = try r.varint()
            guard v >= 1, v <= 268_435_455 else { throw .corruption("delivery record: subscription identifier \(v) out of range") }
            ids.append(UInt32(v))
        }
        try r.expectEnd()
        return DeliveryRecord(messageId: id, qos: qos, retain: flags & 0x04 != 0, state: state, packetId: packetId, identifiers: ids)
    }
}

/// An application message as stored (queued deliveries share one; retained ones have their own).
struct MessageRecord: Equatable {
    var topic: String
    var payload: [UInt8]
    var qos: QoS
    var retain: Bool
    /// The pass-through properties (Message.passthrough).
    var properties: Properties
    /// Wall ms; nil never expires.
    var expiresAt: UInt64?
    var publisherClientId: String
    var publisherUsername: String?
    var peerhost: String
    var receivedAt: Int64

    func encode() -> [UInt8] {
        var w = RecordWriter(reservingCapacity: 40 + topic.utf8.count + payload.count)
        w.u8(1)
        w.string(topic)
        w.bytes(payload)
        w.u8(qos.rawValue | (retain ? 0x04 : 0))
        w.u64(expiresAt.map { $0 + 1 } ?? 0)
        w.string(publisherClientId)
        w.bool(publisherUsername != nil)
        if let u = publisherUsername { w.string(u) }
        w.string(peerhost)
        w.u64(UInt64(bitPattern: receivedAt))
        MessageRecord.encodeProperties(properties, into: &w)
        return w.buffer
    }

    static func decode(_ r: inout RecordReader) throws(StorageError) -> MessageRecord {
        try expectVersion(&r, "message")
        let topic = try r.string()
        let payload = try r.byteArray()
        let flags = try r.u8()
        guard let qos = QoS(rawValue: flags & 0x03), flags & 0xF8 == 0 else {
            throw .corruption("message record: flags 0x\(String(flags, radix: 16)) are invalid")
        }
        let expires = try r.u64()
        let publisher = try r.string()
        let username = try r.bool() ? try r.string() : nil
        let peerhost = try r.string()
        let receivedAt = Int64(bitPattern: try r.u64())
        let props = try decodeProperties(&r)
        try r.expectEnd()
        return MessageRecord(topic: topic, payload: payload, qos: qos, retain: flags & 0x04 != 0, properties: props,
                             expiresAt: expires == 0 ? nil : expires - 1, publisherClientId: publisher,
                             publisherUsername: username, peerhost: peerhost, receivedAt: receivedAt)
    }

    /// The properties a stored message or will can carry (pass-through ones, message expiry and
    /// will delay); a presence mask, then each present field.
    static func encodeProperties(_ p: Properties, into w: inout RecordWriter) {
        var mask: UInt8 = 0
        if p.payloadFormatIndicator != nil { mask |= 0x01 }
        if p.contentType != nil { mask |= 0x02 }
        if p.responseTopic != nil { mask |= 0x04 }
        if p.correlationData != nil { mask |= 0x08 }
        if p.messageExpiryInterval != nil { mask |= 0x10 }
        if p.willDelayInterval != nil { mask |= 0x20 }
        w.u8(mask)
        if let v = p.payloadFormatIndicator { w.u8(v) }
        if let v = p.contentType { w.string(v) }
        if let v = p.responseTopic { w.string(v) }
        if let v = p.correlationData { w.bytes(v) }
        if let v = p.messageExpiryInterval { w.u32(v) }
        if let v = p.willDelayInterval { w.u32(v) }
        w.varint(UInt64(p.userProperties.count))
        for u in p.userProperties {
            w.string(u.name)
            w.string(u.value)
        }
    }

    static func decodeProperties(_ r: inout RecordReader) throws(StorageError) -> Properties {
        var p = Properties()
        let mask = try r.u8()
        guard mask & 0xC0 == 0 else { throw .corruption("properties mask 0x\(String(mask, radix: 16)) is invalid") }
        if mask & 0x01 != 0 { p.payloadFormatIndicator = try r.u8() }
        if mask & 0x02 != 0 { p.contentType = try r.string() }
        if mask & 0x04 != 0 { p.responseTopic = try r.string() }
        if mask & 0x08 != 0 { p.correlationData = try r.byteArray() }
        if mask & 0x10 != 0 { p.messageExpiryInterval = try r.u32() }
        if mask & 0x20 != 0 { p.willDelayInterval = try r.u32() }
        let n = try r.varint()
        guard n <= UInt64(r.remaining) else { throw .corruption("\(n) user properties in \(r.remaining) bytes") }
        for _ in 0..<n {
            let name = try r.string()
            let value = try r.string()
            p.userProperties.append(UserProperty(name, value))
        }
        return p
    }
}

/// A will waiting for its Will Delay Interval (published at `publishAt`, wall ms).
struct WillRecord: Equatable {
    var will: Will
    var publishAt: UInt64

    func encode() -> [UInt8] {
        var w = RecordWriter(reservingCapacity: 32 + will.topic.utf8.count + will.payload.count)
        w.u8(1)
        w.u64(publishAt)
        w.string(will.topic)
        w.bytes(will.payload)
        w.u8(will.qos.rawValue | (will.retain ? 0x04 : 0))
        MessageRecord.encodeProperties(will.properties, into: &w)
        return w.buffer
    }

    static func decode(_ r: inout RecordReader) throws(StorageError) -> WillRecord {
        try expectVersion(&r, "will")
        let at = try r.u64()
        let topic = try r.string()
        let payload = try r.byteArray()
        let flags = try r.u8()
        guard let qos = QoS(rawValue: flags & 0x03), flags & 0xF8 == 0 else {
            throw .corruption("will record: flags 0x\(String(flags, radix: 16)) are invalid")
        }
        let props = try MessageRecord.decodeProperties(&r)
        try r.expectEnd()
        return WillRecord(will: Will(topic: topic, payload: payload, qos: qos, retain: flags & 0x04 != 0, properties: props), publishAt: at)
    }
}

/// A record waiting in a disk-buffered bridge (`buffer = "disk"`): what the rule rendered
/// (BridgeRecord's fields), written in the publisher's batch (so an acknowledged PUBLISH's
/// records are on disk) and deleted by the bridge once its outcome is final.
struct StoredBridgeRecord: Equatable {
    struct Header: Equatable { var name: String; var value: String }
    /// When the rule rendered it (wall ms): request_ttl keeps counting across a restart.
    var submittedAt: UInt64
    var rule: String
    var target: String
    var method: String
    var key: [UInt8]?
    var body: [UInt8]
    var headers: [Header]
    var parameters: [[UInt8]?]

    func encode() -> [UInt8] {
        var w = RecordWriter(reservingCapacity: 48 + rule.utf8.count + target.utf8.count + body.count + (key?.count ?? 0))
        w.u8(1)
        w.u64(submittedAt)
        w.string(rule)
        w.string(target)
        w.string(method)
        if let key { w.u8(1); w.bytes(key) } else { w.u8(0) }
        w.bytes(body)
        w.varint(UInt64(headers.count))
        for h in headers { w.string(h.name); w.string(h.value) }
        w.varint(UInt64(parameters.count))
        for p in parameters {
            if let p { w.u8(1); w.bytes(p) } else { w.u8(0) }
        }
        return w.buffer
    }

    static func decode(_ r: inout RecordReader) throws(StorageError) -> StoredBridgeRecord {
        try expectVersion(&r, "bridge")
        let at = try r.u64()
        let rule = try r.string()
        let target = try r.string()
        let method = try r.string()
        func optionalBytes(_ r: inout RecordReader, _ what: String) throws(StorageError) -> [UInt8]? {
            switch try r.u8() {
            case 0: return nil
            case 1: return try r.byteArray()
            case let b: throw .corruption("bridge record: \(what) flag \(b) is invalid")
            }
        }
        let key = try optionalBytes(&r, "key")
        let body = try r.byteArray()
        // Each header takes at least 2 bytes and each parameter 1: a count beyond what is left
        // is damage, not a reason to allocate.
        let headerCount = try r.varint()
        guard headerCount <= UInt64(r.remaining / 2) else { throw .corruption("bridge record: \(headerCount) headers in \(r.remaining) bytes") }
        var headers: [Header] = []
        for _ in 0..<headerCount { headers.append(Header(name: try r.string(), value: try r.string())) }
        let paramCount = try r.varint()
        guard paramCount <= UInt64(r.remaining) else { throw .corruption("bridge record: \(paramCount) parameters in \(r.remaining) bytes") }
        var parameters: [[UInt8]?] = []
        for _ in 0..<paramCount { parameters.append(try optionalBytes(&r, "parameter")) }
        try r.expectEnd()
        return StoredBridgeRecord(submittedAt: at, rule: rule, target: target, method: method, key: key, body: body,
                                  headers: headers, parameters: parameters)
    }
}

private func expectVersion(_ r: inout RecordReader, _ what: String) throws(StorageError) {
    let v = try r.u8()
    guard v == 1 else { throw .corruption("\(what) record: unknown format version \(v)") }
}

/// Record-level checking for `turnpike storage check` (the same decoding recovery uses).
public enum StoredRecords {
    /// Why the record at `key` in `ks` would be dropped at start-up, or nil when it decodes.
    public static func problem(_ ks: Keyspace, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> String? {
        var r = RecordReader(value)
        do {
            switch ks {
            case .sessions:
                guard let (_, rest) = RecordKeys.split(key), let kind = rest.first else { return "bad key" }
                if kind == RecordKind.session && rest.count == 1 { _ = try SessionRecord.decode(&r) }
                else if kind == RecordKind.inbound && rest.count == 3 { try r.expectEnd() }
                else { return "unknown record kind" }
            case .deliveries:
                guard let (_, rest) = RecordKeys.split(key), rest.count == 8 else { return "bad key" }
                _ = try DeliveryRecord.decode(&r)
            case .messages:
                guard key.count == 8 else { return "bad key" }
                _ = try MessageRecord.decode(&r)
            case .retained:
                _ = try MessageRecord.decode(&r)
            case .wills:
                _ = try WillRecord.decode(&r)
            case .bridges:
                guard let (_, rest) = RecordKeys.split(key), rest.count == 8 else { return "bad key" }
                _ = try StoredBridgeRecord.decode(&r)
            case .meta:
                break
            }
        } catch {
            return error.message
        }
        return nil
    }
}
