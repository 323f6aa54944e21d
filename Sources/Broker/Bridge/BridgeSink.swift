import EventLoop
import MQTTCodec
import Storage

/// One row of one rule action for a bridge, rendered on the publisher's loop (templates are
/// applied once, there); the bridge's own thread only sends it.
public struct BridgeRecord: Sendable {
    /// The rule that produced it (for logs and dead letters).
    public var rule: String
    /// webhook: the path appended to the bridge's URL; kafka: the topic; postgres: the SQL text,
    /// with `$1`, `$2`, … where the statement had its `${…}` placeholders.
    public var target: String
    /// webhook: the HTTP method.
    public var method: String
    /// kafka: the message key.
    public var key: [UInt8]?
    /// webhook: the request body; kafka: the message value.
    public var body: [UInt8]
    public var headers: [(name: String, value: String)]
    /// postgres: the placeholders' values in order, in text format (nil = SQL NULL: an undefined
    /// or null field). Always bound as parameters, never spliced into the SQL text.
    public var parameters: [[UInt8]?] = []
    /// When it was handed over (monotonic ms).
    public var submittedAt: UInt64
    /// Set when the publisher's acknowledgement waits for this record (`ack = 'after_sink'`):
    /// the bridge reports its final outcome through `Broker.confirmSink`.
    public var ticket: AckTicket?
    /// Its record id in the durable store (`buffer = "disk"`), 0 when only in memory: the
    /// bridge hands it back to `Broker.forgetBridgeRecords` once the outcome is final.
    public var storeId: UInt64 = 0

    public init(rule: String, target: String = "", method: String = "POST", key: [UInt8]? = nil, body: [UInt8],
                headers: [(name: String, value: String)] = [], submittedAt: UInt64) {
        self.rule = rule; self.target = target; self.method = method; self.key = key; self.body = body
        self.headers = headers; self.submittedAt = submittedAt
    }
}

/// What the broker knows of a bridge (Sources/Bridges implements it): rule actions hand it
/// rendered records, `$SYS/bridges/<kind>.<name>/…` reads its metrics. `submit` runs on a
/// reactor loop and must never block on the sink: it appends to a queue the bridge drains.
public protocol BridgeSink: AnyObject, Sendable {
    /// "webhook.crm": the name rule files use.
    var id: String { get }
    func submit(_ record: BridgeRecord, fromLoop loop: Int)
    /// `on_full = "backpressure"` and the buffer is full: publishers feeding it are not read
    /// until it is not (any thread; a relaxed read).
    var wantsBackpressure: Bool { get }
    /// `buffer = "disk"`: a record is written to the durable store with the PUBLISH that
    /// produced it (so its acknowledgement covers it) and submitted once that is committed.
    var keepsRecordsOnDisk: Bool { get }
    /// Records to deliver that did not come through a rule here: found in the store at
    /// start-up, or left by the bridge this one replaces on reload (`from` says which, for the
    /// log). Any thread.
    func restore(_ records: [BridgeRecord], from: String)
    /// Stops the bridge for a replacement (a reload changed its settings): stops taking new
    /// requests, waits up to `timeoutMs` for those in flight, and returns every record it has
    /// not finished with, in arrival order (ack tickets and store ids kept). From then on it
    /// never asks for backpressure.
    func drain(timeoutMs: Int) -> [BridgeRecord]
    /// Metric name → value, EMQX's names (`matched`, `success`, `failed`, …).
    func metricsSnapshot() -> [(name: String, value: Int)]
    /// Stops the bridge's thread, after a last attempt at what it holds.
    func stop()
}

extension Broker {
    /// Deletes records a bridge has finished with (delivered, dead-lettered or dropped) from
    /// the durable store: one batch per call, from the bridge's thread. Not waited for: a
    /// crash before it commits delivers those records again after the restart.
    public func forgetBridgeRecords(bridge id: String, ids: [UInt64]) {
        guard let p = persistence, !ids.isEmpty else { return }
        var batch = StoreBatch()
        for i in ids { batch.delete(.bridges, key: RecordKeys.bridgeRecord(id, i)) }
        p.store.commit(batch) { [logger] error in
            if let error { logger.error("bridge \(id): deleting \(ids.count) delivered records from the store failed: \(error)") }
        }
    }

    /// A record a bridge gave up on for good (a 4xx answer, a constraint error): published on
    /// `$dlq/bridges/<kind>.<name>` with the error as the user property `error`. Any thread.
    public func deadLetter(bridge id: String, rule: String, payload: [UInt8], error: String) {
        let ctx = contexts[0]
        ctx.loop.execute { [unowned self] in
            var props = Properties()
            props.userProperties = [UserProperty("error", error), UserProperty("rule", rule)]
            let m = Message(topic: "$dlq/bridges/" + id, payload: payload, qos: .atLeastOnce, retain: false,
                            properties: props, expiresAt: nil, publisher: nil, publisherClientId: "",
                            receivedAt: ctx.wallClock)
            ctx.deadLetters.record(DeadLetterInfo(topic: m.topic, error: error, rule: rule, originTopic: "", clientId: "",
                                                  payloadBytes: payload.count, at: Int64(wallClockMilliseconds())))
            self.publish(m, from: ctx, runRules: false)
        }
    }
}

extension StoredBridgeRecord {
    init(_ r: BridgeRecord, submittedAt: UInt64) {
        self.init(submittedAt: submittedAt, rule: r.rule, target: r.target, method: r.method, key: r.key, body: r.body,
                  headers: r.headers.map { Header(name: $0.name, value: $0.value) }, parameters: r.parameters)
    }

    /// The record again, submitted `submittedAt` (monotonic ms) for request_ttl.
    func record(storeId: UInt64, submittedAt mono: UInt64) -> BridgeRecord {
        var r = BridgeRecord(rule: rule, target: target, method: method, key: key, body: body,
                             headers: headers.map { ($0.name, $0.value) }, submittedAt: mono)
        r.parameters = parameters
        r.storeId = storeId
        return r
    }
}
