import Synchronization

/// A ban added at run time (the admin API's `/api/v5/banned`), EMQX's fields.
public struct Ban: Sendable, Equatable {
    /// What `who` is matched against.
    public enum Kind: String, Sendable, CaseIterable {
        case clientid, username, peerhost
    }

    public var kind: Kind
    public var who: String
    public var by: String
    public var reason: String
    /// Wall-clock seconds it was added and when it ends (nil: never).
    public var at: Int64
    public var until: Int64?

    public init(kind: Kind, who: String, by: String, reason: String, at: Int64, until: Int64?) {
        self.kind = kind; self.who = who; self.by = by; self.reason = reason; self.at = at; self.until = until
    }

    func isActive(now: Int64) -> Bool { until.map { now < $0 } ?? true }
}

/// Run-time bans, checked at CONNECT (never per message). The `[bans]` of the configuration file
/// stay separate and are checked first; they cannot be removed through the API.
final class BanList: @unchecked Sendable {
    private struct Key: Hashable {
        let kind: Ban.Kind
        let who: String
    }

    private let bans = Mutex<[Key: Ban]>([:])
    /// Lets a CONNECT skip the lock while there are none (the usual case).
    private let count = Atomic<Int>(0)

    /// Adds `ban`; false when one for the same kind and value exists (and is still active).
    func add(_ ban: Ban, now: Int64) -> Bool {
        bans.withLock { m in
            let k = Key(kind: ban.kind, who: ban.who)
            if let old = m[k], old.isActive(now: now) { return false }
            m[k] = ban
            count.store(m.count, ordering: .relaxed)
            return true
        }
    }

    func remove(kind: Ban.Kind, who: String) -> Bool {
        bans.withLock { m in
            let removed = m.removeValue(forKey: Key(kind: kind, who: who)) != nil
            count.store(m.count, ordering: .relaxed)
            return removed
        }
    }

    func removeAll() {
        bans.withLock { m in
            m.removeAll()
            count.store(0, ordering: .relaxed)
        }
    }

    /// The active bans, oldest first; expired ones are dropped on the way.
    func list(now: Int64) -> [Ban] {
        bans.withLock { m in
            m = m.filter { $0.value.isActive(now: now) }
            count.store(m.count, ordering: .relaxed)
            return m.values.sorted { ($0.at, $0.kind.rawValue, $0.who) < ($1.at, $1.kind.rawValue, $1.who) }
        }
    }

    /// The active ban matching a CONNECT, if any.
    func match(clientId: String, username: String?, host: String, now: Int64) -> Ban? {
        guard count.load(ordering: .relaxed) > 0 else { return nil }
        return bans.withLock { m in
            let candidates = [Key(kind: .clientid, who: clientId), Key(kind: .peerhost, who: host)]
                + (username.map { [Key(kind: .username, who: $0)] } ?? [])
            for k in candidates {
                if let b = m[k], b.isActive(now: now) { return b }
            }
            return nil
        }
    }
}

/// The address part of a peer as `Socket` writes it ("10.0.0.7:5123", "[::1]:5123").
func peerHost(_ peer: String) -> String {
    if peer.hasPrefix("["), let close = peer.firstIndex(of: "]") {
        return String(peer[peer.index(after: peer.startIndex)..<close])
    }
    guard let colon = peer.lastIndex(of: ":") else { return peer }
    return String(peer[..<colon])
}
