@testable import Broker
import MQTTCodec
import XCTest

/// Matches `topic` and returns the matches by client id (failing on a duplicate session).
private func matches(_ tree: TopicTree, _ topic: String, file: StaticString = #filePath, line: UInt = #line) -> [String: RouteMatch] {
    var out: [RouteMatch] = []
    var seen: [ObjectIdentifier: Int] = [:]
    tree.match(topic: topic, into: &out, seen: &seen)
    XCTAssertTrue(seen.isEmpty, "the scratch index is cleared after a match", file: file, line: line)
    var byId: [String: RouteMatch] = [:]
    for m in out {
        XCTAssertNil(byId[m.session.clientId], "\(m.session.clientId) matched twice for \(topic)", file: file, line: line)
        byId[m.session.clientId] = m
    }
    return byId
}

/// The root of the tree, for checking that empty branches are pruned.
private func rootNode(_ tree: TopicTree) -> TopicNode? {
    Mirror(reflecting: tree).children.first { $0.label == "root" }?.value as? TopicNode
}

final class TopicTreeTests: XCTestCase {
    func testOverlappingSubscriptionsMergeIntoOneDeliveryWithHighestQoS() {
        let tree = TopicTree()
        let s = Session(clientId: "car-1", owner: 0)
        tree.subscribe(session: s, filter: "cars/+/telemetry", options: SubscriptionOptions(qos: .atMostOnce), identifier: 1)
        tree.subscribe(session: s, filter: "cars/#", options: SubscriptionOptions(qos: .exactlyOnce), identifier: 2)
        var out: [RouteMatch] = []
        var seen: [ObjectIdentifier: Int] = [:]
        tree.match(topic: "cars/VIN1/telemetry", into: &out, seen: &seen)
        XCTAssertEqual(out.count, 1)
        XCTAssertEqual(out.first?.options.qos, .exactlyOnce)
        XCTAssertEqual(out.first?.identifiers.sorted(), [1, 2])
    }

    // One session per filter, named after it.
    static let filters = [
        "a/b/c", "a/+/c", "a/#", "#", "+/+", "+", "/+", "a//c", "a/+/+", "+/b/#", "a/b/c/#",
        "$SYS/#", "$SYS/+", "+/monitor", "$SYS/monitor/+", "sport/tennis/+", "//",
    ]

    static let table: [(topic: String, expected: Set<String>)] = [
        ("a/b/c", ["a/b/c", "a/+/c", "a/#", "#", "a/+/+", "+/b/#", "a/b/c/#"]),
        ("a", ["a/#", "#", "+"]),                       // '#' matches its parent
        ("a/b", ["a/#", "#", "+/+", "+/b/#"]),
        ("a/b/c/d", ["a/#", "#", "+/b/#", "a/b/c/#"]),
        ("b/b", ["#", "+/+", "+/b/#"]),
        ("/a", ["#", "+/+", "/+"]),                     // a leading empty level is a level
        ("/", ["#", "+/+", "/+"]),
        ("//", ["#", "//"]),
        ("a//c", ["a/+/c", "a/#", "#", "a//c", "a/+/+"]), // '+' matches an empty level
        ("a/", ["a/#", "#", "+/+"]),
        ("x/monitor", ["#", "+/+", "+/monitor"]),
        ("sport/tennis/player1", ["#", "sport/tennis/+"]),
        ("sport/tennis/player1/ranking", ["#"]),
        ("sport/tennis", ["#", "+/+"]),
        // '$' topics: no filter starting with a wildcard matches them [MQTT-4.7.2-1].
        ("$SYS", ["$SYS/#"]),
        ("$SYS/monitor", ["$SYS/#", "$SYS/+"]),
        ("$SYS/broker/uptime", ["$SYS/#"]),
        ("$SYS/monitor/x", ["$SYS/#", "$SYS/monitor/+"]),
        ("$other/b", []),
        ("A/B/C", ["#"]), // levels are case-sensitive
    ]

    func testMatchingTable() {
        let tree = TopicTree()
        var sessions: [String: Session] = [:]
        for f in Self.filters {
            let s = Session(clientId: f, owner: 0)
            sessions[f] = s
            XCTAssertTrue(tree.subscribe(session: s, filter: f, options: SubscriptionOptions(qos: .atLeastOnce), identifier: nil))
        }
        XCTAssertEqual(tree.count, Self.filters.count)
        for (topic, expected) in Self.table {
            let got = matches(tree, topic)
            XCTAssertEqual(Set(got.keys), expected, "topic \(topic)")
            for m in got.values {
                XCTAssertNil(m.group)
                XCTAssertEqual(m.options.qos, .atLeastOnce)
                XCTAssertTrue(m.identifiers.isEmpty)
            }
            // The tree agrees with the codec's single-filter matcher.
            let oracle = Set(Self.filters.filter { Topic.matches(filter: $0, topic: topic) })
            XCTAssertEqual(Set(got.keys), oracle, "tree and Topic.matches disagree on \(topic)")
        }
    }

