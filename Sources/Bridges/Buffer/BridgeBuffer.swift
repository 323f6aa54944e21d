import Broker
import DequeModule
import EventLoop
import Glibc
import Logging
import Synchronization

/// The layer every bridge shares: a bounded queue, requests of up to `batch_size` records, an
/// inflight window, retries with backoff, expiry, the health state and the metrics. It runs
/// on a thread of its own, so a slow sink never stalls a reactor loop; the loops hand records
/// over through one queue per loop (a mutex only that loop and this thread take, swapped whole
/// once per wake-up), never through a lock shared by all loops.
///
/// What happens to every record is counted: it is queued, then in flight, then delivered
/// (`success`), given up on (`failed`: a permanent error, or retries exhausted; dead-lettered
/// on `$dlq/bridges/<id>`), or dropped (`dropped.queue_full` when the buffer is full and the
/// oldest record makes room, `dropped.expired` past `request_ttl`), each logged with the
/// bridge's name and the reason.
final class BridgeBuffer: BridgeSink, @unchecked Sendable {
    let id: String
    private let settings: BufferSettings
    private let driver: any SinkDriver
    private let logger: Logger
    private unowned let broker: Broker
    let metrics = BridgeMetrics()

    /// Per loop: records submitted and not yet taken by the bridge's thread.
    private final class Inbox: Sendable { let records = Mutex<[BridgeRecord]>([]) }
    private let inboxes: [Inbox]
    private let pendingInbox = Atomic<Bool>(false)
    private let running = Atomic<Bool>(true)
    /// Set by `drain`: no new requests; the thread ends once nothing is in flight (or at the
    /// deadline) and leaves what it holds in `leftovers`.
    private let draining = Atomic<Bool>(false)
    private let retired = Atomic<Bool>(false)
    private var drainTimeoutMs: UInt64 = 0
    private var leftovers: [BridgeRecord] = []
    private var thread: pthread_t?

    // Bridge thread only.
    private struct Entry {
        /// Arrival order; the queue stays sorted by it (retries go back to their place).
        var seq: UInt64
        var record: BridgeRecord
        var attempts = 0
        /// Monotonic ms before which it is not retried.
        var notBefore: UInt64 = 0
    }
    private var queue = Deque<Entry>()
    private var queuedBytes = 0
    private var inflight: [UInt64: [Entry]] = [:]
    /// Records in `inflight`, kept with it (the full-buffer check runs per taken record).
    private var inflightCount = 0
    private var nextRequest: UInt64 = 1
    private var nextSeq: UInt64 = 0
    private var consecutiveFailures = 0
    private var lastDropLog: UInt64 = 0
    /// Store ids of disk-buffered records whose outcome became final this round.
    private var finishedOnDisk: [UInt64] = []
    private var dropsSinceLog = 0

    init(id: String, settings: BufferSettings, driver: any SinkDriver, loops: Int, broker: Broker, logger: Logger) {
        self.id = id
        self.settings = settings
        self.driver = driver
        self.broker = broker
        self.logger = logger
        self.inboxes = (0..<max(1, loops)).map { _ in Inbox() }
    }

    func start() {
        thread = Threads.start { self.run() }
    }

    // MARK: From the loops

    func submit(_ record: BridgeRecord, fromLoop loop: Int) {
        BridgeMetrics.add(metrics.matched, 1)
        BridgeMetrics.add(metrics.queuing, 1)
        BridgeMetrics.add(metrics.queuingBytes, record.body.count)
        inboxes[loop % inboxes.count].records.withLock { $0.append(record) }
        if !pendingInbox.exchange(true, ordering: .acquiringAndReleasing) { driver.wakeUp() }
    }

    var keepsRecordsOnDisk: Bool { settings.disk }

    func restore(_ records: [BridgeRecord], from: String) {
        guard !records.isEmpty else { return }
        BridgeMetrics.add(metrics.matched, records.count)
        BridgeMetrics.add(metrics.queuing, records.count)
        BridgeMetrics.add(metrics.queuingBytes, records.reduce(0) { $0 + $1.body.count })
        inboxes[0].records.withLock { $0.append(contentsOf: records) }
        if !pendingInbox.exchange(true, ordering: .acquiringAndReleasing) { driver.wakeUp() }
        logger.info("bridge \(id): \(records.count) records from \(from) to deliver")
    }

    func metricsSnapshot() -> [(name: String, value: Int)] { metrics.snapshot }

    /// Held records (queued or in flight) at or past the bound, with `on_full = backpressure`.
    var wantsBackpressure: Bool {
        guard settings.onFull == .backpressure, !retired.load(ordering: .relaxed) else { return false }
        let held = metrics.queuing.load(ordering: .relaxed) + metrics.inflight.load(ordering: .relaxed)
        return held >= settings.maxBufferMessages || metrics.queuingBytes.load(ordering: .relaxed) >= settings.maxBufferBytes
    }

