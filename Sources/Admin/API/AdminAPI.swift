import Broker
import EventLoop
import Foundation
import Logging

/// Answers the admin listener's requests: checks credentials, finds the route, runs its
/// handler (API/AdminAPI+*.swift). Called on libmicrohttpd's threads; everything it reads of
/// the loops' state it asks the loops for (Broker+Inspection.swift).
public final class AdminAPI: @unchecked Sendable {
    let broker: Broker
    let configuration: AdminConfiguration
    let logger: Logger
    /// EMQX's `node` field: "turnpike@HOST".
    let node: String
    /// How long a handler waits for the loops; the health check answers 503 past it.
    static let loopTimeoutMilliseconds = 1000

    /// The executable's reload (`POST /api/v5/reload`).
    let reloadHook: (@Sendable () -> ReloadReport)?

    public init(broker: Broker, configuration: AdminConfiguration, logger: Logger, reload: (@Sendable () -> ReloadReport)? = nil) {
        self.broker = broker
        self.configuration = configuration
        self.logger = logger
        self.reloadHook = reload
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        node = "turnpike@" + String(cString: host)
    }

    public func handle(_ request: HTTPRequest) -> HTTPResponse {
        let target: RequestTarget
        do {
            target = try RequestTarget(rawPath: request.rawPath, rawQuery: request.rawQuery)
        } catch {
            return APIError.badRequest(error.description).response
        }
        switch Router.match(method: request.method, segments: target.segments) {
        case .notFound:
            return APIError.notFound("NOT_FOUND", "no such route: \(request.method) \(request.rawPath) (see /api/v5/openapi.json)").response
        case .methodNotAllowed(let allowed):
            var r = APIError(status: 405, code: "METHOD_NOT_ALLOWED",
                             message: "\(request.rawPath) takes \(allowed.joined(separator: ", ")), not \(request.method)").response
            r.headers.append(("Allow", allowed.joined(separator: ", ")))
            return r
        case .found(let route, let parameters):
            let isScrape = route.id == .metrics || route.id == .prometheusStats
            if !route.isPublic || (isScrape && configuration.metricsAuth), !isAuthorized(request.authorization) {
                var r = APIError(status: 401, code: "BAD_API_KEY_OR_SECRET",
                                 message: "this route needs an API key (HTTP Basic) or a bearer token").response
                r.headers.append(("WWW-Authenticate", #"Basic realm="turnpike""#))
                return r
            }
            do throws(APIError) {
                return try dispatch(route.id, parameters, target.query, request)
            } catch {
                return error.response
            }
        }
    }

    private func dispatch(_ id: RouteID, _ p: [String: String], _ q: [String: String], _ r: HTTPRequest) throws(APIError) -> HTTPResponse {
        switch id {
        case .dashboard: return Dashboard.response
        case .metrics, .prometheusStats: return prometheus()
        case .openAPI: return HTTPResponse(status: 200, body: Array(OpenAPIDocument.text.utf8))
        case .status: return status(q)
        case .clients: return try clients(q)
        case .client: return try client(p["clientid"]!)
        case .kickClient: return try kick(p["clientid"]!)
        case .clientSubscriptions: return try clientSubscriptions(p["clientid"]!, q)
        case .subscriptions: return try subscriptions(q)
        case .topics: return try topics(q)
        case .retainedMessages: return try retainedMessages(q)
        case .retainedMessage: return try retainedMessage(p["topic"]!)
        case .deleteRetainedMessage: return try deleteRetained(p["topic"]!)
        case .publish: return try publish(r.body)
        case .rules: return try rules(q)
        case .rule: return try rule(p["id"]!)
        case .updateRule: return try updateRule(p["id"]!, r.body)
        case .ruleTest: return try ruleTest(r.body)
        case .bridges: return bridges()
        case .bridge: return try bridge(p["id"]!)
        case .bans: return try bans(q)
        case .addBan: return try addBan(r.body)
        case .clearBans: return clearBans()
        case .deleteBan: return try deleteBan(p["as"]!, p["who"]!)
        case .stats: return try stats(q)
        case .metricsJSON: return try metricsJSON(q)
        case .nodes: return try nodes(q)
        case .deadLetters: return try deadLetters(q)
        case .reload: return try reload(r.body)
        }
    }

    // MARK: Credentials

    /// HTTP Basic with a configured API key and secret, or a configured bearer token.
    func isAuthorized(_ header: String?) -> Bool {
        guard let header, let space = header.firstIndex(of: " ") else { return false }
        let scheme = header[..<space].lowercased()
        let value = header[header.index(after: space)...].trimmingCharacters(in: .whitespaces)
        switch scheme {
        case "basic":
            guard let data = Data(base64Encoded: value), let text = String(data: data, encoding: .utf8),
                  let colon = text.firstIndex(of: ":") else { return false }
            let key = String(text[..<colon]), secret = String(text[text.index(after: colon)...])
            var ok = false
            for k in configuration.apiKeys where Self.equal(k.key, key) && Self.equal(k.secret, secret) { ok = true }
            return ok
        case "bearer":
            var ok = false
            for t in configuration.tokens where Self.equal(t, value) { ok = true }
            return ok
        default:
            return false
        }
    }

    /// Compares without stopping at the first difference (the length may leak; the content does not).
    static func equal(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var d: UInt8 = 0
        for i in x.indices { d |= x[i] ^ y[i] }
        return d == 0
    }

    // MARK: Shared helpers

    func paging(_ q: [String: String]) throws(APIError) -> Paging {
        switch Paging.parse(q) {
        case .success(let p): return p
        case .failure(let e): throw .badRequest(e.message)
        }
    }

    /// EMQX's paged answer: `{"data": [...], "meta": {"page", "limit", "count", "hasnext"}}`.
    func paged<T>(_ all: [T], _ q: [String: String], _ render: (T) -> Any) throws(APIError) -> HTTPResponse {
        let (items, meta) = try paging(q).apply(all)
        return JSON.response(["data": items.map(render), "meta": meta])
    }

    /// Wall-clock ms as RFC 3339 with milliseconds, UTC ("2026-12-01T21:16:22.123+00:00").
    static func rfc3339(milliseconds ms: Int64) -> String {
        var t = time_t(ms / 1000)
        var tm = Glibc.tm()
        gmtime_r(&t, &tm)
        func pad(_ n: Int32, _ w: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2)).\(pad(Int32(ms % 1000), 3))+00:00"
    }

    /// A query parameter that must be one of `allowed`.
    func choice(_ q: [String: String], _ name: String, _ allowed: [String]) throws(APIError) -> String? {
        guard let v = q[name] else { return nil }
        guard allowed.contains(v) else { throw .badRequest("\(name) must be \(allowed.joined(separator: " or ")), not '\(v)'") }
        return v
    }

    func intParameter(_ q: [String: String], _ name: String, _ range: ClosedRange<Int>) throws(APIError) -> Int? {
        guard let v = q[name] else { return nil }
        guard let n = Int(v), range.contains(n) else { throw .badRequest("\(name) must be a whole number in \(range.lowerBound)...\(range.upperBound), not '\(v)'") }
        return n
    }

    /// `aggregate=true` gives one object; otherwise EMQX's list of per-node objects.
    func perNode(_ figures: [String: Any], _ q: [String: String]) throws(APIError) -> HTTPResponse {
        let aggregate = try choice(q, "aggregate", ["true", "false"]) == "true"
        if aggregate { return JSON.response(figures) }
        var withNode = figures
        withNode["node"] = node
        return JSON.response([withNode])
    }
}
