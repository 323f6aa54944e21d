import Broker
import Foundation

// /api/v5/stats, /api/v5/metrics (EMQX's names), /api/v5/status (health).

extension AdminAPI {
    func stats(_ q: [String: String]) throws(APIError) -> HTTPResponse {
        for name in q.keys where name != "aggregate" { throw .badRequest("unknown query parameter '\(name)'") }
        let s = broker.stats
        let sessions = broker.sessionCounts()
        let topics = Set(broker.allSubscriptions(timeoutMilliseconds: Self.loopTimeoutMilliseconds).map { Self.plainFilter($0.topic) }).count
        let connected = s.clientsConnected.load(ordering: .relaxed)
        let figures: [String: Any] = [
            "connections.count": sessions.total, "live_connections.count": connected,
            "live_connections.max": s.clientsMaximum.load(ordering: .relaxed),
            "sessions.count": sessions.total, "sessions.persistent.count": sessions.persistent,
            "sessions.offline.count": sessions.offline,
            "subscriptions.count": s.subscriptions.load(ordering: .relaxed), "topics.count": topics,
            "retained.count": s.retained.load(ordering: .relaxed),
            "sockets.count": s.socketsOpen.load(ordering: .relaxed),
            "messages.queued.count": s.messagesStored.load(ordering: .relaxed),
        ]
        return try perNode(figures, q)
    }

    func metricsJSON(_ q: [String: String]) throws(APIError) -> HTTPResponse {
        for name in q.keys where name != "aggregate" { throw .badRequest("unknown query parameter '\(name)'") }
        let c = broker.loopReports(timeoutMilliseconds: Self.loopTimeoutMilliseconds).compactMap { $0 }
            .reduce(LoopCounters()) { $0 + $1.counters }
        let s = broker.stats
        let received = c.messagesReceived, sent = c.messagesSent
        let figures: [String: Any] = [
            "messages.received": received.qos0 + received.qos1 + received.qos2,
            "messages.qos0.received": received.qos0, "messages.qos1.received": received.qos1, "messages.qos2.received": received.qos2,
            "messages.sent": sent.qos0 + sent.qos1 + sent.qos2,
            "messages.qos0.sent": sent.qos0, "messages.qos1.sent": sent.qos1, "messages.qos2.sent": sent.qos2,
            "messages.dropped": c.droppedQueueFull + c.droppedClientSlow + c.droppedExpired + c.droppedNoSubscribers + c.droppedDenied,
            "messages.dropped.no_subscribers": c.droppedNoSubscribers,
            "messages.dropped.queue_full": c.droppedQueueFull, "messages.dropped.client_slow": c.droppedClientSlow,
            "messages.dropped.expired": c.droppedExpired, "messages.dropped.denied": c.droppedDenied,
            "packets.received": s.messagesReceived.load(ordering: .relaxed), "packets.sent": s.messagesSent.load(ordering: .relaxed),
            "bytes.received": s.bytesReceived.load(ordering: .relaxed), "bytes.sent": s.bytesSent.load(ordering: .relaxed),
            "authentication.failure": c.authFailures, "client.banned": c.bannedRefusals,
            "tls.handshakes": c.tlsHandshakes, "tls.handshake_failures": c.tlsHandshakeFailures,
        ]
        return try perNode(figures, q)
    }

    /// 200 when every loop answers within a second, else 503 (for load balancers). EMQX's
    /// text, or JSON with `format=json`.
    func status(_ q: [String: String]) -> HTTPResponse {
        let (answered, of) = broker.loopsAnswer(timeoutMilliseconds: Self.loopTimeoutMilliseconds)
        let ok = answered == of
        if q["format"] == "json" {
            return JSON.response(["node_name": node, "rel_vsn": Broker.version, "broker_status": ok ? "started" : "not_responding",
                                  "app_status": ok ? "running" : "not_responding", "loops": of, "loops_answering": answered,
                                  "uptime": broker.uptimeSeconds], status: ok ? 200 : 503)
        }
        let text = ok ? "Node \(node) is started\nturnpike is running\n"
            : "Node \(node) is not responding: \(of - answered) of \(of) loops did not answer within \(Self.loopTimeoutMilliseconds) ms\n"
        return .text(ok ? 200 : 503, text)
    }
}
