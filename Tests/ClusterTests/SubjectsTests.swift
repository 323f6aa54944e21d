import XCTest
@testable import Cluster

final class SubjectsTests: XCTestCase {
    func testTopicsMapToTokensAndBack() {
        let cases: [(String, String)] = [
            ("cars/VIN1/telemetry", "tp.m.cars.VIN1.telemetry"),
            ("a.b/c*d/e>f", "tp.m.a%2Eb.c%2Ad.e%3Ef"),
            ("with space/tab\there", "tp.m.with%20space.tab%09here"),
            ("/leading", "tp.m.%.leading"),
            ("trailing/", "tp.m.trailing.%"),
            ("a//b", "tp.m.a.%.b"),
            ("/", "tp.m.%.%"),
            ("100%/ok", "tp.m.100%25.ok"),
            ("voiture/été", "tp.m.voiture.%C3%A9t%C3%A9"),
            ("$dlq/bridges/x", "tp.d.$dlq.bridges.x"),
            ("*", "tp.m.%2A"),
            (">", "tp.m.%3E"),
        ]
        for (topic, subject) in cases {
            XCTAssertEqual(Subjects.subject(forTopic: topic, prefix: "tp"), subject, topic)
            XCTAssertEqual(Subjects.topic(fromSubject: subject, prefix: "tp"), topic, subject)
        }
    }

    func testSysNeverLeavesTheNode() {
        XCTAssertNil(Subjects.subject(forTopic: "$SYS/broker/uptime", prefix: "tp"))
        XCTAssertEqual(Subjects.subjects(forFilter: "$SYS/#", prefix: "tp"), [])
        XCTAssertNil(Subjects.topic(fromSubject: "tp.d.$SYS.broker", prefix: "tp"))
    }

    func testFilters() {
        XCTAssertEqual(Subjects.subjects(forFilter: "cars/+/telemetry", prefix: "tp"), ["tp.m.cars.*.telemetry"])
        XCTAssertEqual(Subjects.subjects(forFilter: "cars/#", prefix: "tp"), ["tp.m.cars.>", "tp.m.cars"])
        XCTAssertEqual(Subjects.subjects(forFilter: "#", prefix: "tp"), ["tp.m.>"])
        XCTAssertEqual(Subjects.subjects(forFilter: "+", prefix: "tp"), ["tp.m.*"])
        XCTAssertEqual(Subjects.subjects(forFilter: "+/#", prefix: "tp"), ["tp.m.*.>", "tp.m.*"])
        XCTAssertEqual(Subjects.subjects(forFilter: "$dlq/#", prefix: "tp"), ["tp.d.$dlq.>", "tp.d.$dlq"])
        XCTAssertEqual(Subjects.subjects(forFilter: "a//+", prefix: "tp"), ["tp.m.a.%.*"])
        XCTAssertEqual(Subjects.subjects(forFilter: "a.b/#", prefix: "tp"), ["tp.m.a%2Eb.>", "tp.m.a%2Eb"])
    }

    /// What NATS matching says for the mapped filter and topic is what MQTT matching says.
    func testNATSMatchingIsMQTTMatching() {
        let topics = ["a", "a/b", "a/b/c", "/a", "a/", "a//b", "$x/a", "b/a", "a.b/c", "a/*", "a/%"]
        let filters = ["a", "a/#", "#", "+", "+/+", "a/+", "+/#", "a/+/c", "$x/#", "/+", "a//+", "a.b/+", "a/*", "a/%"]
        for t in topics {
            let subject = Subjects.subject(forTopic: t, prefix: "tp")!
            for f in filters {
                let nats = Subjects.subjects(forFilter: f, prefix: "tp").contains { natsMatches($0, subject) }
                XCTAssertEqual(nats, mqttMatches(f, t), "filter \(f) topic \(t)")
            }
        }
    }

    func testSubjectsThatNoTopicMakesAreRefused() {
        for s in ["tp.m", "tp.x.a", "tp.m.a%2", "tp.m.a%zz", "tp.m.%41", "tp.m.a..b", "tp.m.a%2B", "tp.m.%23",
                  "tp.d.a", "tp.m.$a", "other.m.a", "tp.m.%00", "tp.m.%FF"] {
            XCTAssertNil(Subjects.topic(fromSubject: s, prefix: "tp"), s)
        }
    }

    func testHeaderValuesRoundTrip() {
        for s in ["", "plain", "a=b", "100%", "line\nbreak\r", " spaced ", "été", "\u{1}"] {
            XCTAssertEqual(Envelope.unescape(Envelope.escape(s)), s)
            XCTAssertFalse(Envelope.escape(s).utf8.contains { $0 <= 0x20 || $0 >= 0x7F || $0 == UInt8(ascii: "=") })
        }
        XCTAssertNil(Envelope.unescape("%G0"))
        XCTAssertNil(Envelope.unescape("a b"))
        XCTAssertEqual(Envelope.unhex(Envelope.hex([0, 1, 0xFE, 0xFF])), [0, 1, 0xFE, 0xFF])
        XCTAssertNil(Envelope.unhex("ABC"))
    }

    // NATS: `*` one token, `>` one or more tokens at the end.
    private func natsMatches(_ pattern: String, _ subject: String) -> Bool {
        let p = pattern.split(separator: ".", omittingEmptySubsequences: false)
        let s = subject.split(separator: ".", omittingEmptySubsequences: false)
        for (i, t) in p.enumerated() {
            if t == ">" { return s.count > i }
            guard i < s.count else { return false }
            if t != "*" && t != s[i] { return false }
        }
        return p.count == s.count
    }

    private func mqttMatches(_ filter: String, _ topic: String) -> Bool {
        let f = filter.split(separator: "/", omittingEmptySubsequences: false)
        let t = topic.split(separator: "/", omittingEmptySubsequences: false)
        if topic.hasPrefix("$") && (f[0] == "+" || f[0] == "#") { return false }
        for (i, l) in f.enumerated() {
            if l == "#" { return t.count >= i }
            guard i < t.count else { return false }
            if l != "+" && l != t[i] { return false }
        }
        return f.count == t.count
    }
}