    func testOverlapMergeRules() {
        let tree = TopicTree()
        let s = Session(clientId: "s", owner: 0)
        let other = Session(clientId: "other", owner: 1)
        tree.subscribe(session: s, filter: "a/+", options: SubscriptionOptions(qos: .atMostOnce, noLocal: true), identifier: 1)
        tree.subscribe(session: s, filter: "a/#", options: SubscriptionOptions(qos: .atLeastOnce, noLocal: false), identifier: nil)
        tree.subscribe(session: s, filter: "+/b", options: SubscriptionOptions(qos: .exactlyOnce, noLocal: true, retainAsPublished: true), identifier: 3)
        tree.subscribe(session: other, filter: "a/b", options: SubscriptionOptions(qos: .atMostOnce), identifier: 9)

        var got = matches(tree, "a/b")
        XCTAssertEqual(got.count, 2)
        let m = got["s"]
        XCTAssertEqual(m?.options.qos, .exactlyOnce, "highest QoS of the overlapping subscriptions")
        XCTAssertEqual(m?.options.noLocal, false, "noLocal only when every overlapping subscription has it")
        XCTAssertEqual(m?.options.retainAsPublished, true)
        XCTAssertEqual(m?.identifiers.sorted(), [1, 3])
        XCTAssertEqual(got["other"]?.identifiers, [9])

        // On "z/b" only "+/b" (noLocal) matches.
        got = matches(tree, "z/b")
        XCTAssertEqual(got["s"]?.options.noLocal, true)
        XCTAssertEqual(got["s"]?.identifiers, [3])

        // Every overlapping subscription has noLocal: the merge keeps it.
        tree.subscribe(session: s, filter: "a/#", options: SubscriptionOptions(qos: .atLeastOnce, noLocal: true), identifier: 2)
        got = matches(tree, "a/b")
        XCTAssertEqual(got["s"]?.options.noLocal, true)
        XCTAssertEqual(got["s"]?.identifiers.sorted(), [1, 2, 3])
        XCTAssertEqual(tree.count, 4, "re-subscribing replaces, it does not add")

        // Matches append to `out`; the scratch index does not leak between calls.
        var out: [RouteMatch] = []
        var seen: [ObjectIdentifier: Int] = [:]
        tree.match(topic: "a/b", into: &out, seen: &seen)
        tree.match(topic: "a/b", into: &out, seen: &seen)
        XCTAssertEqual(out.count, 4)
    }

