import MQTTCodec
import Synchronization

// A note on matching (MQTT 3.1.1 §4.7, 5.0 §4.7):
// - Levels are separated by '/'; empty levels are levels ("a//b" has three, "/a" has two).
// - '+' matches exactly one level, empty included: "+/+" matches "/finance".
// - '#' matches its parent and every level below: "sport/#" matches "sport" and "sport/a/b".
// - A filter whose first level is a wildcard never matches a topic starting with '$', so "#" does
//   not see "$SYS/…" while "$SYS/#" does [MQTT-4.7.2-1].
// - "$share/group/filter" is a shared subscription: the group is stored in the node of `filter`
//   and one member of the group receives each matching message.

/// One subscription as the router sees it.
struct SubscriberEntry {
    let session: Session
    var options: SubscriptionOptions
    var identifier: UInt32?
}

/// A shared subscription group under one filter.
final class SharedGroup: @unchecked Sendable {
    let name: String
    let filter: String
    /// Guarded by the tree's lock.
    var members: [SubscriberEntry] = []
    /// Round-robin position; bumped by readers under the read lock.
    let cursor = Atomic<Int>(0)

    init(name: String, filter: String) { self.name = name; self.filter = filter }

    /// The next member to receive a message: round-robin over connected members, falling back to
    /// any member (its session queues the message) when none is connected. `excluding` skips
    /// a member that is handing messages back.
    func pick(excluding: Session? = nil) -> SubscriberEntry? {
        let n = members.count
        guard n > 0 else { return nil }
        let start = cursor.wrappingAdd(1, ordering: .relaxed).oldValue
        var fallback: SubscriberEntry?
        for k in 0..<n {
            let m = members[(start &+ k) % n]
            if m.session === excluding { continue }
            if m.session.isConnected { return m }
            if fallback == nil { fallback = m }
        }
        return fallback
    }
}

final class TopicNode {
    var children: [Substring: TopicNode] = [:]
    var subscribers: [ObjectIdentifier: SubscriberEntry] = [:]
    var groups: [String: SharedGroup] = [:]

    var isEmpty: Bool { children.isEmpty && subscribers.isEmpty && groups.isEmpty }
}

/// A match produced for one PUBLISH: a subscriber, its options, and the shared group if any.
struct RouteMatch {
    let session: Session
    var options: SubscriptionOptions
    var identifiers: [UInt32]
    var group: SharedGroup?
}

/// The subscription trie shared by all loops: readers route messages under a read lock,
/// SUBSCRIBE/UNSUBSCRIBE/session end take the write lock.
final class TopicTree: @unchecked Sendable {
    private let root = TopicNode()
    private let lock = ReadWriteLock()
    private(set) var count = 0
    /// Told of every first subscription to a filter (per share group) and every last one gone,
    /// under the write lock (the cluster's interest).
    private var interestObserver: ((InterestChange) -> Void)?
    /// In a cluster, share groups are served through NATS queue groups (`deliverFromCluster`),
    /// never picked by `match`.
    private(set) var groupsServedElsewhere = false

    /// Starts telling `observer` of interest changes; returns the interest as it is now.
    func observeInterest(_ observer: @escaping (InterestChange) -> Void) -> [InterestChange] {
        lock.withWriteLock {
            interestObserver = observer
            groupsServedElsewhere = true
            var out: [InterestChange] = []
            func visit(_ node: TopicNode, _ path: String?) {
                if !node.subscribers.isEmpty, let path { out.append(.added(filter: path, group: nil)) }
                for name in node.groups.keys.sorted() { if let path { out.append(.added(filter: path, group: name)) } }
                for (level, child) in node.children { visit(child, path.map { $0 + "/" + level } ?? String(level)) }
            }
            visit(root, nil)
            return out
        }
    }

    /// The share group `name` under `filter`, if it has members here.
    func sharedGroup(filter: String, name: String) -> SharedGroup? {
        lock.withReadLock {
            var node = root
            for level in filter.split(separator: "/", omittingEmptySubsequences: false) {
                guard let c = node.children[level] else { return nil }
                node = c
            }
            return node.groups[name]
        }
    }

    /// Adds or replaces a subscription. Returns true when it is new for this session.
    @discardableResult
    func subscribe(session: Session, filter: String, options: SubscriptionOptions, identifier: UInt32?) -> Bool {
        let (group, plain) = Topic.parseShared(filter).map { ($0.group as String?, $0.filter) } ?? (nil, filter)
        return lock.withWriteLock {
            var node = root
            for level in plain.split(separator: "/", omittingEmptySubsequences: false) {
                if let c = node.children[level] { node = c } else {
                    let c = TopicNode()
                    // Key by a copy so the tree does not keep the caller's string alive.
                    node.children[Substring(String(level))] = c
                    node = c
                }
            }
            let entry = SubscriberEntry(session: session, options: options, identifier: identifier)
            if let group {
                let g: SharedGroup
                if let existing = node.groups[group] { g = existing } else {
                    g = SharedGroup(name: group, filter: plain)
                    node.groups[group] = g
                    interestObserver?(.added(filter: plain, group: group))
                }
                if let i = g.members.firstIndex(where: { $0.session === session }) {
                    g.members[i] = entry
                    return false
                }
                g.members.append(entry)
                count += 1
                return true
            }
            let isNew = node.subscribers.updateValue(entry, forKey: ObjectIdentifier(session)) == nil
            if isNew { count += 1 }
            if isNew && node.subscribers.count == 1 { interestObserver?(.added(filter: plain, group: nil)) }
            return isNew
        }
    }

