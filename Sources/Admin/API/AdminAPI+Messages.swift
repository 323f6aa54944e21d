import Broker
import Foundation
import MQTTCodec

// /api/v5/mqtt/retainer/…, /api/v5/publish.

extension AdminAPI {
    func retainedJSON(_ m: RetainedInfo, payload: Bool) -> [String: Any] {
        var o: [String: Any] = [
            "topic": m.topic, "qos": m.qos, "from_clientid": m.fromClientId, "from_username": JSON.orNull(m.fromUsername),
            "publish_at": Self.rfc3339(milliseconds: m.publishedAt * 1000), "payload_size": m.payload.count,
        ]
        if payload { o["payload"] = Data(m.payload).base64EncodedString() }
        return o
    }

    func retainedMessages(_ q: [String: String]) throws(APIError) -> HTTPResponse {
        for name in q.keys where !["page", "limit", "topic"].contains(name) {
            throw .badRequest("unknown query parameter '\(name)'")
        }
        if let f = q["topic"], !Topic.isValidFilter(f) { throw .badRequest("topic must be a topic filter") }
        _ = try paging(q)
        var all = broker.retainedMessages()
        if let f = q["topic"] { all = all.filter { Topic.matches(filter: f, topic: $0.topic) } }
        return try paged(all, q) { self.retainedJSON($0, payload: false) }
    }

    func retainedMessage(_ topic: String) throws(APIError) -> HTTPResponse {
        guard let m = broker.retainedMessage(topic: topic) else {
            throw .notFound("NOT_FOUND", "no retained message on '\(topic)'")
        }
        return JSON.response(retainedJSON(m, payload: true))
    }

    func deleteRetained(_ topic: String) throws(APIError) -> HTTPResponse {
        guard broker.deleteRetained(topic: topic, timeoutMilliseconds: Self.loopTimeoutMilliseconds) else {
            throw .notFound("NOT_FOUND", "no retained message on '\(topic)'")
        }
        return .noContent
    }

    /// EMQX's body: topic, payload, qos, retain, payload_encoding ("plain" or "base64"),
    /// properties (payload_format_indicator, message_expiry_interval, content_type,
    /// response_topic, correlation_data, user_properties). 200 `{"id"}` when some session got
    /// it, 202 with reason code 16 when none did.
    func publish(_ body: [UInt8]) throws(APIError) -> HTTPResponse {
        let f = try Fields(JSON.object(body), allowed: ["topic", "payload", "qos", "retain", "payload_encoding", "properties", "clientid"])
        guard let topic = try f.string("topic") else { throw .badRequest("'topic' is required") }
        guard Topic.isValidName(topic) else { throw APIError(status: 400, code: "BAD_TOPIC", message: "'\(topic)' is not a valid topic name") }
        let qosValue = try f.int("qos") ?? 0
        guard let qos = QoS(rawValue: UInt8(clamping: qosValue)), (0...2).contains(qosValue) else {
            throw .badRequest("'qos' must be 0, 1 or 2")
        }
        let text = try f.string("payload") ?? ""
        let payload: [UInt8]
        switch try f.string("payload_encoding") ?? "plain" {
        case "plain": payload = Array(text.utf8)
        case "base64":
            guard let d = Data(base64Encoded: text) else { throw .badRequest("'payload' is not valid base64") }
            payload = Array(d)
        default: throw .badRequest("'payload_encoding' must be \"plain\" or \"base64\"")
        }
        let properties = try publishProperties(f.object("properties"))
        let retain = try f.bool("retain") ?? false
        guard let delivered = broker.publishFromAdmin(topic: topic, payload: payload, qos: qos, retain: retain,
                                                      properties: properties, timeoutMilliseconds: Self.loopTimeoutMilliseconds) else {
            throw .unavailable("the broker's loop 0 did not answer within \(Self.loopTimeoutMilliseconds) ms")
        }
        var idBytes = [UInt8](repeating: 0, count: 16)
        for i in idBytes.indices { idBytes[i] = UInt8.random(in: 0...255) }
        let id = idBytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
        if delivered == 0 {
            return JSON.response(["id": id, "message": "no_matching_subscribers", "reason_code": 16], status: 202)
        }
        return JSON.response(["id": id])
    }

    private func publishProperties(_ o: [String: Any]?) throws(APIError) -> Properties {
        var p = Properties()
        guard let o else { return p }
        let f = try Fields(o, allowed: ["payload_format_indicator", "message_expiry_interval", "content_type",
                                        "response_topic", "correlation_data", "user_properties"])
        if let v = try f.int("payload_format_indicator") {
            guard v == 0 || v == 1 else { throw .badRequest("'payload_format_indicator' must be 0 or 1") }
            p.payloadFormatIndicator = UInt8(v)
        }
        if let v = try f.int("message_expiry_interval") {
            guard (0...0xFFFF_FFFF).contains(v) else { throw .badRequest("'message_expiry_interval' must be 0…4294967295 seconds") }
            p.messageExpiryInterval = UInt32(v)
        }
        p.contentType = try f.string("content_type")
        if let t = try f.string("response_topic") {
            guard Topic.isValidName(t) else { throw .badRequest("'response_topic' is not a valid topic name") }
            p.responseTopic = t
        }
        if let c = try f.string("correlation_data") { p.correlationData = Array(c.utf8) }
        if let u = try f.object("user_properties") {
            for k in u.keys.sorted() {
                guard let v = u[k] as? String else { throw .badRequest("'user_properties' values must be strings") }
                p.userProperties.append(UserProperty(k, v))
            }
        }
        return p
    }
}
