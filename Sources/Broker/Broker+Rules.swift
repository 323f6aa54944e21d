import EventLoop
import MQTTCodec
import RuleEngine
import Storage

// The rule engine's place on the path of a message: after routing, the rules whose FROM matches
// the topic run on the publisher's loop (compiled; the payload's JSON is indexed at most once per
// message however many rules read it), and their actions run right there: republish goes back
// through `publish` (without re-running rules, so a rule cannot loop), log writes a log line.
// Bridge actions hand a rendered record to the bridge's queue (webhook, kafka, postgres).

extension Broker {
    /// Installs a new rule set on every loop (each swaps it in between two messages).
    /// Rules the admin API disabled stay disabled; metrics start from zero, one slot per loop.
    public func replaceRules(_ given: RuleSet) {
        let disabled = disabledRules.withLock { $0 }
        let set = RuleSet(rules: given.rules, loops: contexts.count).with(disabled: disabled)
        install(set)
        logger.info("rules: \(set.rules.count) active\(set.rules.isEmpty ? "" : " (" + set.rules.map(\.name).joined(separator: ", ") + ")")")
    }

    /// Hands the loops their copy while holding the lock, so that a reload and an API change
    /// racing each other reach every loop in the same order.
    private func install(_ set: RuleSet) {
        currentRules.withLock {
            $0 = set
            for ctx in contexts { ctx.loop.execute { ctx.rules = set } }
        }
    }

    /// The active rules (any thread).
    public var activeRules: RuleSet { currentRules.withLock { $0 } }

    /// Enables or disables the rule named `name` on every loop, keeping its metrics, and returns
    /// once the loops have the change (or after 1 s). False when no active rule has that name.
    public func setRuleEnabled(_ name: String, _ on: Bool) -> Bool {
        let set: RuleSet? = currentRules.withLock { current in
            guard current.rules.contains(where: { $0.name == name }) else { return nil }
            let disabled = disabledRules.withLock { d -> Set<String> in
                if on { d.remove(name) } else { d.insert(name) }
                return d
            }
            let fresh = current.with(disabled: disabled)
            current = fresh
            for ctx in contexts { ctx.loop.execute { ctx.rules = fresh } }
            return fresh
        }
        guard set != nil else { return false }
        // Each loop runs its tasks in order: once it answers this, it has the new set.
        _ = askLoops(timeoutMilliseconds: 1000) { _ in true }
        logger.info("rules: \(name) \(on ? "enabled" : "disabled") through the admin API")
        return true
    }

    /// Runs the rules matching a published message.
    func runRules(for message: Message, on ctx: LoopContext) {
        let set = ctx.rules
        guard !set.index.isEmpty else { return }
        ctx.ruleMatches.removeAll(keepingCapacity: true)
        set.index.match(message.topic, into: &ctx.ruleMatches)
        guard !ctx.ruleMatches.isEmpty else { return }
        let now = wallClockMicroseconds() / 1000
        let input = RuleInput.publish(
            id: "", clientid: message.publisherClientId, username: message.publisherUsername,
            topic: message.topic, qos: Int(message.qos.rawValue), retain: message.retain, payload: message.payload,
            peerhost: message.peerhost, timestamp: Int64(now),
            userProperties: message.properties.userProperties.map { (name: $0.name, value: $0.value) })
        let ec = ctx.evaluationContext(input)
        for i in ctx.ruleMatches {
            evaluate(set, rule: i, ec, on: ctx, original: message)
        }
    }

    /// Runs the rules listening to an `$events/…` topic; `makeInput` is called only when one does.
    func fireEvent(_ event: RuleEvent, on ctx: LoopContext, _ makeInput: () -> RuleInput) {
        let set = ctx.rules
        guard let indices = set.eventRules[event], !indices.isEmpty else { return }
        let ec = ctx.evaluationContext(makeInput())
        for i in indices { evaluate(set, rule: i, ec, on: ctx, original: nil) }
    }

    /// message_delivered / message_acked / message_dropped. Messages made by the broker itself
    /// ($SYS, rule output, dead letters) do not fire them, so an event rule cannot feed itself.
    func fireMessageEvent(_ event: RuleEvent, _ message: Message, to session: Session?, reason: String = "",
                          on ctx: LoopContext) {
        guard ctx.rules.listensToMessageEvents, message.publisher != nil else { return }
        fireEvent(event, on: ctx) {
            let now = Int64(wallClockMicroseconds() / 1000)
            let original = RuleInput.publish(
                clientid: message.publisherClientId, username: message.publisherUsername, topic: message.topic,
                qos: Int(message.qos.rawValue), retain: message.retain, payload: message.payload,
                peerhost: message.peerhost, timestamp: message.receivedAt * 1000)
            return .messageEvent(event, message: original, clientid: session?.clientId ?? "",
                                 username: session?.connection?.username, reason: reason, timestamp: now)
        }
    }

