@testable import Broker
import XCTest

// Run-time bans (the admin API's /api/v5/banned) as CONNECT checks them.
final class BanListTests: XCTestCase {
    func testMatchByKindAndExpiry() {
        let bans = BanList()
        XCTAssertNil(bans.match(clientId: "VIN1", username: nil, host: "10.0.0.1", now: 100))
        XCTAssertTrue(bans.add(Ban(kind: .clientid, who: "VIN1", by: "t", reason: "", at: 100, until: 200), now: 100))
        XCTAssertFalse(bans.add(Ban(kind: .clientid, who: "VIN1", by: "t", reason: "again", at: 101, until: nil), now: 101))
        XCTAssertTrue(bans.add(Ban(kind: .username, who: "fleet", by: "t", reason: "", at: 100, until: nil), now: 100))
        XCTAssertTrue(bans.add(Ban(kind: .peerhost, who: "::1", by: "t", reason: "", at: 100, until: nil), now: 100))
        XCTAssertEqual(bans.match(clientId: "VIN1", username: nil, host: "10.0.0.2", now: 150)?.kind, .clientid)
        XCTAssertNil(bans.match(clientId: "VIN1", username: nil, host: "10.0.0.2", now: 200), "ended at its until")
        XCTAssertEqual(bans.match(clientId: "x", username: "fleet", host: "10.0.0.2", now: 150)?.kind, .username)
        XCTAssertEqual(bans.match(clientId: "x", username: nil, host: "::1", now: 150)?.kind, .peerhost)
        // An ended ban can be added again; list drops ended ones.
        XCTAssertTrue(bans.add(Ban(kind: .clientid, who: "VIN1", by: "t", reason: "", at: 300, until: nil), now: 300))
        // Oldest first, then by kind and value.
        XCTAssertEqual(bans.list(now: 300).map(\.who), ["::1", "fleet", "VIN1"])
        XCTAssertTrue(bans.remove(kind: .username, who: "fleet"))
        XCTAssertFalse(bans.remove(kind: .username, who: "fleet"))
        bans.removeAll()
        XCTAssertNil(bans.match(clientId: "VIN1", username: "fleet", host: "::1", now: 300))
    }

    func testPeerHost() {
        XCTAssertEqual(peerHost("10.0.0.7:5123"), "10.0.0.7")
        XCTAssertEqual(peerHost("[::1]:5123"), "::1")
        XCTAssertEqual(peerHost("[2001:db8::1]:1"), "2001:db8::1")
        XCTAssertEqual(peerHost("nohost"), "nohost")
    }

    func testRuleMetricsSumTheLoopsSlots() {
        let m = RuleMetrics(loops: 3)
        for loop in 0..<7 { m.bump(.matched, loop: loop) }
        m.bump(.actionsFailed, loop: 2)
        XCTAssertEqual(m.value(.matched), 7)
        XCTAssertEqual(m.value(.actionsFailed), 1)
        XCTAssertEqual(m.slots.map { $0.value(.matched) }, [3, 2, 2])
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: m.snapshot)["actions.failed"], 1)
    }
}
