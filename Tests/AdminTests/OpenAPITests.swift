@testable import Admin
import Foundation
import XCTest

/// The OpenAPI document is kept by hand: every route it lists must exist in the route table
/// with the same method and path, and every route of the table must be in it.
final class OpenAPITests: XCTestCase {
    func testDocumentAndRouteTableAgree() throws {
        let doc = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(OpenAPIDocument.text.utf8)) as? [String: Any])
        XCTAssertEqual(doc["openapi"] as? String, "3.0.3")
        let paths = try XCTUnwrap(doc["paths"] as? [String: [String: Any]])
        var documented: Set<String> = []
        for (path, operations) in paths {
            for method in operations.keys { documented.insert("\(method.uppercased()) \(path)") }
        }
        let routed = Set(Router.routes.map { "\($0.method) \($0.pattern)" })
        XCTAssertEqual(documented.subtracting(routed).sorted(), [], "documented but not routed")
        XCTAssertEqual(routed.subtracting(documented).sorted(), [], "routed but not documented")
        XCTAssertEqual(Router.routes.count, routed.count, "a route is listed twice")
    }

    /// Public routes are marked `security: []` in the document, and only those.
    func testPublicRoutesAreMarked() throws {
        let doc = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(OpenAPIDocument.text.utf8)) as? [String: Any])
        let paths = try XCTUnwrap(doc["paths"] as? [String: [String: [String: Any]]])
        for r in Router.routes {
            let op = try XCTUnwrap(paths[r.pattern]?[r.method.lowercased()])
            let open = (op["security"] as? [Any])?.isEmpty == true
            XCTAssertEqual(open, r.isPublic, "\(r.method) \(r.pattern)")
        }
    }
}
