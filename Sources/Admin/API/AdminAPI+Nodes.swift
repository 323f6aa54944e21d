import Broker
import Foundation

// /api/v5/nodes (EMQX's path: the cluster's nodes), /api/v5/dead_letters (Turnpike's own).

extension AdminAPI {
    /// This node with EMQX's fields, then every other node the cluster has heard from within its
    /// node timeout (`$SYS/broker/cluster/nodes/list`), which is all that is known of them here.
    /// This node's entry carries the cluster's figures (`$SYS/broker/cluster/…`) under `cluster`.
    func nodes(_ q: [String: String]) throws(APIError) -> HTTPResponse {
        for name in q.keys { throw .badRequest("unknown query parameter '\(name)'") }
        let s = broker.stats
        let p = ProcessFigures.read()
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let figures = broker.clusterFigures.map { Dictionary($0, uniquingKeysWith: { a, _ in a }) }
        let me = figures?["node"] ?? node
        var this: [String: Any] = [
            "node": me, "node_status": "running", "self": true, "role": "core", "version": Broker.version,
            "uptime": broker.uptimeSeconds * 1000, "connections": broker.sessionCounts().total,
            "live_connections": s.clientsConnected.load(ordering: .relaxed),
            "memory_used": p.residentBytes, "process_used": p.openFiles, "max_fds": Int(limit.rlim_cur),
            "loops": broker.loopCount,
        ]
        var out: [[String: Any]] = []
        if let figures {
            var cluster: [String: Any] = [:]
            for (name, value) in figures where name != "node" && name != "nodes/list" { cluster[name] = Int(value) ?? value }
            this["cluster"] = cluster
            out.append(this)
            let others = (figures["nodes/list"] ?? "").split(separator: ",").map(String.init).filter { $0 != me }
            for n in others.sorted() {
                out.append(["node": n, "node_status": "running", "self": false, "role": "core"])
            }
        } else {
            out.append(this)
        }
        return JSON.response(out)
    }

    /// Dead letters since start by `$dlq` topic, and the latest (`limit`, default 20) newest
    /// first, from every loop's ring (DeadLetterLog.swift).
    func deadLetters(_ q: [String: String]) throws(APIError) -> HTTPResponse {
        for name in q.keys where name != "limit" { throw .badRequest("unknown query parameter '\(name)'") }
        let limit = try intParameter(q, "limit", 1...1000) ?? 20
        let d = broker.deadLetters(timeoutMilliseconds: Self.loopTimeoutMilliseconds)
        let topics = d.counts.sorted { $0.key < $1.key }.map { ["topic": $0.key, "count": $0.value] as [String: Any] }
        let recent = d.recent.prefix(limit).map { e -> [String: Any] in
            ["topic": e.topic, "error": e.error, "rule": e.rule, "origin_topic": e.originTopic, "clientid": e.clientId,
             "payload_bytes": e.payloadBytes, "at": Self.rfc3339(milliseconds: e.at)]
        }
        return JSON.response(["total": d.counts.values.reduce(0, +), "topics": topics, "recent": Array(recent)])
    }
}
