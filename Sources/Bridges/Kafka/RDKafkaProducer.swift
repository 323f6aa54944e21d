import Broker
import CRdKafka

/// A librdkafka error as the bridge sees it: the code's name, librdkafka's message, and whether
/// trying again can help. Made only here, so no C type leaves this folder.
struct RDKafkaError: Error, CustomStringConvertible {
    let code: Int32
    let description: String
    let isRetriable: Bool

    init(_ err: rd_kafka_resp_err_t) {
        code = err.rawValue
        description = String(cString: rd_kafka_err2str(err))
        isRetriable = Self.retriable.contains(err)
    }

    init(message: String) { code = 0; description = message; isRetriable = false }

    /// The broker is away, slow or moving leadership: the record itself is fine. Anything else
    /// (too large, invalid or unauthorised topic, corrupt record) never works and is dead-lettered.
    private static let retriable: Set<rd_kafka_resp_err_t> = [
        RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR__TRANSPORT,
        RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, RD_KAFKA_RESP_ERR__QUEUE_FULL, RD_KAFKA_RESP_ERR__RESOLVE,
        RD_KAFKA_RESP_ERR__PURGE_QUEUE, RD_KAFKA_RESP_ERR__PURGE_INFLIGHT, RD_KAFKA_RESP_ERR__FATAL,
        RD_KAFKA_RESP_ERR__STATE, RD_KAFKA_RESP_ERR__DESTROY, RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION,
        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR,
        RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID,
        RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH, RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR_NOT_COORDINATOR, RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
        RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED,
    ]
}

/// Owns one `rd_kafka_t` producer: made by `make`, destroyed by `destroy` (flushing first).
/// Delivery reports and errors are served by `poll` on the calling thread, through the
/// callbacks given to `make`; `yield` may be called from any thread.
final class RDKafkaProducer {
    /// Called per delivery report with the message's opaque and its error (nil: delivered).
    typealias Delivery = (_ opaque: UInt, _ error: RDKafkaError?) -> Void
    /// Called (from `poll`) when librdkafka raises a fatal error: this producer is unusable.
    typealias Fatal = (_ message: String) -> Void
    /// Called (from `poll`) when librdkafka reports every broker down; it keeps reconnecting.
    typealias BrokersDown = () -> Void

    private let handle: OpaquePointer
    /// What the C callbacks reach through the conf opaque; lives as long as the handle.
    private final class Callbacks {
        let delivery: Delivery
        let fatal: Fatal
        let brokersDown: BrokersDown
        init(delivery: @escaping Delivery, fatal: @escaping Fatal, brokersDown: @escaping BrokersDown) {
            self.delivery = delivery; self.fatal = fatal; self.brokersDown = brokersDown
        }
    }
    private let callbacks: Unmanaged<Callbacks>
    /// The main queue's handle while `notifyEvents` is on.
    private var events: OpaquePointer?

    private init(handle: OpaquePointer, callbacks: Unmanaged<Callbacks>) {
        self.handle = handle
        self.callbacks = callbacks
    }

