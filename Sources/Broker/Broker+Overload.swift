import EventLoop
import Synchronization

// Overload protection that spans loops: flapping detection and ban checks at CONNECT. The
// per-listener accept rate lives in `Listener`, the per-client publish rate in
// `Connection.chargePublish`.

/// CONNECTs per client id, counted in fixed windows that start at the first CONNECT. Used under
/// the broker's mutex, once per CONNECT (never per message).
struct FlappingTracker {
    struct Entry {
        var windowStart: UInt64
        var connects: Int
        var bannedUntil: UInt64
    }

    enum Verdict: Equatable {
        case admit
        /// Just went over the limit: refused for the whole ban (log this one).
        case banned(connects: Int)
        /// Still banned: refused quietly.
        case stillBanned(secondsLeft: UInt64)
    }

    private var entries: [String: Entry] = [:]
    private var lastPrune: UInt64 = 0

    mutating func record(_ clientId: String, now: UInt64, maxConnects: Int, window: UInt64, ban: UInt64) -> Verdict {
        prune(now: now, window: window)
        guard var e = entries[clientId], now < e.windowStart + window || now < e.bannedUntil else {
            entries[clientId] = Entry(windowStart: now, connects: 1, bannedUntil: 0)
            return .admit
        }
        if e.bannedUntil != 0 {
            if now < e.bannedUntil { return .stillBanned(secondsLeft: (e.bannedUntil - now + 999) / 1000) }
            // The ban is over: start counting afresh.
            entries[clientId] = Entry(windowStart: now, connects: 1, bannedUntil: 0)
            return .admit
        }
        e.connects += 1
        if e.connects > maxConnects {
            e.bannedUntil = now + ban
            entries[clientId] = e
            return .banned(connects: e.connects)
        }
        entries[clientId] = e
        return .admit
    }

    /// Drops entries whose window and ban are both over, at most once per window (≥ 10 s).
    private mutating func prune(now: UInt64, window: UInt64) {
        guard now >= lastPrune + max(window, 10_000) else { return }
        lastPrune = now
        entries = entries.filter { now < $0.value.windowStart + window || now < $0.value.bannedUntil }
    }
}

extension Broker {
    /// Flapping check for a client-chosen id (after authentication, so only a client with valid
    /// credentials can get an id banned). Nil admits; otherwise the refusal's reason text.
    func flappingRefusal(clientId: String, now: UInt64, peer: String, limits l: BrokerConfiguration.Limits) -> String? {
        guard l.flappingMaxConnects > 0 else { return nil }
        let verdict = flapping.withLock {
            $0.record(clientId, now: now, maxConnects: l.flappingMaxConnects,
                      window: UInt64(l.flappingWindow) * 1000, ban: UInt64(l.flappingBan) * 1000)
        }
        switch verdict {
        case .admit:
            return nil
        case .banned(let n):
            logger.warning("client \(clientId) (\(peer)) connected \(n) times within \(l.flappingWindow) s (flapping_max_connects \(l.flappingMaxConnects)): refusing it for \(l.flappingBan) s")
            return "client id connects too often; refused for \(l.flappingBan) s"
        case .stillBanned(let left):
            return "client id connects too often; refused for another \(left) s"
        }
    }

    /// What bans this client id, user name or peer address: `[bans]` (as the loop's settings
    /// have it: a reload changes it) or a ban added through the admin API; nil when nothing does.
    func banReason(clientId: String, username: String?, peer: String, bans b: BrokerConfiguration.Bans) -> String? {
        if b.clientIds.contains(clientId) { return "client id '\(clientId)' is banned" }
        if let username, b.usernames.contains(username) { return "user name '\(username)' is banned" }
        guard let ban = runtimeBans.match(clientId: clientId, username: username, host: peerHost(peer),
                                          now: wallClockSeconds()) else { return nil }
        return "\(ban.kind.rawValue) '\(ban.who)' is banned" + (ban.reason.isEmpty ? "" : " (\(ban.reason))")
    }

    /// True at most once per 10 s per slot, across loops: for log lines a storm would repeat.
    func shouldLog(_ slot: borrowing Atomic<UInt64>, now: UInt64) -> Bool {
        let last = slot.load(ordering: .relaxed)
        guard last == 0 || now >= last + 10_000 else { return false }
        return slot.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged
    }
}
