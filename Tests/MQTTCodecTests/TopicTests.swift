import XCTest
@testable import MQTTCodec

final class TopicTests: XCTestCase {
    func testValidNames() {
        let table: [(String, Bool)] = [
            ("a", true), ("a/b/c", true), ("/", true), ("/finance", true), ("a//b", true), ("$SYS/broker", true),
            ("sport/tennis/player1", true), ("ü/€/𝄞", true), (" ", true), ("$share/g/a", true),
            ("", false), ("a/+", false), ("+", false), ("#", false), ("a/#", false), ("a+b", false), ("a#", false),
            ("a\u{0}b", false), (String(repeating: "x", count: 65_535), true), (String(repeating: "x", count: 65_536), false),
        ]
        for (name, valid) in table {
            XCTAssertEqual(Topic.isValidName(name), valid, "\(name.prefix(20))")
        }
    }

    func testValidFilters() {
        let table: [(String, Bool)] = [
            ("#", true), ("+", true), ("a/#", true), ("a/+/b", true), ("+/+", true), ("/+", true), ("+/", true),
            ("sport/tennis/#", true), ("sport/+/player1", true), ("/", true), ("a//b", true), ("$SYS/#", true),
            ("//#", true), ("+/#", true), ("a/b", true), ("$share", true), ("$sharex/g/a", true),
            ("", false), ("sport/tennis#", false), ("sport/tennis/#/ranking", false), ("sport+", false),
            ("#/a", false), ("a/#/", false), ("a/b+", false), ("a/+b/c", false), ("++", false), ("##", false),
            ("+#", false), ("a\u{0}", false),
            // Shared subscriptions (5.0 §4.8.2).
            ("$share/g/a/b", true), ("$share/group/#", true), ("$share/g/+", true), ("$share/g//", true),
            ("$share//a", false), ("$share/g", false), ("$share/g/", false), ("$share/g+/a", false),
            ("$share/g#/a", false), ("$share/g/a/#/b", false), ("$share/", false),
        ]
        for (filter, valid) in table {
            XCTAssertEqual(Topic.isValidFilter(filter), valid, filter)
        }
    }

    func testParseShared() {
        func assertShared(_ filter: String, _ group: String, _ rest: String, line: UInt = #line) {
            let parsed = Topic.parseShared(filter)
            XCTAssertEqual(parsed?.group, group, filter, line: line)
            XCTAssertEqual(parsed?.filter, rest, filter, line: line)
        }
        assertShared("$share/g/a/b", "g", "a/b")
        assertShared("$share/consumers/sport/#", "consumers", "sport/#")
        assertShared("$share//a", "", "a")
        assertShared("$share/g/", "g", "")
        XCTAssertNil(Topic.parseShared("$share/g"))
        XCTAssertNil(Topic.parseShared("a/b"))
        XCTAssertNil(Topic.parseShared("$SHARE/g/a"))
        XCTAssertNil(Topic.parseShared("$share"))
        XCTAssertNil(Topic.parseShared("#"))
    }

    func testMatching() {
        let table: [(String, String, Bool)] = [
            // 5.0 §4.7.1.2 and §4.7.1.3 examples.
            ("sport/tennis/player1/#", "sport/tennis/player1", true),
            ("sport/tennis/player1/#", "sport/tennis/player1/ranking", true),
            ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true),
            ("sport/#", "sport", true),
            ("sport/tennis/#", "sport/tennis", true),
            ("sport/tennis/#", "sport/tennisx", false),
            ("sport/tennis/+", "sport/tennis/player1", true),
            ("sport/tennis/+", "sport/tennis/player2", true),
            ("sport/tennis/+", "sport/tennis/player1/ranking", false),
            ("sport/+", "sport", false),
            ("sport/+", "sport/", true),
            ("+/+", "/finance", true),
            ("/+", "/finance", true),
            ("+", "/finance", false),
            ("#", "a/b/c", true),
            ("#", "/", true),
            ("+/#", "a", true),
            ("a/b", "a/b", true),
            ("a/b", "a/b/c", false),
            ("a/b/c", "a/b", false),
            ("a/+/c", "a/b/c", true),
            ("a/+/c", "a//c", true),
            ("a/+/c", "a/b/d", false),
            ("a//b", "a//b", true),
            ("a/#", "a/", true),
            ("a/+/#", "a", false),
            ("a/+/#", "a/b", true),
            ("ü/+", "ü/€", true),
            // [MQTT-4.7.2-1]: wildcards at the start do not match '$' topics.
            ("#", "$SYS/x", false),
            ("+/monitor/Clients", "$SYS/monitor/Clients", false),
            ("+", "$SYS", false),
            ("$SYS/#", "$SYS/x", true),
            ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
            ("$SYS/#", "$SYS", true),
            ("a/#", "a/$b", true),
        ]
        for (filter, topic, expected) in table {
            XCTAssertEqual(Topic.matches(filter: filter, topic: topic), expected, "\(filter) vs \(topic)")
        }
    }
}
