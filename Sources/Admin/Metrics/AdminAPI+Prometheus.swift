import Broker

// `GET /metrics`: every figure the broker has, Prometheus' names and conventions (prefix
// `turnpike_`, counters ending `_total`, units in the name). The loops' counters are plain
// per-loop integers, read by each loop on its own thread (`loopReports`) and summed here;
// broker-wide gauges are relaxed atomics; rule counters are per-loop slots summed on read.

extension AdminAPI {
    func prometheus() -> HTTPResponse {
        var p = PrometheusText()
        let reports = broker.loopReports(timeoutMilliseconds: Self.loopTimeoutMilliseconds, takesLag: true)
        let answered = reports.compactMap { $0 }
        let c = answered.reduce(LoopCounters()) { $0 + $1.counters }
        let s = broker.stats

        p.family("turnpike_build_info", .gauge, "Always 1; the version is a label.")
        p.sample("turnpike_build_info", [("version", Broker.version)], 1)
        p.single("turnpike_uptime_seconds", .gauge, "Seconds since the broker started.", broker.uptimeSeconds)

        // Connections and sessions.
        p.family("turnpike_connections", .gauge, "Connected MQTT clients, by listener and protocol version (3 = 3.1, 4 = 3.1.1, 5).")
        var groups: [ConnectionGroup: Int] = [:]
        for r in answered { for (g, n) in r.connections { groups[g, default: 0] += n } }
        for g in groups.keys.sorted(by: { ($0.listener, $0.protocolVersion) < ($1.listener, $1.protocolVersion) }) {
            p.sample("turnpike_connections", [("listener", g.listener), ("protocol_version", String(g.protocolVersion))], groups[g]!)
        }
        p.single("turnpike_connections_max", .gauge, "Most clients connected at once since start.", s.clientsMaximum.load(ordering: .relaxed))
        p.single("turnpike_sockets_open", .gauge, "Accepted sockets not yet closed, CONNECTed or not.", s.socketsOpen.load(ordering: .relaxed))
        var sessions = SessionCounts()
        for r in answered {
            sessions.total += r.sessions.total
            sessions.persistent += r.sessions.persistent
            sessions.offline += r.sessions.offline
        }
        p.single("turnpike_sessions", .gauge, "Sessions, connected or not.", sessions.total)
        p.single("turnpike_sessions_persistent", .gauge, "Sessions that outlive their connection (expiry > 0).", sessions.persistent)
        p.single("turnpike_sessions_offline", .gauge, "Sessions without a connection.", sessions.offline)
        p.single("turnpike_subscriptions", .gauge, "Subscriptions of all sessions.", s.subscriptions.load(ordering: .relaxed))
        p.single("turnpike_retained_messages", .gauge, "Retained messages.", s.retained.load(ordering: .relaxed))

        // Messages.
        func byQoS(_ name: String, _ help: String, _ q: QoSCounts) {
            p.family(name, .counter, help)
            for level in 0...2 { p.sample(name, [("qos", String(level))], q[level]) }
        }
        byQoS("turnpike_messages_received_total", "PUBLISH packets accepted from clients, by QoS.", c.messagesReceived)
        byQoS("turnpike_messages_sent_total", "PUBLISH packets sent to clients, by QoS.", c.messagesSent)
        byQoS("turnpike_payload_received_bytes_total", "Payload bytes of the PUBLISH packets received, by QoS.", c.payloadBytesReceived)
        byQoS("turnpike_payload_sent_bytes_total", "Payload bytes of the PUBLISH packets sent, by QoS.", c.payloadBytesSent)
        p.single("turnpike_packets_received_total", .counter, "MQTT packets received, all types.", s.messagesReceived.load(ordering: .relaxed))
        p.single("turnpike_packets_sent_total", .counter, "MQTT packets sent, all types.", s.messagesSent.load(ordering: .relaxed))
        p.single("turnpike_received_bytes_total", .counter, "Bytes read from client sockets (after TLS).", s.bytesReceived.load(ordering: .relaxed))
        p.single("turnpike_sent_bytes_total", .counter, "Bytes written to client sockets (before TLS).", s.bytesSent.load(ordering: .relaxed))
        p.family("turnpike_messages_dropped_total", .counter, "Messages dropped, by reason.")
        for (reason, n) in [("no_subscribers", c.droppedNoSubscribers), ("queue_full", c.droppedQueueFull),
                            ("client_slow", c.droppedClientSlow), ("expired", c.droppedExpired), ("denied", c.droppedDenied)] {
            p.sample("turnpike_messages_dropped_total", [("reason", reason)], n)
        }
        p.single("turnpike_publish_throttled_total", .counter, "Times a client was paused for max_publish_rate / max_publish_bytes_rate.",
                 s.publishThrottled.load(ordering: .relaxed))
        p.single("turnpike_messages_inflight", .gauge, "QoS 1/2 messages sent and not yet acknowledged, all sessions.",
                 answered.reduce(0) { $0 + $1.inflight })
        p.single("turnpike_messages_queued", .gauge, "Messages queued behind the inflight windows, all sessions.",
                 answered.reduce(0) { $0 + $1.queued })

        // Loops.
        p.family("turnpike_loop_longest_iteration_seconds", .gauge, "The longest iteration of each reactor loop since the last scrape (event-loop lag).")
        for r in answered { p.sample("turnpike_loop_longest_iteration_seconds", [("loop", String(r.loop))], Double(r.longestIterationMilliseconds) / 1000) }
        p.family("turnpike_loop_up", .gauge, "1 when the loop answered this scrape within a second.")
        for (i, r) in reports.enumerated() { p.sample("turnpike_loop_up", [("loop", String(i))], r == nil ? 0 : 1) }

        // Security.
        p.family("turnpike_tls_handshakes_total", .counter, "TLS handshakes on the MQTT listeners, by result.")
        p.sample("turnpike_tls_handshakes_total", [("result", "success")], c.tlsHandshakes)
        p.sample("turnpike_tls_handshakes_total", [("result", "failure")], c.tlsHandshakeFailures)
        p.single("turnpike_auth_failures_total", .counter, "CONNECTs refused for their credentials or for being anonymous.", c.authFailures)
        p.single("turnpike_banned_connects_total", .counter, "CONNECTs refused by a ban.", c.bannedRefusals)
        p.single("turnpike_publish_denied_total", .counter, "PUBLISH packets refused by the ACL.", s.publishDenied.load(ordering: .relaxed))

        rules(into: &p)
        bridges(into: &p)

        // Storage.
        if let st = broker.storageFigures {
            p.single("turnpike_storage_size_bytes", .gauge, "Bytes of the durable store on disk.", st.bytesOnDisk)
            p.single("turnpike_storage_writes_total", .counter, "Puts and deletes written to the store.", st.writes)
            p.single("turnpike_storage_commits_total", .counter, "Write batches committed.", st.commits)
            p.single("turnpike_storage_syncs_total", .counter, "Write-ahead log fsyncs.", st.syncs)
            p.single("turnpike_storage_failed_commits_total", .counter, "Commits that failed.", st.failedCommits)
            p.single("turnpike_storage_pending_batches", .gauge, "Batches waiting to be written.", st.pendingBatches)
            p.family("turnpike_storage_last_commit_latency_seconds", .gauge, "How long the last commit (and its fsync) took.")
            p.sample("turnpike_storage_last_commit_latency_seconds", [], Double(st.lastCommitLatencyMicros) / 1_000_000)
        }

        // The cluster (names as in $SYS/broker/cluster/…).
        if let figures = broker.clusterFigures {
            let f = Dictionary(figures.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
            func int(_ k: String) -> Int { f[k].flatMap { Int($0) } ?? 0 }
            p.single("turnpike_cluster_nodes", .gauge, "Nodes of the cluster this node sees (itself included).", int("nodes"))
            p.single("turnpike_cluster_nats_connected", .gauge, "1 while this node is connected to NATS.", int("nats/connected"))
            p.family("turnpike_cluster_messages_forwarded_total", .counter, "Messages sent to and received from the other nodes.")
            p.sample("turnpike_cluster_messages_forwarded_total", [("direction", "out")], int("messages/forwarded/out"))
            p.sample("turnpike_cluster_messages_forwarded_total", [("direction", "in")], int("messages/forwarded/in"))
            p.single("turnpike_cluster_messages_duplicates_total", .counter, "Copies dropped (a message matching several subscriptions of this node).", int("messages/duplicates"))
            p.single("turnpike_cluster_messages_refused_total", .counter, "Messages from NATS that did not decode.", int("messages/refused"))
            p.single("turnpike_cluster_publish_failures_total", .counter, "Messages that could not be sent to NATS.", int("messages/publish_failed"))
            p.single("turnpike_cluster_registry_claims_total", .counter, "CONNECTs that asked the session registry.", int("registry/claims"))
            p.single("turnpike_cluster_registry_takeovers_total", .counter, "Sessions taken over from another node.", int("registry/takeovers"))
            p.single("turnpike_cluster_registry_failures_total", .counter, "Registry requests that failed (the CONNECT went on alone).", int("registry/failures"))
            p.family("turnpike_cluster_registry_last_latency_seconds", .gauge, "How long the last registry claim took.")
            p.sample("turnpike_cluster_registry_last_latency_seconds", [], Double(int("registry/last_latency_us")) / 1_000_000)
        }

        // The process.
        let proc = ProcessFigures.read()
        p.single("turnpike_process_resident_memory_bytes", .gauge, "Resident set size.", proc.residentBytes)
        p.family("turnpike_process_cpu_seconds_total", .counter, "User and system CPU time.")
        p.sample("turnpike_process_cpu_seconds_total", [], proc.cpuSeconds)
        p.single("turnpike_process_open_fds", .gauge, "Open file descriptors.", proc.openFiles)
        return HTTPResponse(status: 200, contentType: PrometheusText.contentType, body: Array(p.text.utf8))
    }

    private func rules(into p: inout PrometheusText) {
        let set = broker.activeRules
        let counters: [(RuleMetrics.Counter, String, String)] = [
            (.matched, "turnpike_rule_matched_total", "Messages whose topic matched the rule's FROM."),
            (.passed, "turnpike_rule_passed_total", "Messages the rule's WHERE passed."),
            (.failed, "turnpike_rule_failed_total", "Messages the rule failed on (exception or no result)."),
            (.failedException, "turnpike_rule_failed_exception_total", "Messages whose evaluation raised an error."),
            (.failedNoResult, "turnpike_rule_failed_no_result_total", "Messages WHERE left no row for."),
            (.actionsTotal, "turnpike_rule_actions_total", "Actions run."),
            (.actionsSuccess, "turnpike_rule_actions_success_total", "Actions that succeeded."),
            (.actionsFailed, "turnpike_rule_actions_failed_total", "Actions that failed."),
        ]
        p.family("turnpike_rule_enabled", .gauge, "1 when the rule runs, 0 when it is disabled.")
        for (i, r) in set.rules.enumerated() { p.sample("turnpike_rule_enabled", [("rule", r.name)], set.enabled[i] ? 1 : 0) }
        for (counter, name, help) in counters {
            p.family(name, .counter, help)
            for (i, r) in set.rules.enumerated() { p.sample(name, [("rule", r.name)], set.metrics[i].value(counter)) }
        }
    }

    private func bridges(into p: inout PrometheusText) {
        // BridgeMetrics' names (EMQX's); the gauges are the ones that go down.
        let known: [(String, String, PrometheusText.Kind, String)] = [
            ("matched", "turnpike_bridge_matched_total", .counter, "Records rules handed to the bridge."),
            ("success", "turnpike_bridge_success_total", .counter, "Records the sink accepted."),
            ("failed", "turnpike_bridge_failed_total", .counter, "Records the sink refused for good."),
            ("retried", "turnpike_bridge_retried_total", .counter, "Retries of records."),
            ("dropped", "turnpike_bridge_dropped_total", .counter, "Records dropped (queue full or expired)."),
            ("dropped.queue_full", "turnpike_bridge_dropped_queue_full_total", .counter, "Records dropped because the buffer was full."),
            ("dropped.expired", "turnpike_bridge_dropped_expired_total", .counter, "Records dropped after request_ttl."),
            ("inflight", "turnpike_bridge_inflight", .gauge, "Records sent and not yet confirmed."),
            ("queuing", "turnpike_bridge_queuing", .gauge, "Records waiting in the buffer."),
            ("queuing_bytes", "turnpike_bridge_queuing_bytes", .gauge, "Bytes waiting in the buffer."),
            ("status", "turnpike_bridge_status", .gauge, "0 connecting, 1 connected, 2 disconnected."),
        ]
        let ids = broker.bridges.keys.sorted()
        let snapshots = ids.map { id in Dictionary(broker.bridges[id]!.metricsSnapshot(), uniquingKeysWith: { a, _ in a }) }
        for (key, name, kind, help) in known {
            p.family(name, kind, help)
            for (i, id) in ids.enumerated() { p.sample(name, [("bridge", id)], snapshots[i][key] ?? 0) }
        }
        p.family("turnpike_bridge_connected", .gauge, "1 when the bridge's sink is connected.")
        for (i, id) in ids.enumerated() { p.sample("turnpike_bridge_connected", [("bridge", id)], snapshots[i]["status"] == 1 ? 1 : 0) }
    }
}