    /// Builds a configuration from `properties` (in order), or throws naming the property and
    /// librdkafka's message. The caller owns the result (`rd_kafka_conf_destroy`, or `rd_kafka_new`).
    private static func conf(_ properties: [(String, String)]) throws(RDKafkaError) -> OpaquePointer {
        let conf = rd_kafka_conf_new()!
        var err = [CChar](repeating: 0, count: 512)
        for (k, v) in properties {
            if rd_kafka_conf_set(conf, k, v, &err, err.count) != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw RDKafkaError(message: "librdkafka property '\(k)' = \"\(v)\": \(String(cString: err))")
            }
        }
        return conf
    }

    /// Checks `properties` as librdkafka will when the bridge starts (names, values, and the
    /// combinations rd_kafka_new checks), without connecting.
    static func validate(_ properties: [(String, String)]) throws(RDKafkaError) {
        rd_kafka_conf_destroy(try conf(properties))
    }

    static func make(_ properties: [(String, String)], delivery: @escaping Delivery, fatal: @escaping Fatal,
                     brokersDown: @escaping BrokersDown) throws(RDKafkaError) -> RDKafkaProducer {
        let conf = try conf(properties)
        let callbacks = Unmanaged.passRetained(Callbacks(delivery: delivery, fatal: fatal, brokersDown: brokersDown))
        rd_kafka_conf_set_opaque(conf, callbacks.toOpaque())
        rd_kafka_conf_set_dr_msg_cb(conf) { _, msg, opaque in
            guard let msg, let opaque else { return }
            let c = Unmanaged<Callbacks>.fromOpaque(opaque).takeUnretainedValue()
            let m = msg.pointee
            c.delivery(UInt(bitPattern: m._private), m.err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : RDKafkaError(m.err))
        }
        rd_kafka_conf_set_error_cb(conf) { rk, err, reason, opaque in
            // Other errors (a broker down, a refused connection) are transient: librdkafka
            // reconnects, and the records' own reports say what happened to them; all brokers
            // down is passed on for the bridge's health.
            guard let rk, let opaque else { return }
            let c = Unmanaged<Callbacks>.fromOpaque(opaque).takeUnretainedValue()
            if err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN.rawValue { c.brokersDown() }
            guard err == RD_KAFKA_RESP_ERR__FATAL.rawValue else { return }
            var buf = [CChar](repeating: 0, count: 512)
            _ = rd_kafka_fatal_error(rk, &buf, buf.count)
            c.fatal(String(cString: buf))
        }
        var err = [CChar](repeating: 0, count: 512)
        // rd_kafka_new frees the conf only when it succeeds.
        guard let rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &err, err.count) else {
            rd_kafka_conf_destroy(conf)
            callbacks.release()
            throw RDKafkaError(message: "librdkafka: \(String(cString: err))")
        }
        return RDKafkaProducer(handle: rk, callbacks: callbacks)
    }

    /// Queues one message (key and value are copied); a failure here is the record's outcome.
    func produce(topic: String, key: [UInt8]?, value: [UInt8], headers: [(name: String, value: String)], opaque: UInt) -> RDKafkaError? {
        var hdrs: OpaquePointer? = nil
        if !headers.isEmpty {
            hdrs = rd_kafka_headers_new(headers.count)
            for h in headers {
                _ = rd_kafka_header_add(hdrs, h.name, -1, h.value, -1)   // copied
            }
        }
        let err = key.withUnsafeBufferPointerOrNil { k in
            value.withUnsafeBytes { v in
                crdkafka_produce(handle, topic, k?.baseAddress, k?.count ?? 0, v.baseAddress, v.count,
                                 hdrs, UnsafeMutableRawPointer(bitPattern: opaque))
            }
        }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            if let hdrs { rd_kafka_headers_destroy(hdrs) }   // still ours when the produce failed
            return RDKafkaError(err)
        }
        return nil
    }

    /// Serves delivery reports and errors, waiting up to `timeoutMs` for the first.
    func poll(timeoutMs: Int) { rd_kafka_poll(handle, Int32(clamping: timeoutMs)) }

    /// From now on librdkafka writes a byte to `fd` when an event waits for `poll` (after the
    /// queue was served), so the caller can wait on the fd with its others. (rd_kafka_yield
    /// cannot wake a poll from another thread: it only flags the calling one.)
    func notifyEvents(fd: Int32) {
        guard events == nil, let q = rd_kafka_queue_get_main(handle) else { return }
        var one: UInt8 = 1
        rd_kafka_queue_io_event_enable(q, fd, &one, 1)
        events = q
    }

    /// Waits up to `timeoutMs` for what is queued to be delivered, then frees the handle (what
    /// is left is purged without reports).
    func destroy(flushTimeoutMs: Int) {
        _ = rd_kafka_flush(handle, Int32(clamping: flushTimeoutMs))
        if let events { rd_kafka_queue_destroy(events) }
        rd_kafka_destroy(handle)
        callbacks.release()
    }
}

private extension Optional where Wrapped == [UInt8] {
    func withUnsafeBufferPointerOrNil<R>(_ body: (UnsafeBufferPointer<UInt8>?) -> R) -> R {
        switch self {
        case .some(let a): a.withUnsafeBufferPointer { body($0) }
        case .none: body(nil)
        }
    }
}
