import MQTTCodec

/// One connection's identity and its ACL, compiled at CONNECT: only the rules that apply to this
/// client, with %c/%u/%{claim} already substituted, so a PUBLISH check is a loop over a few
/// `Topic.matches` calls with no string building. See ACL.swift for the decision rules.
final class ConnectionAuth {
    /// One compiled rule.
    struct Rule {
        let isAllow: Bool
        let access: ACL.Access
        let filter: String
        /// A deny rule whose placeholder could not be filled safely: it matches every topic.
        let matchesEverything: Bool
        let line: Int
    }

    let username: String?
    let claims: JWTClaims?
    let rules: [Rule]
    /// An ACL is configured (else only the `$SYS` switch applies).
    let hasACL: Bool
    let defaultAllows: Bool
    /// `$SYS` is restricted to `sys_readers`.
    let restrictsSys: Bool
    /// This client is one of `sys_readers`.
    let readsSys: Bool
    /// Loop time of the last "publish denied" log line (rate limit).
    var lastDenialLog: UInt64 = 0
    /// Publishes denied since the last log line.
    var denialsSinceLog = 0

    init(configuration auth: BrokerConfiguration.Auth, username: String?, clientId: String, claims: JWTClaims?) {
        self.username = username
        self.claims = claims
        self.hasACL = auth.acl != nil
        self.defaultAllows = auth.aclDefaultAllows
        self.restrictsSys = auth.sysReaders != nil || auth.acl != nil
        self.readsSys = username.map { auth.sysReaders?.contains($0) ?? false } ?? false
        var compiled: [Rule] = []
        for rule in auth.acl?.rules ?? [] {
            switch rule.scope {
            case .everyone: break
            case .user(let name): guard name == username else { continue }
            case .client(let id): guard id == clientId else { continue }
            }
            var filter = ""
            var safe = true
            for piece in rule.filter {
                let value: String?
                switch piece {
                case .literal(let s): filter += s; continue
                case .clientId: value = clientId.isEmpty ? nil : clientId
                case .username: value = username
                case .claim(let name): value = claims?.string(name)
                }
                guard let value, !value.isEmpty, Self.isPlainLevelText(value) else { safe = false; break }
                filter += value
            }
            if safe {
                compiled.append(Rule(isAllow: rule.isAllow, access: rule.access, filter: filter, matchesEverything: false, line: rule.line))
            } else if !rule.isAllow {
                compiled.append(Rule(isAllow: false, access: rule.access, filter: "#", matchesEverything: true, line: rule.line))
            }
        }
        self.rules = compiled
    }

    /// No '/', '+', '#' or NUL: a substituted value stays inside its level.
    static func isPlainLevelText(_ s: String) -> Bool {
        for b in s.utf8 where b == UInt8(ascii: "/") || b == UInt8(ascii: "+") || b == UInt8(ascii: "#") || b == 0 {
            return false
        }
        return true
    }

    static func isSys(_ topicOrFilter: String) -> Bool {
        topicOrFilter == "$SYS" || topicOrFilter.utf8.starts(with: "$SYS/".utf8)
    }

    /// May this client publish to `topic` (or use it as its will topic)?
    func mayPublish(_ topic: String) -> Bool {
        // Only the broker writes $SYS once access is controlled.
        if restrictsSys && Self.isSys(topic) { return false }
        guard hasACL else { return true }
        for rule in rules where rule.access.contains(.write) {
            if rule.matchesEverything || Topic.matches(filter: rule.filter, topic: topic) { return rule.isAllow }
        }
        return defaultAllows
    }

    /// May this client subscribe to `filter` (shared subscriptions: their inner filter)?
    func maySubscribe(_ filter: String) -> Bool {
        let inner = Topic.parseShared(filter)?.filter ?? filter
        if restrictsSys && Self.isSys(inner) { return readsSys }
        guard hasACL else { return true }
        let levels = Self.levels(inner)
        for rule in rules where rule.access.contains(.read) {
            if rule.matchesEverything { return false }
            let ruleLevels = Self.levels(rule.filter)
            if rule.isAllow {
                if Self.covers(ruleLevels, levels) { return true }
            } else if Self.overlaps(ruleLevels, levels) {
                return false
            }
        }
        return defaultAllows
    }

    static func levels(_ filter: String) -> [Substring] {
        filter.split(separator: "/", omittingEmptySubsequences: false)
    }

    private static func isDollar(_ level: Substring) -> Bool { level.utf8.first == UInt8(ascii: "$") }
    private static func isWildcard(_ level: Substring) -> Bool { level == "+" || level == "#" }

    /// Does every topic that `filter` matches also match `pattern`?
    static func covers(_ pattern: [Substring], _ filter: [Substring]) -> Bool {
        var i = 0
        while true {
            if i == pattern.count { return i == filter.count }
            let p = pattern[i]
            if i == filter.count {
                // "a/#" also matches "a": the parent rule.
                return p == "#" && i + 1 == pattern.count
            }
            let f = filter[i]
            // [MQTT-4.7.2-1]: a leading wildcard does not reach '$' topics.
            if i == 0 && isWildcard(p) && isDollar(f) { return false }
            if p == "#" { return true }
            if f == "#" { return false }
            if p == "+" { i += 1; continue }
            if f == "+" || p != f { return false }
            i += 1
        }
    }

    /// Is there a topic that both filters match?
    static func overlaps(_ a: [Substring], _ b: [Substring]) -> Bool {
        var i = 0
        while true {
            if i == a.count || i == b.count {
                if i == a.count && i == b.count { return true }
                let rest = i == a.count ? b[i...] : a[i...]
                return rest.count == 1 && rest.first == "#"
            }
            let x = a[i], y = b[i]
            if i == 0 && ((isWildcard(x) && isDollar(y)) || (isWildcard(y) && isDollar(x))) { return false }
            if x == "#" || y == "#" { return true }
            if x != "+" && y != "+" && x != y { return false }
            i += 1
        }
    }
}
