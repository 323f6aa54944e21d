import Broker

/// What happened to one record of a request.
enum Outcome: Sendable {
    case delivered
    /// Worth trying again (a timeout, a refused connection, 5xx, 408, 429).
    case retriable(String)
    /// Never going to work (another 4xx, a constraint error, too large): dead-lettered.
    case permanent(String)
}

/// The sink-specific half of a bridge: it sends requests and reports their outcomes; the
/// buffer (BridgeBuffer) does queuing, batching, retries and metrics. Used only on the bridge's
/// own thread (one call per request or per wait, not per message).
protocol SinkDriver: AnyObject {
    /// Records per request this sink takes at most (webhook: 1).
    var maxBatch: Int { get }
    /// Starts one request carrying `records`; its outcome comes back from `wait` with `id`.
    func send(_ records: [BridgeRecord], id: UInt64)
    /// Waits up to `timeoutMs` for I/O (returning early on `wakeUp`) and returns the requests
    /// that finished: one outcome per record, in order.
    func wait(timeoutMs: Int) -> [(id: UInt64, outcomes: [Outcome])]
    /// Makes a `wait` in progress return now; any thread.
    func wakeUp()
    /// Cancels what is in flight and frees the library's handles.
    func close()
    /// Whether the sink was seen unreachable since the last call, while it holds records it
    /// keeps retrying itself (so no outcome says so): the bridge then shows `disconnected`.
    func takeConnectionLost() -> Bool
}

extension SinkDriver {
    func takeConnectionLost() -> Bool { false }
}
