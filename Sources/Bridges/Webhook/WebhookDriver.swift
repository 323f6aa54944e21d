import Broker
import CCurl
import Synchronization

/// `[bridges.webhook.<name>]`.
public struct WebhookSettings: Sendable {
    /// http or https; an action's `path` is appended.
    public var url: String
    /// Requests in flight at once (connections kept alive between them).
    public var poolSize = 8
    /// Seconds one request may take, connecting included.
    public var requestTimeout = 5
    /// Headers on every request (an action's `headers` add to them).
    public var headers: [(name: String, value: String)] = []

    public init(url: String) { self.url = url }
}

/// Webhook requests through libcurl's multi interface, on the bridge's thread: one easy handle
/// per request in flight, connections reused across requests, `curl_multi_poll` to wait (and
/// `curl_multi_wakeup` to be woken). A 2xx is delivered; 408, 429, 5xx, timeouts and
/// connection errors are retried; any other status is a permanent failure.
final class WebhookDriver: SinkDriver, @unchecked Sendable {
    let maxBatch = 1
    private let settings: WebhookSettings
    private let multi: UnsafeMutableRawPointer
    /// Per easy handle in flight: the request id and what must live as long as the transfer.
    private final class Transfer {
        let id: UInt64
        let headers: UnsafeMutablePointer<curl_slist>?
        init(id: UInt64, headers: UnsafeMutablePointer<curl_slist>?) { self.id = id; self.headers = headers }
    }
    private var transfers: [UnsafeMutableRawPointer: Transfer] = [:]
    private var idle: [UnsafeMutableRawPointer] = []
    private let closed = Atomic<Bool>(false)

    static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    init(settings: WebhookSettings) {
        _ = Self.globalInit
        self.settings = settings
        self.multi = curl_multi_init()!
        _ = ccurl_multi_setopt_long(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, settings.poolSize)
    }

    func send(_ records: [BridgeRecord], id: UInt64) {
        let r = records[0]
        let easy = idle.popLast() ?? curl_easy_init()!
        curl_easy_reset(easy)
        _ = (settings.url + r.target).withCString { ccurl_setopt_ptr(easy, CURLOPT_URL, $0) }   // copied by libcurl
        _ = ccurl_setopt_long(easy, CURLOPT_TIMEOUT_MS, settings.requestTimeout * 1000)
        _ = ccurl_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        _ = ccurl_setopt_write(easy, ccurl_discard)
        if r.method == "GET" {
            _ = ccurl_setopt_long(easy, CURLOPT_HTTPGET, 1)
        } else {
            _ = ccurl_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(r.body.count))
            _ = r.body.withUnsafeBytes { ccurl_setopt_ptr(easy, CURLOPT_COPYPOSTFIELDS, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)) }
            if r.method != "POST" { _ = r.method.withCString { ccurl_setopt_ptr(easy, CURLOPT_CUSTOMREQUEST, $0) } }
        }
        var list: UnsafeMutablePointer<curl_slist>? = nil
        var names = Set<String>()
        for h in r.headers + settings.headers where names.insert(h.name.lowercased()).inserted {
            list = "\(h.name): \(h.value)".withCString { curl_slist_append(list, $0) }
        }
        if !names.contains("content-type") { list = curl_slist_append(list, "Content-Type: application/json") }
        list = curl_slist_append(list, "Expect:")   // no 100-continue round trip for large bodies
        _ = ccurl_setopt_ptr(easy, CURLOPT_HTTPHEADER, UnsafeRawPointer(list))
        transfers[easy] = Transfer(id: id, headers: list)
        curl_multi_add_handle(multi, easy)
    }

    func wait(timeoutMs: Int) -> [(id: UInt64, outcomes: [Outcome])] {
        var running: Int32 = 0
        curl_multi_perform(multi, &running)
        var numfds: Int32 = 0
        curl_multi_poll(multi, nil, 0, Int32(timeoutMs), &numfds)
        curl_multi_perform(multi, &running)
        var done: [(id: UInt64, outcomes: [Outcome])] = []
        var left: Int32 = 0
        while let msg = curl_multi_info_read(multi, &left) {
            guard msg.pointee.msg == CURLMSG_DONE, let easy = msg.pointee.easy_handle else { continue }
            let result = ccurl_msg_result(msg)
            var status = 0
            _ = ccurl_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
            curl_multi_remove_handle(multi, easy)
            if let t = transfers.removeValue(forKey: easy) {
                curl_slist_free_all(t.headers)
                done.append((t.id, [Self.outcome(result, status)]))
            }
            idle.append(easy)
        }
        return done
    }

    static func outcome(_ result: CURLcode, _ status: Int) -> Outcome {
        guard result == CURLE_OK else {
            return .retriable(String(cString: curl_easy_strerror(result)))
        }
        switch status {
        case 200..<300: return .delivered
        case 408, 429, 500..<600: return .retriable("HTTP \(status)")
        default: return .permanent("HTTP \(status)")
        }
    }

    func wakeUp() {
        guard !closed.load(ordering: .acquiring) else { return }
        curl_multi_wakeup(multi)
    }

    func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for (easy, t) in transfers {
            curl_multi_remove_handle(multi, easy)
            curl_slist_free_all(t.headers)
            curl_easy_cleanup(easy)
        }
        transfers.removeAll()
        for easy in idle { curl_easy_cleanup(easy) }
        idle.removeAll()
        curl_multi_cleanup(multi)
    }
}