    func testUnsubscribeRemovesAndPrunes() {
        let tree = TopicTree()
        let s = Session(clientId: "s", owner: 0)
        let t = Session(clientId: "t", owner: 0)
        let opts = SubscriptionOptions(qos: .atLeastOnce)
        XCTAssertTrue(tree.subscribe(session: s, filter: "a/b/c", options: opts, identifier: nil))
        XCTAssertFalse(tree.subscribe(session: s, filter: "a/b/c", options: opts, identifier: 5), "replaced")
        XCTAssertTrue(tree.subscribe(session: s, filter: "a/b", options: opts, identifier: nil))
        XCTAssertTrue(tree.subscribe(session: t, filter: "a/b/c", options: opts, identifier: nil))
        XCTAssertTrue(tree.subscribe(session: s, filter: "x/#", options: opts, identifier: nil))
        XCTAssertTrue(tree.subscribe(session: s, filter: "$share/g/a/b/c", options: opts, identifier: nil))
        XCTAssertEqual(tree.count, 5)

        // Not subscribed / no such filter / no such group.
        XCTAssertFalse(tree.unsubscribe(session: s, filter: "a/b/c/d"))
        XCTAssertFalse(tree.unsubscribe(session: s, filter: "nope"))
        XCTAssertFalse(tree.unsubscribe(session: s, filter: "a"), "an interior node without a subscription")
        XCTAssertFalse(tree.unsubscribe(session: t, filter: "a/b"))
        XCTAssertFalse(tree.unsubscribe(session: s, filter: "$share/other/a/b/c"))
        XCTAssertFalse(tree.unsubscribe(session: t, filter: "$share/g/a/b/c"))
        XCTAssertEqual(tree.count, 5)

        XCTAssertTrue(tree.unsubscribe(session: s, filter: "a/b/c"))
        XCTAssertFalse(tree.unsubscribe(session: s, filter: "a/b/c"), "already gone")
        XCTAssertEqual(tree.count, 4)
        XCTAssertEqual(Set(matches(tree, "a/b/c").keys), ["t", "s"], "t's plain and s's shared subscription remain")
        XCTAssertNotNil(matches(tree, "a/b/c")["s"]?.group, "s now only matches through its group")

        XCTAssertTrue(tree.unsubscribe(session: s, filter: "$share/g/a/b/c"))
        XCTAssertTrue(tree.unsubscribe(session: t, filter: "a/b/c"))
        XCTAssertTrue(matches(tree, "a/b/c").isEmpty)
        XCTAssertEqual(Set(matches(tree, "a/b").keys), ["s"])
        // "c" under "a/b" is pruned, "a/b" stays.
        let ab = rootNode(tree)?.children["a"]?.children["b"]
        XCTAssertNotNil(ab)
        XCTAssertEqual(ab?.children.isEmpty, true, "the empty branch a/b/c must be pruned")

        XCTAssertTrue(tree.unsubscribe(session: s, filter: "a/b"))
        XCTAssertTrue(tree.unsubscribe(session: s, filter: "x/#"))
        XCTAssertEqual(tree.count, 0)
        XCTAssertEqual(rootNode(tree)?.children.isEmpty, true, "every empty branch must be pruned")
        XCTAssertTrue(matches(tree, "x/y").isEmpty)
    }

    func testCountBookkeeping() {
        let tree = TopicTree()
        let a = Session(clientId: "a", owner: 0), b = Session(clientId: "b", owner: 0)
        let o = SubscriptionOptions()
        tree.subscribe(session: a, filter: "t/1", options: o, identifier: nil)
        tree.subscribe(session: b, filter: "t/1", options: o, identifier: nil)
        tree.subscribe(session: a, filter: "t/1", options: o, identifier: 2) // replace
        tree.subscribe(session: a, filter: "$share/g/t/1", options: o, identifier: nil)
        XCTAssertFalse(tree.subscribe(session: a, filter: "$share/g/t/1", options: o, identifier: 3)) // replace
        tree.subscribe(session: a, filter: "$share/h/t/1", options: o, identifier: nil)
        XCTAssertEqual(tree.count, 4)
        tree.unsubscribe(session: a, filter: "$share/g/t/1")
        tree.unsubscribe(session: a, filter: "$share/g/t/1")
        tree.unsubscribe(session: b, filter: "t/2")
        XCTAssertEqual(tree.count, 3)
        tree.unsubscribe(session: a, filter: "t/1")
        tree.unsubscribe(session: b, filter: "t/1")
        tree.unsubscribe(session: a, filter: "$share/h/t/1")
        XCTAssertEqual(tree.count, 0)
    }

    // MARK: Shared subscriptions

    private func sharedTree(_ names: [String], filter: String = "$share/g/x/+") -> (TopicTree, [Session]) {
        let tree = TopicTree()
        let sessions = names.map { Session(clientId: $0, owner: 0) }
        for s in sessions {
            XCTAssertTrue(tree.subscribe(session: s, filter: filter, options: SubscriptionOptions(qos: .atLeastOnce), identifier: nil))
        }
        return (tree, sessions)
    }

    private func pickCounts(_ tree: TopicTree, topic: String, times: Int) -> [String: Int] {
        var counts: [String: Int] = [:]
        for _ in 0..<times {
            let got = matches(tree, topic)
            XCTAssertEqual(got.count, 1, "one member of the group per message")
            for (id, m) in got {
                XCTAssertEqual(m.group?.name, "g")
                XCTAssertEqual(m.group?.filter, "x/+")
                counts[id, default: 0] += 1
            }
        }
        return counts
    }

    func testSharedGroupRoundRobinOverConnectedMembers() {
        let (tree, sessions) = sharedTree(["m1", "m2", "m3"])
        sessions.forEach { $0.setConnected(true) }
        XCTAssertEqual(tree.count, 3)
        XCTAssertEqual(pickCounts(tree, topic: "x/1", times: 30), ["m1": 10, "m2": 10, "m3": 10])
        XCTAssertTrue(matches(tree, "y/1").isEmpty)
        XCTAssertTrue(matches(tree, "x/1/2").isEmpty)
    }

