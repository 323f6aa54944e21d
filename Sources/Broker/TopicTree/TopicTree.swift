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

// Memory: a million cars each subscribed to `cars/<vin>/cmd` make two nodes per car — `<vin>`
// with one child and `cmd` with one subscriber — and a dictionary of one entry costs ~150 bytes.
// So one child and one subscriber are kept inline, a dictionary is made for the second; the
// '+' and '#' children and the shared groups, which few nodes have, sit behind one reference
// that is nil elsewhere (bench/sessionbench measures it). Matching also gains: a single child is
// one string comparison instead of a hash, and wildcards are fields, not dictionary look-ups.

/// A node's children under exact levels (never "+" or "#": those are `TopicNode.Wild`'s).
struct TopicChildren {
    enum Storage {
        case none
        case one(String, TopicNode)
        case many([Substring: TopicNode])
    }
    private(set) var storage = Storage.none

    @inline(__always)
    subscript(level: Substring) -> TopicNode? {
        switch storage {
        case .none: return nil
        case .one(let key, let node): return key == level ? node : nil
        case .many(let d): return d[level]
        }
    }

    var isEmpty: Bool {
        if case .none = storage { return true }
        return false
    }

    /// Adds a child under `level`, which must be absent. A dictionary key is a slice of
    /// `level`'s string (the subscribing session keeps that filter anyway).
    mutating func insert(_ node: TopicNode, at level: Substring) {
        switch storage {
        case .none:
            storage = .one(String(level), node)
        case .one(let key, let first):
            storage = .many([Substring(key): first, level: node])
        case .many(var d):
            storage = .none // d unique: no copy on insert
            d[level] = node
            storage = .many(d)
        }
    }

    mutating func remove(at level: Substring) {
        switch storage {
        case .none: break
        case .one(let key, _): if key == level { storage = .none }
        case .many(var d):
            storage = .none
            d[level] = nil
            if d.count == 1, let (k, n) = d.first { storage = .one(String(k), n) } else if !d.isEmpty { storage = .many(d) }
        }
    }

    var all: [(Substring, TopicNode)] {
        switch storage {
        case .none: return []
        case .one(let key, let node): return [(Substring(key), node)]
        case .many(let d): return d.map { ($0.key, $0.value) }
        }
    }
}

/// A node's plain subscribers, one entry per session.
struct SubscriberSet {
    enum Storage {
        case none
        case one(SubscriberEntry)
        case many([ObjectIdentifier: SubscriberEntry])
    }
    private(set) var storage = Storage.none

    var isEmpty: Bool {
        if case .none = storage { return true }
        return false
    }

    var count: Int {
        switch storage {
        case .none: return 0
        case .one: return 1
        case .many(let d): return d.count
        }
    }

    /// Adds or replaces the entry of `entry.session`; true when it is new.
    mutating func update(_ entry: SubscriberEntry) -> Bool {
        switch storage {
        case .none:
            storage = .one(entry)
            return true
        case .one(let first):
            if first.session === entry.session {
                storage = .one(entry)
                return false
            }
            storage = .many([ObjectIdentifier(first.session): first, ObjectIdentifier(entry.session): entry])
            return true
        case .many(var d):
            storage = .none
            let isNew = d.updateValue(entry, forKey: ObjectIdentifier(entry.session)) == nil
            storage = .many(d)
            return isNew
        }
    }

    /// Removes the entry of `session`; true when there was one.
    mutating func remove(_ session: Session) -> Bool {
        switch storage {
        case .none: return false
        case .one(let first):
            guard first.session === session else { return false }
            storage = .none
            return true
        case .many(var d):
            storage = .none
            let removed = d.removeValue(forKey: ObjectIdentifier(session)) != nil
            if d.count == 1, let only = d.first?.value { storage = .one(only) } else if !d.isEmpty { storage = .many(d) }
            return removed
        }
    }
}

final class TopicNode {
    var children = TopicChildren()
    var subscribers = SubscriberSet()
    /// What few nodes have: the '+' and '#' children and shared groups.
    final class Wild {
        var plus: TopicNode?
        var hash: TopicNode?
        var groups: [String: SharedGroup] = [:]
        var isEmpty: Bool { plus == nil && hash == nil && groups.isEmpty }
    }
    var wild: Wild?

    var isEmpty: Bool { children.isEmpty && subscribers.isEmpty && (wild?.isEmpty ?? true) }

    /// "+" or "#" as a byte when `level` is that wildcard, else 0.
    @inline(__always)
    private static func wildcard(_ level: Substring) -> UInt8 {
        let u = level.utf8
        guard u.count == 1, let b = u.first, b == UInt8(ascii: "+") || b == UInt8(ascii: "#") else { return 0 }
        return b
    }

    /// The child under a filter level ("+" and "#" included).
    func child(_ level: Substring) -> TopicNode? {
        switch TopicNode.wildcard(level) {
        case UInt8(ascii: "+"): return wild?.plus
        case UInt8(ascii: "#"): return wild?.hash
        default: return children[level]
        }
    }

    /// The child under a filter level, made when absent.
    func makeChild(_ level: Substring) -> TopicNode {
        if let c = child(level) { return c }
        let c = TopicNode()
        switch TopicNode.wildcard(level) {
        case UInt8(ascii: "+"): wildParts().plus = c
        case UInt8(ascii: "#"): wildParts().hash = c
        default: children.insert(c, at: level)
        }
        return c
    }

