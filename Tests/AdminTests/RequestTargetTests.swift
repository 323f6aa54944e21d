@testable import Admin
import XCTest

// The admin listener's own parsing: path segments, percent-decoding, query parameters, paging
// and the route table (libmicrohttpd parses the HTTP itself).

final class RequestTargetTests: XCTestCase {
    func testSegmentsAreDecodedAfterSplitting() throws {
        let t = try RequestTarget(rawPath: "/api/v5/clients/car%2F42/subscriptions", rawQuery: [])
        XCTAssertEqual(t.segments, ["api", "v5", "clients", "car/42", "subscriptions"])
    }

    func testEmptySegmentsAreDropped() throws {
        XCTAssertEqual(try RequestTarget(rawPath: "//api/v5//stats/", rawQuery: []).segments, ["api", "v5", "stats"])
        XCTAssertEqual(try RequestTarget(rawPath: "/", rawQuery: []).segments, [])
    }

    func testPlusIsASpaceInQueriesOnly() throws {
        let t = try RequestTarget(rawPath: "/a+b", rawQuery: [("like_clientid", "car+1%2B2"), ("flag", nil)])
        XCTAssertEqual(t.segments, ["a+b"])
        XCTAssertEqual(t.query, ["like_clientid": "car 1+2", "flag": ""])
    }

    func testUTF8Escapes() throws {
        XCTAssertEqual(try RequestTarget.decode(Array("%C3%A9t%C3%A9".utf8), plusIsSpace: false), "été")
        XCTAssertEqual(try RequestTarget.decode(Array("%c3%a9".utf8), plusIsSpace: false), "é")
    }

    func testBadEscapesAreRefused() {
        for bad in ["%", "%2", "%zz", "a%g0", "%C3"] {
            XCTAssertThrowsError(try RequestTarget.decode(Array(bad.utf8), plusIsSpace: false), bad)
        }
        XCTAssertThrowsError(try RequestTarget(rawPath: "/api/%FF", rawQuery: [])) { e in
            XCTAssertEqual(e as? RequestTarget.Failure, .notUTF8("/api/%FF".split(separator: "/").map(String.init)[1]))
        }
    }

    func testDuplicateParametersAreRefused() {
        XCTAssertThrowsError(try RequestTarget(rawPath: "/", rawQuery: [("page", "1"), ("pag%65", "2")])) { e in
            XCTAssertEqual(e as? RequestTarget.Failure, .duplicateParameter("page"))
        }
    }

    func testPaging() {
        XCTAssertEqual(try Paging.parse([:]).get(), Paging(page: 1, limit: 100))
        XCTAssertEqual(try Paging.parse(["page": "3", "limit": "7"]).get(), Paging(page: 3, limit: 7))
        for bad in [["page": "0"], ["page": "x"], ["limit": "0"], ["limit": "10001"], ["limit": "-1"], ["page": "1.5"]] {
            guard case .failure = Paging.parse(bad) else { return XCTFail("\(bad) accepted") }
        }
        let items = Array(1...25)
        let (page2, meta2) = Paging(page: 2, limit: 10).apply(items)
        XCTAssertEqual(Array(page2), Array(11...20))
        XCTAssertEqual(meta2["hasnext"] as? Bool, true)
        XCTAssertEqual(meta2["count"] as? Int, 25)
        let (page3, meta3) = Paging(page: 3, limit: 10).apply(items)
        XCTAssertEqual(Array(page3), Array(21...25))
        XCTAssertEqual(meta3["hasnext"] as? Bool, false)
        XCTAssertTrue(Paging(page: 9, limit: 10).apply(items).items.isEmpty)
        // A page far past the end must not overflow.
        XCTAssertTrue(Paging(page: Int.max, limit: 10_000).apply(items).items.isEmpty)
    }

    func testRouting() {
        guard case .found(let r, let p) = Router.match(method: "GET", segments: ["api", "v5", "clients", "car/1"]) else {
            return XCTFail("no route")
        }
        XCTAssertEqual(r.id, .client)
        XCTAssertEqual(p, ["clientid": "car/1"])
        guard case .found(let d, _) = Router.match(method: "DELETE", segments: ["api", "v5", "banned"]) else { return XCTFail() }
        XCTAssertEqual(d.id, .clearBans)
        guard case .found(let b, let bp) = Router.match(method: "DELETE", segments: ["api", "v5", "banned", "clientid", "x"]) else {
            return XCTFail()
        }
        XCTAssertEqual(b.id, .deleteBan)
        XCTAssertEqual(bp, ["as": "clientid", "who": "x"])
        guard case .methodNotAllowed(let allowed) = Router.match(method: "POST", segments: ["api", "v5", "clients"]) else {
            return XCTFail()
        }
        XCTAssertEqual(allowed, ["GET"])
        guard case .notFound = Router.match(method: "GET", segments: ["api", "v5", "nothing"]) else { return XCTFail() }
        guard case .found(let h, _) = Router.match(method: "HEAD", segments: ["metrics"]) else { return XCTFail() }
        XCTAssertEqual(h.id, .metrics)
    }

    func testPrometheusEscaping() {
        XCTAssertEqual(PrometheusText.escapeLabel(#"a"b\c"# + "\n"), #"a\"b\\c\n"#)
        var p = PrometheusText()
        p.family("turnpike_x_total", .counter, "Line one\nline two")
        p.sample("turnpike_x_total", [("rule", "r\"1")], 3)
        XCTAssertEqual(p.text, "# HELP turnpike_x_total Line one\\nline two\n# TYPE turnpike_x_total counter\nturnpike_x_total{rule=\"r\\\"1\"} 3\n")
    }

    func testRFC3339() {
        XCTAssertEqual(AdminAPI.rfc3339(milliseconds: 0), "1970-01-01T00:00:00.000+00:00")
        XCTAssertEqual(AdminAPI.rfc3339(milliseconds: 1_796_333_782_123), "2026-12-03T21:36:22.123+00:00")
    }
}

/// The clients list sorts only the first page*limit entries it answers.
final class FirstInOrderTests: XCTestCase {
    func testSameAsSortingThenTaking() {
        var g = SystemRandomNumberGenerator()
        for count in [0, 1, 5, 50, 1000] {
            let all = (0..<count).map { _ in Int.random(in: 0..<300, using: &g) }
            for n in [1, 3, 10, 100, 400, 2000] {
                let want = Array(all.sorted().prefix(n))
                XCTAssertEqual(Array(AdminAPI.firstInOrder(all, n, by: <).prefix(n)), want, "count \(count), n \(n)")
                XCTAssertEqual(Array(AdminAPI.firstInOrder(all, n, by: >).prefix(n)), Array(all.sorted(by: >).prefix(n)))
            }
        }
        XCTAssertEqual(AdminAPI.firstInOrder(Array((0..<1000).reversed()), 3, by: <), [0, 1, 2])
    }

    func testPagingWithAPartialList() {
        let p = Paging(page: 2, limit: 3)
        let (items, meta) = p.apply([1, 2, 3, 4, 5, 6], count: 40)
        XCTAssertEqual(Array(items), [4, 5, 6])
        XCTAssertEqual(meta["count"] as? Int, 40)
        XCTAssertEqual(meta["hasnext"] as? Bool, true)
    }
}
