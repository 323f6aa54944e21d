/// The buffer knobs every bridge table takes (`[bridges.<kind>.<name>]`), EMQX's names.
public struct BufferSettings: Sendable {
    /// Records per request (webhook: always 1, one request each).
    public var batchSize = 100
    /// Milliseconds a batch may wait to fill: delivery latency against cost.
    public var batchTimeMs = 0
    /// Requests in flight at once.
    public var inflightWindow = 8
    /// Records held (queued, retrying or in flight) before `on_full` applies.
    public var maxBufferMessages = 100_000
    /// Bytes of record bodies held before `on_full` applies.
    public var maxBufferBytes = 256 << 20
    /// `buffer = "disk"`: records are kept in the broker's durable store until their outcome is
    /// final, so what was accepted survives a restart or a crash (a copy stays in memory too).
    public var disk = false
    public enum OnFull: String, Sendable { case dropOldest = "drop_oldest", backpressure }
    public var onFull = OnFull.dropOldest
    /// Attempts after the first before a record counts as failed (0: until `request_ttl`).
    public var maxRetries = 0
    /// First retry delay (ms), doubled per attempt, capped at 30 s, with ±20 % jitter.
    public var retryBackoffMs = 500
    /// Seconds a record may wait in total before it is dropped as expired (0: forever).
    public var requestTTL = 0
    /// Seconds between reachability checks while the sink is down.
    public var healthCheckInterval = 15

    public init() {}
}