    func drain(timeoutMs: Int) -> [BridgeRecord] {
        retired.store(true, ordering: .relaxed)
        drainTimeoutMs = UInt64(max(0, timeoutMs))
        draining.store(true, ordering: .releasing)
        driver.wakeUp()
        if let t = thread { pthread_join(t, nil) }
        thread = nil
        running.store(false, ordering: .relaxed)
        driver.close()
        logger.info("bridge \(id): stopped for its replacement, handing over \(leftovers.count) records")
        let out = leftovers
        leftovers = []
        return out
    }

    func stop() {
        guard running.exchange(false, ordering: .acquiringAndReleasing) else { return }
        driver.wakeUp()
        if let t = thread { pthread_join(t, nil) }
        driver.close()
    }

    // MARK: The bridge's thread

    private func run() {
        var drainStarted: UInt64 = 0
        while running.load(ordering: .acquiring) {
            let now = monotonicMilliseconds()
            takeInboxes()
            if draining.load(ordering: .acquiring) {
                if drainStarted == 0 { drainStarted = now }
                if inflight.isEmpty || now &- drainStarted >= drainTimeoutMs { handOver(); return }
                for (id, outcomes) in driver.wait(timeoutMs: 50) { finished(id, outcomes) }
                forgetFinished()
                continue
            }
            expire(now: now)
            let nextDue = sendWhatIsDue(now: now)
            let timeout = nextDue.map { $0 > now ? Int(min($0 - now, 1000)) : 0 } ?? 1000
            for (id, outcomes) in driver.wait(timeoutMs: timeout) { finished(id, outcomes) }
            if driver.takeConnectionLost() { metrics.status.store(BridgeMetrics.Status.disconnected.rawValue, ordering: .relaxed) }
            forgetFinished()
        }
        forgetFinished()
        // Stopping: what is still queued or in flight is lost with the process (logged), or
        // waits in the store for the next start.
        let left = queue.count + inflightCount
        if left > 0 && settings.disk {
            logger.notice("bridge \(id): stopped with \(left) records not delivered yet; they stay in the store and are delivered after the restart")
        } else if left > 0 {
            logger.warning("bridge \(id): stopped with \(left) records not delivered (buffer = \"memory\": they are lost)")
        }
    }

    /// The end of a drain: every record not finished, queued and in flight, in arrival order
    /// (one still in flight at the deadline may reach the sink twice: at least once).
    private func handOver() {
        forgetFinished()
        var all = Array(queue)
        for batch in inflight.values { all.append(contentsOf: batch) }
        all.sort { $0.seq < $1.seq }
        leftovers = all.map(\.record)
        queue.removeAll()
        inflight.removeAll()
        inflightCount = 0
        queuedBytes = 0
    }

    private func forgetFinished() {
        guard !finishedOnDisk.isEmpty else { return }
        broker.forgetBridgeRecords(bridge: id, ids: finishedOnDisk)
        finishedOnDisk.removeAll(keepingCapacity: true)
    }

    private func takeInboxes() {
        guard pendingInbox.exchange(false, ordering: .acquiringAndReleasing) else { return }
        var taken: [BridgeRecord] = []
        for inbox in inboxes {
            inbox.records.withLock { swap(&$0, &taken) }
            for r in taken {
                nextSeq += 1
                queue.append(Entry(seq: nextSeq, record: r))
                queuedBytes += r.body.count
            }
            taken.removeAll(keepingCapacity: true)
        }
        // Full: the oldest records make room (on_full = drop_oldest). With backpressure the
        // publishers are paused instead (wantsBackpressure) and nothing is dropped.
        while settings.onFull == .dropOldest,
              queue.count + inflightCount > settings.maxBufferMessages || queuedBytes > settings.maxBufferBytes,
              let e = queue.popFirst() {
            queuedBytes -= e.record.body.count
            drop(e, counter: metrics.droppedQueueFull, reason: "buffer full (max_buffer_messages \(settings.maxBufferMessages), max_buffer_bytes \(settings.maxBufferBytes))")
        }
    }

    private func expire(now: UInt64) {
        guard settings.requestTTL > 0 else { return }
        let limit = UInt64(settings.requestTTL) * 1000
        while let first = queue.first, now &- first.record.submittedAt >= limit {
            let e = queue.removeFirst()
            queuedBytes -= e.record.body.count
            drop(e, counter: metrics.droppedExpired, reason: "waited longer than request_ttl \(settings.requestTTL) s")
        }
    }

    /// Starts requests while the window has room and records are due; returns when the next
    /// retry is due, if one waits.
    private func sendWhatIsDue(now: UInt64) -> UInt64? {
        let size = max(1, min(settings.batchSize, driver.maxBatch))
        while inflight.count < settings.inflightWindow, let first = queue.first {
            if first.notBefore > now { return first.notBefore }
            // Wait for a fuller batch while batch_time allows.
            if settings.batchTimeMs > 0 && queue.count < size && now &- first.record.submittedAt < UInt64(settings.batchTimeMs) {
                return first.record.submittedAt + UInt64(settings.batchTimeMs)
            }
            var batch: [Entry] = []
            while batch.count < size, let e = queue.first, e.notBefore <= now {
                batch.append(queue.removeFirst())
                queuedBytes -= e.record.body.count
            }
            let id = nextRequest
            nextRequest += 1
            BridgeMetrics.add(metrics.inflight, batch.count)
            BridgeMetrics.add(metrics.queuing, -batch.count)
            BridgeMetrics.add(metrics.queuingBytes, -batch.reduce(0) { $0 + $1.record.body.count })
            inflight[id] = batch
            inflightCount += batch.count
            driver.send(batch.map(\.record), id: id)
        }
        return nil
    }

