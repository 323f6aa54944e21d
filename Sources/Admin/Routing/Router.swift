/// Every route of the admin listener: method, path pattern (`{name}` is one path segment) and
/// what handles it. The OpenAPI document (OpenAPIDocument.swift) lists the same routes, and
/// AdminTests checks that the two agree.
public enum RouteID: String, CaseIterable, Sendable {
    case dashboard, metrics, prometheusStats, openAPI, status
    case clients, client, kickClient, clientSubscriptions
    case subscriptions, topics
    case retainedMessages, retainedMessage, deleteRetainedMessage
    case publish
    case rules, rule, updateRule, ruleTest
    case bridges, bridge
    case bans, addBan, clearBans, deleteBan
    case stats, metricsJSON, nodes, deadLetters
    case reload
}

public struct Route: Sendable {
    public let method: String
    public let pattern: String
    public let id: RouteID
    /// Needs no credentials (health checks, and scrapes unless `metrics_auth`).
    public let isPublic: Bool
    let segments: [Segment]

    enum Segment: Equatable, Sendable {
        case literal(String)
        case parameter(String)
    }

    init(_ method: String, _ pattern: String, _ id: RouteID, isPublic: Bool = false) {
        self.method = method
        self.pattern = pattern
        self.id = id
        self.isPublic = isPublic
        segments = pattern.split(separator: "/").map { s in
            s.hasPrefix("{") && s.hasSuffix("}") ? .parameter(String(s.dropFirst().dropLast())) : .literal(String(s))
        }
    }
}

public enum Router {
    public static let routes: [Route] = [
        // The page itself holds no data: it asks for a key and reads the API with it.
        Route("GET", "/", .dashboard, isPublic: true),
        Route("GET", "/metrics", .metrics, isPublic: true),
        Route("GET", "/api/v5/prometheus/stats", .prometheusStats, isPublic: true),
        Route("GET", "/api/v5/openapi.json", .openAPI, isPublic: true),
        Route("GET", "/api/v5/status", .status, isPublic: true),
        Route("GET", "/api/v5/clients", .clients),
        Route("GET", "/api/v5/clients/{clientid}", .client),
        Route("DELETE", "/api/v5/clients/{clientid}", .kickClient),
        Route("GET", "/api/v5/clients/{clientid}/subscriptions", .clientSubscriptions),
        Route("GET", "/api/v5/subscriptions", .subscriptions),
        Route("GET", "/api/v5/topics", .topics),
        Route("GET", "/api/v5/mqtt/retainer/messages", .retainedMessages),
        Route("GET", "/api/v5/mqtt/retainer/message/{topic}", .retainedMessage),
        Route("DELETE", "/api/v5/mqtt/retainer/message/{topic}", .deleteRetainedMessage),
        Route("POST", "/api/v5/publish", .publish),
        Route("GET", "/api/v5/rules", .rules),
        Route("GET", "/api/v5/rules/{id}", .rule),
        Route("PUT", "/api/v5/rules/{id}", .updateRule),
        Route("POST", "/api/v5/rule_test", .ruleTest),
        Route("GET", "/api/v5/bridges", .bridges),
        Route("GET", "/api/v5/bridges/{id}", .bridge),
        Route("GET", "/api/v5/banned", .bans),
        Route("POST", "/api/v5/banned", .addBan),
        Route("DELETE", "/api/v5/banned", .clearBans),
        Route("DELETE", "/api/v5/banned/{as}/{who}", .deleteBan),
        Route("GET", "/api/v5/stats", .stats),
        Route("GET", "/api/v5/metrics", .metricsJSON),
        Route("GET", "/api/v5/nodes", .nodes),
        Route("GET", "/api/v5/dead_letters", .deadLetters),
        Route("POST", "/api/v5/reload", .reload),
    ]

    public enum Match {
        case found(Route, parameters: [String: String])
        /// The path exists with other methods (405, with `Allow`).
        case methodNotAllowed(allowed: [String])
        case notFound
    }

    /// The route for `method` and decoded path `segments`. A literal segment beats a parameter
    /// (`/banned` is not `/banned/{as}` missing a part, and never a client id).
    public static func match(method: String, segments: [String]) -> Match {
        var allowed: [String] = []
        for r in routes where r.segments.count == segments.count {
            var parameters: [String: String] = [:]
            var fits = true
            for (s, value) in zip(r.segments, segments) {
                switch s {
                case .literal(let l): if l != value { fits = false }
                case .parameter(let name): parameters[name] = value
                }
                if !fits { break }
            }
            guard fits else { continue }
            // HEAD is answered as GET (libmicrohttpd leaves out the body).
            if r.method == method || (method == "HEAD" && r.method == "GET") { return .found(r, parameters: parameters) }
            allowed.append(r.method)
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed: allowed)
    }
}