    /// Removes a subscription; returns whether it existed.
    @discardableResult
    func unsubscribe(session: Session, filter: String) -> Bool {
        let (group, plain) = Topic.parseShared(filter).map { ($0.group as String?, $0.filter) } ?? (nil, filter)
        return lock.withWriteLock {
            var path: [(TopicNode, Substring)] = []
            var node = root
            for level in plain.split(separator: "/", omittingEmptySubsequences: false) {
                guard let c = node.children[level] else { return false }
                path.append((node, level))
                node = c
            }
            var removed = false
            if let group {
                if let g = node.groups[group], let i = g.members.firstIndex(where: { $0.session === session }) {
                    g.members.remove(at: i)
                    if g.members.isEmpty {
                        node.groups[group] = nil
                        interestObserver?(.removed(filter: plain, group: group))
                    }
                    removed = true
                }
            } else {
                removed = node.subscribers.removeValue(forKey: ObjectIdentifier(session)) != nil
                if removed && node.subscribers.isEmpty { interestObserver?(.removed(filter: plain, group: nil)) }
            }
            if removed { count -= 1 }
            // Prune empty branches.
            while let (parent, level) = path.last, node.isEmpty {
                parent.children[level] = nil
                node = parent
                path.removeLast()
            }
            return removed
        }
    }

    /// Appends every subscription matching `topic` to `out`, one entry per session for plain
    /// subscriptions (overlaps merged: highest QoS, all identifiers; MQTT 5.0 §4.8.1 allows this)
    /// and one chosen member per shared group. `seen` is the caller's reusable scratch index.
    func match(topic: String, into out: inout [RouteMatch], seen: inout [ObjectIdentifier: Int]) {
        lock.withReadLock {
            let isDollar = topic.utf8.first == UInt8(ascii: "$")
            walk(root, topic: Substring(topic), depth: 0, isDollar: isDollar, out: &out, seen: &seen)
        }
        seen.removeAll(keepingCapacity: true)
    }

    private func collect(_ node: TopicNode, out: inout [RouteMatch], seen: inout [ObjectIdentifier: Int]) {
        for (key, e) in node.subscribers {
            if let i = seen[key] {
                if e.options.qos > out[i].options.qos { out[i].options.qos = e.options.qos }
                if e.options.retainAsPublished { out[i].options.retainAsPublished = true }
                if !e.options.noLocal { out[i].options.noLocal = false }
                if let id = e.identifier { out[i].identifiers.append(id) }
            } else {
                seen[key] = out.count
                out.append(RouteMatch(session: e.session, options: e.options,
                                      identifiers: e.identifier.map { [$0] } ?? [], group: nil))
            }
        }
        for (_, g) in node.groups where !groupsServedElsewhere {
            if let m = g.pick() {
                out.append(RouteMatch(session: m.session, options: m.options,
                                      identifiers: m.identifier.map { [$0] } ?? [], group: g))
            }
        }
    }

    private func walk(_ node: TopicNode, topic: Substring, depth: Int, isDollar: Bool,
                      out: inout [RouteMatch], seen: inout [ObjectIdentifier: Int]) {
        let wildcardAllowed = !(depth == 0 && isDollar)
        // '#' here matches this level and everything below it.
        if wildcardAllowed, let hash = node.children["#"] {
            collect(hash, out: &out, seen: &seen)
        }
        // Split off the next level without allocating.
        let (level, rest) = splitFirstLevel(topic)
        if let exact = node.children[level] {
            descend(exact, rest: rest, depth: depth, isDollar: isDollar, out: &out, seen: &seen)
        }
        if wildcardAllowed, let plus = node.children["+"] {
            descend(plus, rest: rest, depth: depth, isDollar: isDollar, out: &out, seen: &seen)
        }
    }

    private func descend(_ node: TopicNode, rest: Substring?, depth: Int, isDollar: Bool,
                         out: inout [RouteMatch], seen: inout [ObjectIdentifier: Int]) {
        if let rest {
            walk(node, topic: rest, depth: depth + 1, isDollar: isDollar, out: &out, seen: &seen)
        } else {
            collect(node, out: &out, seen: &seen)
            // "a/#" also matches "a".
            if let hash = node.children["#"] { collect(hash, out: &out, seen: &seen) }
        }
    }

    /// Picks another member of `group` for a message handed back by `excluding`.
    func pickShared(_ group: SharedGroup, excluding: Session?) -> SubscriberEntry? {
        lock.withReadLock { group.pick(excluding: excluding) }
    }
}
