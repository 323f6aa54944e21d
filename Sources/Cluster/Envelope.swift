import Broker
import CNats
import Glibc
import MQTTCodec

/// A message between nodes: the payload is the NATS message's data; what MQTT says about it is
/// in NATS headers, each value percent-encoded where it could hold characters a header cannot
/// (so every user property, content type and client id round-trips exactly):
///
///   Tp-Origin   node/epoch/stream   who sent it: one stream per loop, each in order
///   Tp-Seq      n                   its place in that stream (duplicates are dropped by it)
///   Tp-Qos      0 | 1 | 2
///   Tp-Retain   1                   (absent: not retained)
///   Tp-Client   the publisher's client id (absent: none, e.g. a rule's republish)
///   Tp-Expiry   seconds left of the Message Expiry Interval
///   Tp-Format, Tp-Content-Type, Tp-Response-Topic, Tp-Correlation (hex)
///   Tp-User     name=value, one header value per user property, in order
enum Envelope {
    struct Decoded {
        var origin: String
        var seq: UInt64
        var message: Message
    }

    static func make(_ m: Message, subject: String, origin: String, seq: UInt64, now: UInt64) -> OpaquePointer? {
        var msg: OpaquePointer?
        let rc = m.payload.withUnsafeBufferPointer { p in
            natsMsg_Create(&msg, subject, nil, p.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }, Int32(p.count))
        }
        guard rc == NATS_OK, let msg else { return nil }
        func set(_ k: String, _ v: String) { _ = natsMsgHeader_Set(msg, k, v) }
        set("Tp-Origin", origin)
        set("Tp-Seq", String(seq))
        set("Tp-Qos", String(m.qos.rawValue))
        if m.retain { set("Tp-Retain", "1") }
        if !m.publisherClientId.isEmpty { set("Tp-Client", escape(m.publisherClientId)) }
        if let e = m.expiresAt { set("Tp-Expiry", String(e > now ? (e - now + 999) / 1000 : 0)) }
        let p = m.properties
        if let f = p.payloadFormatIndicator { set("Tp-Format", String(f)) }
        if let c = p.contentType { set("Tp-Content-Type", escape(c)) }
        if let r = p.responseTopic { set("Tp-Response-Topic", escape(r)) }
        if let c = p.correlationData { set("Tp-Correlation", hex(c)) }
        for u in p.userProperties { _ = natsMsgHeader_Add(msg, "Tp-User", escape(u.name) + "=" + escape(u.value)) }
        return msg
    }

    /// Nil when a header is missing or malformed (counted as refused by the caller).
    static func decode(_ msg: OpaquePointer, topic: String, now: UInt64, wallSeconds: Int64) -> Decoded? {
        func get(_ k: String) -> String? {
            var v: UnsafePointer<CChar>?
            guard natsMsgHeader_Get(msg, k, &v) == NATS_OK, let v else { return nil }
            return String(cString: v)
        }
        guard let origin = get("Tp-Origin"), let seq = get("Tp-Seq").flatMap({ UInt64($0) }),
              let q = get("Tp-Qos").flatMap({ UInt8($0) }), let qos = QoS(rawValue: q) else { return nil }
        var client = ""
        if let c = get("Tp-Client") { guard let v = unescape(c) else { return nil }; client = v }
        var props = Properties()
        if let f = get("Tp-Format") {
            guard let v = UInt8(f), v <= 1 else { return nil }
            props.payloadFormatIndicator = v
        }
        if let c = get("Tp-Content-Type") { guard let v = unescape(c) else { return nil }; props.contentType = v }
        if let r = get("Tp-Response-Topic") { guard let v = unescape(r) else { return nil }; props.responseTopic = v }
        if let c = get("Tp-Correlation") { guard let v = unhex(c) else { return nil }; props.correlationData = v }
        var values: UnsafeMutablePointer<UnsafePointer<CChar>?>?
        var count: Int32 = 0
        if natsMsgHeader_Values(msg, "Tp-User", &values, &count) == NATS_OK, let values {
            defer { free(values) }
            for i in 0..<Int(count) {
                guard let raw = values[i] else { return nil }
                let pair = String(cString: raw)
                guard let eq = pair.firstIndex(of: "="), let name = unescape(String(pair[..<eq])),
                      let value = unescape(String(pair[pair.index(after: eq)...])) else { return nil }
                props.userProperties.append(UserProperty(name, value))
            }
        }
        var expiresAt: UInt64?
        if let e = get("Tp-Expiry") {
            guard let s = UInt64(e) else { return nil }
            expiresAt = now + s * 1000
        }
        let n = Int(natsMsg_GetDataLength(msg))
        let payload: [UInt8] = n == 0 ? [] : Array(UnsafeRawBufferPointer(start: natsMsg_GetData(msg), count: n))
        let m = Message(topic: topic, payload: payload, qos: qos, retain: get("Tp-Retain") == "1", properties: props,
                        expiresAt: expiresAt, publisher: nil, publisherClientId: client, receivedAt: wallSeconds)
        return Decoded(origin: origin, seq: seq, message: m)
    }

    // MARK: Header values

    /// Keeps printable ASCII other than `%` and `=`; every other byte is `%XX`.
    static func escape(_ s: String) -> String {
        if s.utf8.allSatisfy(isKept) { return s }
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count * 3)
        for b in s.utf8 {
            if isKept(b) { out.append(b) } else {
                out.append(UInt8(ascii: "%")); Hex.append(b, to: &out)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func unescape(_ s: String) -> String? {
        guard s.utf8.contains(UInt8(ascii: "%")) else { return s.utf8.allSatisfy(isKept) ? s : nil }
        var out: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "%") {
                guard let h = it.popFirst().flatMap({ Hex.value($0, lowercase: true) }), let l = it.popFirst().flatMap({ Hex.value($0, lowercase: true) }) else { return nil }
                out.append(h << 4 | l)
            } else {
                guard isKept(b) else { return nil }
                out.append(b)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    static func hex(_ bytes: [UInt8]) -> String { Hex.encode(bytes) }

    static func unhex(_ s: String) -> [UInt8]? {
        let u = Array(s.utf8)
        guard u.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(u.count / 2)
        var i = 0
        while i < u.count {
            guard let h = Hex.value(u[i], lowercase: true), let l = Hex.value(u[i + 1], lowercase: true) else { return nil }
            out.append(h << 4 | l)
            i += 2
        }
        return out
    }

    @inline(__always)
    private static func isKept(_ b: UInt8) -> Bool {
        b > 0x20 && b < 0x7F && b != UInt8(ascii: "%") && b != UInt8(ascii: "=")
    }
}