    func removeChild(_ level: Substring) {
        switch TopicNode.wildcard(level) {
        case UInt8(ascii: "+"): wild?.plus = nil
        case UInt8(ascii: "#"): wild?.hash = nil
        default: children.remove(at: level)
        }
        if let w = wild, w.isEmpty { wild = nil }
    }

    func wildParts() -> Wild {
        if let w = wild { return w }
        let w = Wild()
        wild = w
        return w
    }

    var groups: [String: SharedGroup] { wild?.groups ?? [:] }

    /// Every child with its filter level, wildcards included (not on the routing path).
    var allChildren: [(Substring, TopicNode)] {
        var out = children.all
        if let p = wild?.plus { out.append(("+", p)) }
        if let h = wild?.hash { out.append(("#", h)) }
        return out
    }
}

/// A match produced for one PUBLISH: a subscriber, its options, and the shared group if any.
struct RouteMatch {
    let session: Session
    var options: SubscriptionOptions
    var identifiers: [UInt32]
    var group: SharedGroup?
}

/// Calls `body` with each level of `filter` ("a//b": "a", "", "b"), without allocating; stops
/// when it returns false. Returns whether every level was visited.
@inline(__always)
@discardableResult
func forEachLevel(_ filter: String, _ body: (Substring) -> Bool) -> Bool {
    var rest: Substring? = Substring(filter)
    while let r = rest {
        let (level, next) = splitFirstLevel(r)
        guard body(level) else { return false }
        rest = next
    }
    return true
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
                for (level, child) in node.allChildren { visit(child, path.map { $0 + "/" + level } ?? String(level)) }
            }
            visit(root, nil)
            return out
        }
    }

    /// The share group `name` under `filter`, if it has members here.
    func sharedGroup(filter: String, name: String) -> SharedGroup? {
        lock.withReadLock {
            var node = root
            let found = forEachLevel(filter) { level in
                guard let c = node.child(level) else { return false }
                node = c
                return true
            }
            return found ? node.groups[name] : nil
        }
    }

    /// Adds or replaces a subscription. Returns true when it is new for this session.
    @discardableResult
    func subscribe(session: Session, filter: String, options: SubscriptionOptions, identifier: UInt32?) -> Bool {
        let (group, plain) = Topic.parseShared(filter).map { ($0.group as String?, $0.filter) } ?? (nil, filter)
        return lock.withWriteLock {
            var node = root
            forEachLevel(plain) { level in
                node = node.makeChild(level)
                return true
            }
            let entry = SubscriberEntry(session: session, options: options, identifier: identifier)
            if let group {
                let g: SharedGroup
                if let existing = node.wild?.groups[group] { g = existing } else {
                    g = SharedGroup(name: group, filter: plain)
                    node.wildParts().groups[group] = g
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
            let isNew = node.subscribers.update(entry)
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
            let found = forEachLevel(plain) { level in
                guard let c = node.child(level) else { return false }
                path.append((node, level))
                node = c
                return true
            }
            guard found else { return false }
            var removed = false
            if let group {
                if let w = node.wild, let g = w.groups[group], let i = g.members.firstIndex(where: { $0.session === session }) {
                    g.members.remove(at: i)
                    if g.members.isEmpty {
                        w.groups[group] = nil
                        if w.isEmpty { node.wild = nil }
                        interestObserver?(.removed(filter: plain, group: group))
                    }
                    removed = true
                }
            } else {
                removed = node.subscribers.remove(session)
                if removed && node.subscribers.isEmpty { interestObserver?(.removed(filter: plain, group: nil)) }
            }
            if removed { count -= 1 }
            // Prune empty branches.
            while let (parent, level) = path.last, node.isEmpty {
                parent.removeChild(level)
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
        switch node.subscribers.storage {
        case .none: break
        case .one(let e): add(e, out: &out, seen: &seen)
        case .many(let d): for e in d.values { add(e, out: &out, seen: &seen) }
        }
        if let w = node.wild, !w.groups.isEmpty, !groupsServedElsewhere {
            for g in w.groups.values {
                if let m = g.pick() {
                    out.append(RouteMatch(session: m.session, options: m.options,
                                          identifiers: m.identifier.map { [$0] } ?? [], group: g))
                }
            }
        }
    }

    @inline(__always)
    private func add(_ e: SubscriberEntry, out: inout [RouteMatch], seen: inout [ObjectIdentifier: Int]) {
        let key = ObjectIdentifier(e.session)
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

    private func walk(_ node: TopicNode, topic: Substring, depth: Int, isDollar: Bool,
                      out: inout [RouteMatch], seen: inout [ObjectIdentifier: Int]) {
        let wild = depth == 0 && isDollar ? nil : node.wild
        // '#' here matches this level and everything below it.
        if let hash = wild?.hash {
            collect(hash, out: &out, seen: &seen)
        }
        // Split off the next level without allocating.
        let (level, rest) = splitFirstLevel(topic)
        if let exact = node.children[level] {
            descend(exact, rest: rest, depth: depth, isDollar: isDollar, out: &out, seen: &seen)
        }
        if let plus = wild?.plus {
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
            if let hash = node.wild?.hash { collect(hash, out: &out, seen: &seen) }
        }
    }

    /// Picks another member of `group` for a message handed back by `excluding`.
    func pickShared(_ group: SharedGroup, excluding: Session?) -> SubscriberEntry? {
        lock.withReadLock { group.pick(excluding: excluding) }
    }
}