    func testSharedGroupSkipsDisconnectedMembers() {
        let (tree, sessions) = sharedTree(["m1", "m2", "m3"])
        sessions[1].setConnected(true)
        XCTAssertEqual(pickCounts(tree, topic: "x/1", times: 30), ["m2": 30])
        sessions[2].setConnected(true)
        XCTAssertEqual(Set(pickCounts(tree, topic: "x/1", times: 30).keys), ["m2", "m3"])
        // Nobody connected: a member is still chosen (its session queues the message).
        sessions.forEach { $0.setConnected(false) }
        let counts = pickCounts(tree, topic: "x/1", times: 30)
        XCTAssertEqual(counts.values.reduce(0, +), 30)
    }

    func testTwoGroupsOnTheSameFilterEachGetAMatch() {
        let tree = TopicTree()
        let g1 = [Session(clientId: "g1a", owner: 0), Session(clientId: "g1b", owner: 0)]
        let g2 = [Session(clientId: "g2a", owner: 0)]
        let plain = Session(clientId: "plain", owner: 0)
        for s in g1 { tree.subscribe(session: s, filter: "$share/one/x/+", options: SubscriptionOptions(), identifier: nil) }
        for s in g2 { tree.subscribe(session: s, filter: "$share/two/x/+", options: SubscriptionOptions(), identifier: nil) }
        tree.subscribe(session: plain, filter: "x/+", options: SubscriptionOptions(), identifier: nil)
        (g1 + g2 + [plain]).forEach { $0.setConnected(true) }
        for _ in 0..<10 {
            var out: [RouteMatch] = []
            var seen: [ObjectIdentifier: Int] = [:]
            tree.match(topic: "x/7", into: &out, seen: &seen)
            XCTAssertEqual(out.count, 3)
            XCTAssertEqual(Set(out.compactMap { $0.group?.name }), ["one", "two"])
            XCTAssertEqual(out.filter { $0.group == nil }.map(\.session.clientId), ["plain"])
            let one = out.first { $0.group?.name == "one" }
            XCTAssertTrue(["g1a", "g1b"].contains(one?.session.clientId ?? ""))
        }
    }

    func testPickSharedNeverReturnsTheExcludedSession() {
        let (tree, sessions) = sharedTree(["m1", "m2", "m3"])
        sessions.forEach { $0.setConnected(true) }
        guard let group = matches(tree, "x/1").values.first?.group else { return XCTFail("no group") }
        var picked: [String: Int] = [:]
        for _ in 0..<60 {
            guard let e = tree.pickShared(group, excluding: sessions[0]) else { return XCTFail("no member picked") }
            XCTAssertFalse(e.session === sessions[0])
            picked[e.session.clientId, default: 0] += 1
        }
        XCTAssertEqual(Set(picked.keys), ["m2", "m3"])

        // The excluded one is the only connected member: a disconnected one is the fallback.
        sessions[1].setConnected(false)
        sessions[2].setConnected(false)
        for _ in 0..<10 {
            let e = tree.pickShared(group, excluding: sessions[0])
            XCTAssertNotNil(e)
            XCTAssertFalse(e?.session === sessions[0])
        }

        // The excluded one is the only member: nobody.
        let (solo, only) = sharedTree(["alone"])
        guard let g = matches(solo, "x/1").values.first?.group else { return XCTFail("no group") }
        XCTAssertNil(solo.pickShared(g, excluding: only[0]))
    }
}

final class RuleIndexTests: XCTestCase {
    /// Overlapping FROM filters of one rule run it once; results come in rule order; '$' topics
    /// need an explicit '$' filter.
    func testEachMatchingRuleOnceInRuleOrder() {
        let index = RuleIndex(filters: [["cars/#"], ["cars/+/telemetry", "cars/VIN1/#", "#"], ["trucks/#"], ["$events/client_connected"]])
        var out: [Int] = []
        index.match("cars/VIN1/telemetry", into: &out)
        XCTAssertEqual(out, [0, 1])
        out.removeAll()
        index.match("cars", into: &out)
        XCTAssertEqual(out, [0, 1], "'cars/#' matches its parent and '#' matches everything")
        out.removeAll()
        index.match("$events/client_connected", into: &out)
        XCTAssertEqual(out, [3], "'#' does not match '$' topics")
        XCTAssertEqual(splitFirstLevel("/x").level, "")
        XCTAssertEqual(splitFirstLevel("a").rest, nil)
    }
}

/// One child and one subscriber inline in a node, a dictionary from the second.
final class TopicNodeStorageTests: XCTestCase {

