import Broker
import EventLoop
import Foundation

// /api/v5/banned: EMQX's fields (`as`, `who`, `by`, `reason`, `at`, `until`). Bans from
// `[bans]` in turnpike.toml are listed too (`by: "config"`) but change only with the file.

extension AdminAPI {
    func banJSON(_ b: Ban) -> [String: Any] {
        ["as": b.kind.rawValue, "who": b.who, "by": b.by, "reason": b.reason,
         "at": Self.rfc3339(milliseconds: b.at * 1000),
         "until": b.until.map { Self.rfc3339(milliseconds: $0 * 1000) } ?? "infinity"]
    }

    private var configuredBans: [[String: Any]] {
        let c = broker.settings.bans
        func entry(_ kind: String, _ who: String) -> [String: Any] {
            ["as": kind, "who": who, "by": "config", "reason": "[bans] in the configuration file", "at": NSNull(), "until": "infinity"]
        }
        return c.clientIds.sorted().map { entry("clientid", $0) } + c.usernames.sorted().map { entry("username", $0) }
            + c.networks.map { entry("peerhost", "\($0)") }
    }

    func bans(_ q: [String: String]) throws(APIError) -> HTTPResponse {
        for name in q.keys where !["page", "limit"].contains(name) { throw .badRequest("unknown query parameter '\(name)'") }
        let all: [[String: Any]] = configuredBans + broker.bans.map(banJSON)
        return try paged(all, q) { $0 }
    }

    /// `until`: RFC 3339 text or Unix seconds; absent means never. `duration` (seconds) is
    /// the shorter way to say the same.
    func addBan(_ body: [UInt8]) throws(APIError) -> HTTPResponse {
        let f = try Fields(JSON.object(body), allowed: ["as", "who", "by", "reason", "at", "until", "duration"])
        guard let a = try f.string("as"), let kind = Ban.Kind(rawValue: a) else {
            throw .badRequest("'as' must be \"clientid\", \"username\" or \"peerhost\"")
        }
        guard let who = try f.string("who"), !who.isEmpty else { throw .badRequest("'who' is required") }
        let now = wallClockSeconds()
        var until: Int64?
        if let d = try f.int("duration") {
            guard d > 0 else { throw .badRequest("'duration' must be a positive number of seconds") }
            until = now + Int64(d)
        }
        if let v = f.object["until"], !(v is NSNull) {
            if let s = v as? String {
                guard let date = Self.parseRFC3339(s) else { throw .badRequest("'until' must be RFC 3339 (2026-12-31T23:59:59Z) or Unix seconds") }
                until = Int64(date.timeIntervalSince1970)
            } else if let n = try f.int("until") {
                until = Int64(n)
            }
            guard let u = until, u > now else { throw .badRequest("'until' is in the past") }
        }
        let ban = Ban(kind: kind, who: who, by: try f.string("by") ?? "admin_api", reason: try f.string("reason") ?? "",
                      at: now, until: until)
        guard broker.addBan(ban) else {
            throw APIError(status: 409, code: "ALREADY_EXISTS", message: "\(kind.rawValue) '\(who)' is already banned")
        }
        return JSON.response(banJSON(ban))
    }

    static func parseRFC3339(_ s: String) -> Date? {
        let f = ISO8601DateFormatter()
        if let d = f.date(from: s) { return d }
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: s)
    }

    func deleteBan(_ a: String, _ who: String) throws(APIError) -> HTTPResponse {
        guard let kind = Ban.Kind(rawValue: a) else { throw .badRequest("'\(a)' is not clientid, username or peerhost") }
        guard broker.removeBan(kind: kind, who: who) else {
            let c = broker.settings.bans
            if (kind == .clientid && c.clientIds.contains(who)) || (kind == .username && c.usernames.contains(who)) {
                throw .badRequest("\(kind.rawValue) '\(who)' is banned by [bans] in the configuration file; remove it there")
            }
            throw .notFound("NOT_FOUND", "no ban of \(kind.rawValue) '\(who)'")
        }
        return .noContent
    }

    func clearBans() -> HTTPResponse {
        broker.removeAllBans()
        return .noContent
    }
}