    private func evaluate(_ set: RuleSet, rule i: Int, _ ec: EvaluationContext, on ctx: LoopContext, original: Message?) {
        let rule = set.rules[i]
        let m = set.metrics[i]
        let loop = ctx.loop.index
        m.bump(.matched, loop: loop)
        let rows: [Value]
        do {
            rows = try rule.evaluate(ec)
        } catch {
            m.bump(.failed, loop: loop)
            m.bump(.failedException, loop: loop)
            logger.debug("rule \(rule.name): \(error)")
            if let original, configuration.rules.deadLetter {
                deadLetter(original, rule: rule.name, error: "\(error)", on: ctx)
            }
            return
        }
        if rows.isEmpty {
            m.bump(.failed, loop: loop)
            m.bump(.failedNoResult, loop: loop)
            return
        }
        m.bump(.passed, loop: loop)
        for row in rows {
            for action in rule.actions {
                m.bump(.actionsTotal, loop: loop)
                if run(action, row: row, rule: rule, on: ctx, original: original) {
                    m.bump(.actionsSuccess, loop: loop)
                } else {
                    m.bump(.actionsFailed, loop: loop)
                }
            }
        }
    }

    private func run(_ action: Action, row: Value, rule: Rule, on ctx: LoopContext, original: Message?) -> Bool {
        switch action.target {
        case .republish:
            guard let topic = action[argument: "topic"]?.render(row), Topic.isValidName(topic) else {
                logger.debug("rule \(rule.name): republish topic is not a valid topic name")
                return false
            }
            let payload = action[argument: "payload"]?.renderBytes(row) ?? Array(JSONWriter.string(row).utf8)
            var qos = QoS.atMostOnce
            if let t = action[argument: "qos"] {
                guard let q = Self.int(t.value(row)), let v = QoS(rawValue: UInt8(clamping: q)), q >= 0 else { return false }
                qos = v
            }
            var retain = false
            if let t = action[argument: "retain"] {
                switch t.value(row) {
                case .bool(let b): retain = b
                case .string(let s): retain = s == "true"
                case .int(let n): retain = n != 0
                default: return false
                }
            }
            var props = Properties()
            if let t = action[argument: "user_properties"], case .map(let map) = t.value(row) {
                for (k, v) in zip(map.keys, map.values) {
                    props.userProperties.append(UserProperty(k, v.stringValue ?? JSONWriter.string(v)))
                }
            }
            let message = Message(topic: topic, payload: payload, qos: qos, retain: retain, properties: props,
                                  expiresAt: nil, publisher: nil, publisherClientId: "", receivedAt: ctx.wallClock)
            publish(message, from: ctx, runRules: false)
            return true
        case .log:
            let text = action[argument: "message"]?.render(row) ?? JSONWriter.string(row)
            let level = action[argument: "level"]?.render(row) ?? "info"
            logger.log(level: .init(rawValue: level) ?? .info, "rule \(rule.name): \(text)")
            return true
        case .bridge(let kind, let name):
            guard let sink = ctx.bridges["\(kind).\(name)"] else {
                // Refused when the rules load; a reload can only name configured bridges.
                logger.error("rule \(rule.name): bridge \(kind).\(name) is not configured")
                return false
            }
            var record = BridgeRecord(rule: rule.name, body: [], submittedAt: ctx.loop.now)
            switch kind {
            case "webhook":
                record.method = action[argument: "method"]?.render(row).uppercased() ?? "POST"
                record.target = action[argument: "path"]?.render(row) ?? ""
                record.body = action[argument: "body"]?.renderBytes(row) ?? Array(JSONWriter.string(row).utf8)
                if let t = action[argument: "headers"] { record.headers = Self.headers(t.value(row)) }
            case "kafka":
                guard let topic = action[argument: "topic"]?.render(row), !topic.isEmpty else {
                    logger.debug("rule \(rule.name): kafka topic renders empty")
                    return false
                }
                record.target = topic
                // The default key is `${clientid}`: the row's column, or the publisher when the
                // SELECT dropped it, so a car's records share a partition either way.
                if let t = action[argument: "key"] {
                    record.key = t.renderBytes(row)
                } else if case .string(let id) = row["clientid"] {
                    record.key = Array(id.utf8)
                } else {
                    record.key = Array((original?.publisherClientId ?? "").utf8)
                }
                record.body = action[argument: "value"]?.renderBytes(row) ?? Array(JSONWriter.string(row).utf8)
                if let t = action[argument: "headers"] { record.headers = Self.headers(t.value(row)) }
            case "postgres":
                // Every `${…}` becomes a bind parameter ($1, $2, … in order): values never
                // become SQL text, whatever they hold.
                guard let t = action[argument: "statement"] else { return false }
                var sql = "", n = 0
                for segment in t.segments {
                    if case .literal(let s) = segment { sql += s } else { n += 1; sql += "$\(n)" }
                }
                record.target = sql
                record.parameters = t.placeholderValues(row).map(Self.sqlParameter)
                // What a dead letter carries: the row, as JSON.
                record.body = Array(JSONWriter.string(row).utf8)
            default:
                logger.error("rule \(rule.name): \(kind) bridges are not available in this build")
                return false
            }
            // ack = 'after_sink': a client's QoS 1/2 PUBLISH is acknowledged once the sink confirms.
            if let original, original.qos != .atMostOnce, original.publisher != nil,
               action[argument: "ack"]?.text == "after_sink" {
                record.ticket = ctx.makeTicket()
            }
            if sink.keepsRecordsOnDisk, persistence != nil {
                // buffer = "disk": in this PUBLISH's batch, so its acknowledgement covers the
                // record; handed to the bridge once committed (its delete then always follows
                // the write).
                writing(ctx) { p, batch in
                    record.storeId = p.makeBridgeRecordId()
                    batch.put(.bridges, key: RecordKeys.bridgeRecord(sink.id, record.storeId),
                              value: StoredBridgeRecord(record, submittedAt: wallClockMilliseconds()).encode())
                }
                // The bridge as it is then (a reload may have replaced it meanwhile; one removed
                // leaves the record in the store for when it is configured again).
                let id = sink.id
                ctx.whenCommitted { [record, unowned ctx] in ctx.bridges[id]?.submit(record, fromLoop: ctx.loop.index) }
            } else {
                sink.submit(record, fromLoop: ctx.loop.index)
            }
            if sink.wantsBackpressure, original?.publisher != nil { ctx.fullBridge = sink }
            return true
        }
    }