    func testNodesGoFromOneToManyAndBackWithoutLosingAnything() {
        let tree = TopicTree()
        let sessions = (0..<4).map { Session(clientId: "c\($0)", owner: 0) }
        let o = SubscriptionOptions(qos: .atLeastOnce)
        // Siblings under one parent: one child inline, then a dictionary, then back to one.
        for (i, s) in sessions.enumerated() { XCTAssertTrue(tree.subscribe(session: s, filter: "cars/VIN-\(i)-0123456789/cmd", options: o, identifier: nil)) }
        // Several subscribers on one node, wildcards beside exact levels.
        for s in sessions { XCTAssertTrue(tree.subscribe(session: s, filter: "cars/+/telemetry", options: o, identifier: nil)) }
        XCTAssertTrue(tree.subscribe(session: sessions[0], filter: "cars/#", options: o, identifier: 7))
        XCTAssertFalse(tree.subscribe(session: sessions[0], filter: "cars/#", options: SubscriptionOptions(qos: .exactlyOnce), identifier: 8), "replaced")
        XCTAssertEqual(tree.count, 9)
        for i in 0..<4 {
            XCTAssertEqual(Set(matches(tree, "cars/VIN-\(i)-0123456789/cmd").keys), i == 0 ? ["c0"] : ["c\(i)", "c0"])
        }
        XCTAssertEqual(Set(matches(tree, "cars/x/telemetry").keys), ["c0", "c1", "c2", "c3"])
        XCTAssertEqual(matches(tree, "cars/x/telemetry")["c0"]?.identifiers, [8])
        XCTAssertEqual(matches(tree, "cars/x/telemetry")["c0"]?.options.qos, .exactlyOnce)

        // Down to one sibling and one subscriber again, then to none.
        for i in 1..<4 {
            XCTAssertTrue(tree.unsubscribe(session: sessions[i], filter: "cars/VIN-\(i)-0123456789/cmd"))
            XCTAssertTrue(tree.unsubscribe(session: sessions[i], filter: "cars/+/telemetry"))
        }
        XCTAssertFalse(tree.unsubscribe(session: sessions[1], filter: "cars/+/telemetry"), "already gone")
        XCTAssertEqual(Set(matches(tree, "cars/VIN-0-0123456789/cmd").keys), ["c0"])
        XCTAssertTrue(matches(tree, "cars/VIN-1-0123456789/cmd").keys.elementsEqual(["c0"]), "only through cars/#")
        XCTAssertEqual(Set(matches(tree, "cars/y/telemetry").keys), ["c0"])
        XCTAssertTrue(tree.unsubscribe(session: sessions[0], filter: "cars/#"))
        XCTAssertTrue(tree.unsubscribe(session: sessions[0], filter: "cars/+/telemetry"))
        XCTAssertTrue(tree.unsubscribe(session: sessions[0], filter: "cars/VIN-0-0123456789/cmd"))
        XCTAssertEqual(tree.count, 0)
        XCTAssertEqual(rootNode(tree)?.isEmpty, true, "every branch pruned, wildcard ones included")
    }

    func testFilterLevelsAreSplitOnEverySlash() {
        for f in ["a", "", "/", "a//b", "/a", "a/", "+/#", "cars/VIN1/cmd", "é/ü"] {
            var levels: [Substring] = []
            forEachLevel(f) { levels.append($0); return true }
            XCTAssertEqual(levels, f.split(separator: "/", omittingEmptySubsequences: false), f)
        }
        var visited = 0
        XCTAssertFalse(forEachLevel("a/b/c") { _ in visited += 1; return visited < 2 })
        XCTAssertEqual(visited, 2, "stops when the body says so")
    }

    func testInterestListsWildcardAndExactFilters() {
        let tree = TopicTree()
        let s = Session(clientId: "s", owner: 0)
        for f in ["a/b", "a/+", "a/#", "$share/g/a/+", "x"] {
            tree.subscribe(session: s, filter: f, options: SubscriptionOptions(), identifier: nil)
        }
        let interest = tree.observeInterest { _ in }
        XCTAssertEqual(Set(interest.map { "\($0)" }).count, 5)
        XCTAssertTrue(interest.contains(.added(filter: "a/+", group: "g")))
        XCTAssertTrue(interest.contains(.added(filter: "a/#", group: nil)))
        XCTAssertNotNil(tree.sharedGroup(filter: "a/+", name: "g"))
        XCTAssertNil(tree.sharedGroup(filter: "a/b", name: "g"))
    }
}
