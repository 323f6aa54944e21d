@testable import Admin
import XCTest

/// The dashboard page is compiled in and served at `/` without credentials; it loads nothing
/// from anywhere else (no CDN, no fonts) and reads the routes it names.
final class DashboardTests: XCTestCase {
    func testRootIsThePublicDashboard() throws {
        guard case .found(let route, _) = Router.match(method: "GET", segments: []) else { return XCTFail("no route for /") }
        XCTAssertEqual(route.id, .dashboard)
        XCTAssertTrue(route.isPublic)
        XCTAssertEqual(Dashboard.response.status, 200)
        XCTAssertEqual(Dashboard.response.contentType, "text/html; charset=utf-8")
    }

    func testThePageIsSelfContained() throws {
        let html = try XCTUnwrap(String(validating: Dashboard.response.body, as: UTF8.self))
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        for outside in ["http://", "https://", "src=\"//", "@import", "<script src", "<link rel=\"stylesheet\""] {
            XCTAssertFalse(html.contains(outside), "the page refers to something outside itself: \(outside)")
        }
        // Broker text only ever goes in as textContent.
        XCTAssertFalse(html.contains("innerHTML"))
        let routes = Set(Router.routes.map(\.pattern))
        for path in ["/api/v5/stats", "/api/v5/metrics", "/api/v5/clients", "/api/v5/rules", "/api/v5/bridges",
                     "/api/v5/dead_letters", "/api/v5/nodes"] {
            XCTAssertTrue(html.contains("\"\(path)") || html.contains("`\(path)"), "the page does not read \(path)")
            XCTAssertTrue(routes.contains(path), path)
        }
    }

    func testTheHeadersKeepThePageToItself() {
        let csp = Dashboard.response.headers.first { $0.name == "Content-Security-Policy" }?.value ?? ""
        XCTAssertTrue(csp.contains("default-src 'none'"))
        XCTAssertTrue(csp.contains("connect-src 'self'"))
        XCTAssertTrue(csp.contains("frame-ancestors 'none'"))
    }
}