    /// A placeholder's value as a PostgreSQL text-format parameter; undefined and null are NULL.
    private static func sqlParameter(_ v: Value) -> [UInt8]? {
        switch v {
        case .undefined, .null: return nil
        case .string(let s): return Array(s.utf8)
        case .binary(let b): return b
        default: return Array(JSONWriter.string(v).utf8)
        }
    }

    /// A map value (`${pub_props}`, a JSON object) as header name/value pairs.
    private static func headers(_ v: Value) -> [(name: String, value: String)] {
        guard case .map(let map) = v else { return [] }
        return zip(map.keys, map.values).map { (name: $0, value: $1.stringValue ?? JSONWriter.string($1)) }
    }

    private static func int(_ v: Value) -> Int? {
        switch v {
        case .int(let n): return Int(n)
        case .float(let d): return Int(d)
        case .string(let s): return Int(s)
        default: return nil
        }
    }

    /// A message a rule could not evaluate goes to `$dlq/rules/<rule>` unchanged, with the error
    /// as the user property `error` (for MQTT 5 subscribers).
    private func deadLetter(_ original: Message, rule: String, error: String, on ctx: LoopContext) {
        var props = Properties()
        props.userProperties = [UserProperty("error", String(error.split(separator: "\n").first ?? "")),
                                UserProperty("topic", original.topic),
                                UserProperty("clientid", original.publisherClientId)]
        let m = Message(topic: "$dlq/rules/" + rule, payload: original.payload, qos: original.qos, retain: false,
                        properties: props, expiresAt: nil, publisher: nil, publisherClientId: "",
                        receivedAt: ctx.wallClock)
        ctx.deadLetters.record(DeadLetterInfo(topic: m.topic, error: props.userProperties[0].value, rule: rule,
                                              originTopic: original.topic, clientId: original.publisherClientId,
                                              payloadBytes: original.payload.count, at: Int64(wallClockMilliseconds())))
        publish(m, from: ctx, runRules: false)
    }
}