    private func finished(_ id: UInt64, _ outcomes: [Outcome]) {
        guard let batch = inflight.removeValue(forKey: id) else { return }
        inflightCount -= batch.count
        var retry: [Entry] = []
        for (i, var e) in batch.enumerated() {
            let outcome = i < outcomes.count ? outcomes[i] : .retriable("no outcome reported")
            switch outcome {
            case .delivered:
                BridgeMetrics.add(metrics.success, 1)
                BridgeMetrics.add(metrics.inflight, -1)
                confirm(e, delivered: true, reason: "")
                consecutiveFailures = 0
                metrics.status.store(BridgeMetrics.Status.connected.rawValue, ordering: .relaxed)
            case .permanent(let why):
                BridgeMetrics.add(metrics.failed, 1)
                BridgeMetrics.add(metrics.inflight, -1)
                confirm(e, delivered: false, reason: "bridge \(self.id): \(why)")
                logger.warning("bridge \(self.id): rule \(e.record.rule): record refused for good: \(why); sent to $dlq/bridges/\(self.id)")
                broker.deadLetter(bridge: self.id, rule: e.record.rule, payload: e.record.body, error: why)
            case .retriable(let why):
                e.attempts += 1
                consecutiveFailures += 1
                if consecutiveFailures >= 3 { metrics.status.store(BridgeMetrics.Status.disconnected.rawValue, ordering: .relaxed) }
                if settings.maxRetries > 0 && e.attempts > settings.maxRetries {
                    BridgeMetrics.add(metrics.failed, 1)
                    BridgeMetrics.add(metrics.inflight, -1)
                    confirm(e, delivered: false, reason: "bridge \(self.id): \(why) after \(e.attempts) attempts")
                    logger.warning("bridge \(self.id): rule \(e.record.rule): giving up after \(e.attempts) attempts: \(why); sent to $dlq/bridges/\(self.id)")
                    broker.deadLetter(bridge: self.id, rule: e.record.rule, payload: e.record.body, error: why)
                    continue
                }
                BridgeMetrics.add(metrics.retried, 1)
                if e.attempts == 1 || e.attempts % 20 == 0 {
                    logger.notice("bridge \(self.id): \(why); retrying (attempt \(e.attempts + 1))")
                }
                e.notBefore = monotonicMilliseconds() + backoff(e.attempts)
                retry.append(e)
            }
        }
        // Retries go back to their place in arrival order (before everything that came after
        // them, also when several requests fail at once): a car's records keep their order.
        if !retry.isEmpty {
            BridgeMetrics.add(metrics.queuing, retry.count)
            BridgeMetrics.add(metrics.queuingBytes, retry.reduce(0) { $0 + $1.record.body.count })
            BridgeMetrics.add(metrics.inflight, -retry.count)
            var i = 0
            for e in retry {   // in seq order within a request
                while i < queue.count && queue[i].seq < e.seq { i += 1 }
                queue.insert(e, at: i)
                i += 1
                queuedBytes += e.record.body.count
            }
        }
    }

    /// retry_backoff doubled per attempt, capped at 30 s, ±20 % jitter.
    private func backoff(_ attempts: Int) -> UInt64 {
        let base = min(30_000.0, Double(settings.retryBackoffMs) * pow(2.0, Double(min(attempts - 1, 16))))
        return UInt64(base * Double.random(in: 0.8...1.2))
    }

    /// A record's outcome is final: a waiting publisher's loop learns it (`ack = 'after_sink'`)
    /// and a disk-buffered record leaves the store.
    private func confirm(_ e: Entry, delivered: Bool, reason: String) {
        if e.record.storeId != 0 { finishedOnDisk.append(e.record.storeId) }
        if let t = e.record.ticket { broker.confirmSink(t, delivered: delivered, reason: reason) }
    }

    private func drop(_ e: Entry, counter: borrowing Atomic<Int>, reason: String) {
        confirm(e, delivered: false, reason: "bridge \(id): dropped: \(reason)")
        BridgeMetrics.add(metrics.dropped, 1)
        BridgeMetrics.add(counter, 1)
        BridgeMetrics.add(metrics.queuing, -1)
        BridgeMetrics.add(metrics.queuingBytes, -e.record.body.count)
        dropsSinceLog += 1
        let now = monotonicMilliseconds()
        if lastDropLog == 0 || now &- lastDropLog >= 10_000 {
            logger.warning("bridge \(id): dropped \(dropsSinceLog) record(s) of rule \(e.record.rule): \(reason) (logged at most every 10 s)")
            lastDropLog = now
            dropsSinceLog = 0
        }
    }
}
