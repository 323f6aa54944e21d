import EventLoop
import MQTTCodec

// `$SYS/broker/…`: mosquitto's topic names, published retained every `sys_interval` seconds
// from loop 0 through the ordinary publish path.

extension Broker {
    func startSysTimer() {
        let ctx = contexts[0]
        let timer = LoopTimer { [unowned self] in self.publishSys(on: ctx) }
        ctx.loop.schedule(timer, afterMilliseconds: 0)
        sysTimerStorage = timer
    }

    private func publishSys(on ctx: LoopContext) {
        let connected = stats.clientsConnected.load(ordering: .relaxed)
        let total = stats.sessions.load(ordering: .relaxed)
        let values: [(String, String)] = [
            ("version", "turnpike version \(Broker.version)"),
            ("uptime", "\((ctx.loop.now - startedAt) / 1000) seconds"),
            ("clients/connected", "\(connected)"),
            ("clients/active", "\(connected)"),
            ("clients/total", "\(max(total, connected))"),
            ("clients/disconnected", "\(max(0, total - connected))"),
            ("clients/inactive", "\(max(0, total - connected))"),
            ("clients/maximum", "\(stats.clientsMaximum.load(ordering: .relaxed))"),
            ("messages/received", "\(stats.messagesReceived.load(ordering: .relaxed))"),
            ("messages/sent", "\(stats.messagesSent.load(ordering: .relaxed))"),
            ("messages/stored", "\(stats.messagesStored.load(ordering: .relaxed))"),
            ("store/messages/count", "\(stats.messagesStored.load(ordering: .relaxed))"),
            ("publish/messages/received", "\(stats.publishReceived.load(ordering: .relaxed))"),
            ("publish/messages/sent", "\(stats.publishSent.load(ordering: .relaxed))"),
            ("publish/messages/dropped", "\(stats.publishDropped.load(ordering: .relaxed))"),
            ("publish/messages/denied", "\(stats.publishDenied.load(ordering: .relaxed))"),
            ("publish/throttled", "\(stats.publishThrottled.load(ordering: .relaxed))"),
            ("bytes/received", "\(stats.bytesReceived.load(ordering: .relaxed))"),
            ("bytes/sent", "\(stats.bytesSent.load(ordering: .relaxed))"),
            ("subscriptions/count", "\(stats.subscriptions.load(ordering: .relaxed))"),
            ("retained messages/count", "\(retained.count)"),
            // Turnpike's own: the longest loop iteration since the last publish (event-loop lag).
            ("loops/longest_iteration_ms", "\(group.loops.map { $0.takeLongestIteration() }.max() ?? 0)"),
        ]
        var all = values
        if let p = persistence {
            // Turnpike's own: the durable store.
            let st = p.store.statistics
            let seconds = max(1, Int(ctx.loop.now &- lastStorageSample.at) / 1000)
            let firstSample = lastStorageSample.at == 0
            all += [
                ("storage/bytes", "\(st.bytesOnDisk)"),
                ("storage/writes", "\(st.writesTotal)"),
                ("storage/commits", "\(st.commitsTotal)"),
                ("storage/writes_per_second", "\(firstSample ? 0 : (st.writesTotal - lastStorageSample.writes) / seconds)"),
                ("storage/commits_per_second", "\(firstSample ? 0 : (st.commitsTotal - lastStorageSample.commits) / seconds)"),
                ("storage/last_commit_latency_us", "\(st.lastCommitLatencyMicros)"),
                ("storage/failed_commits", "\(p.failedCommits.load(ordering: .relaxed))"),
            ]
            lastStorageSample = (ctx.loop.now, st.writesTotal, st.commitsTotal)
        }
        if let cluster {
            // Turnpike's own: the cluster (nodes seen, messages between nodes, NATS).
            all += cluster.metricsSnapshot().map { ("cluster/" + $0.name, $0.value) }
        }
        for (name, value) in all {
            let m = Message(topic: "$SYS/broker/" + name, payload: Array(value.utf8), qos: .atMostOnce, retain: true,
                            properties: Properties(), expiresAt: nil, publisher: nil,
                            publisherClientId: "", receivedAt: ctx.wallClock)
            publish(m, from: ctx)
        }
        for (id, sink) in contexts[0].bridges {
            for (name, value) in sink.metricsSnapshot() {
                let m = Message(topic: "$SYS/bridges/\(id)/\(name)", payload: Array("\(value)".utf8), qos: .atMostOnce,
                                retain: true, properties: Properties(), expiresAt: nil, publisher: nil,
                                publisherClientId: "", receivedAt: ctx.wallClock)
                publish(m, from: ctx, runRules: false)
            }
        }
        let rules = currentRules.withLock { $0 }
        for (i, rule) in rules.rules.enumerated() {
            for (name, value) in rules.metrics[i].snapshot {
                let m = Message(topic: "$SYS/rules/\(rule.name)/\(name)", payload: Array("\(value)".utf8), qos: .atMostOnce,
                                retain: true, properties: Properties(), expiresAt: nil, publisher: nil,
                                publisherClientId: "", receivedAt: ctx.wallClock)
                publish(m, from: ctx, runRules: false)
            }
        }
        if let t = sysTimerStorage {
            ctx.loop.schedule(t, afterMilliseconds: UInt64(configuration.sysInterval) * 1000)
        }
    }
}
