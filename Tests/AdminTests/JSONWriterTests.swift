@testable import Admin
import Foundation
import XCTest

/// The API's JSON writer: what JSONSerialization (sortedKeys, withoutEscapingSlashes) wrote,
/// checked by parsing it back with JSONSerialization.
final class JSONWriterTests: XCTestCase {
    private func text(_ v: Any) -> String { String(decoding: JSON.encode(v), as: UTF8.self) }

    func testKeysSortedAndCompact() {
        XCTAssertEqual(text(["b": 1, "a": [true, false], "c": NSNull(), "d": "x/y"] as [String: Any]),
                       #"{"a":[true,false],"b":1,"c":null,"d":"x/y"}"#)
        XCTAssertEqual(text([[String: Any]]()), "[]")
        XCTAssertEqual(text([String: Any]()), "{}")
    }

    func testStringsAreEscapedAndRoundTrip() throws {
        let nasty = "quote \" back\\slash\nnew\tline \u{01} é € 🚗 </script>"
        let out = JSON.encode(["s": nasty])
        let back = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out)) as? [String: Any])
        XCTAssertEqual(back["s"] as? String, nasty)
        XCTAssertTrue(String(decoding: out, as: UTF8.self).contains(#"\u0001"#))
    }

    func testNumbers() {
        XCTAssertEqual(text([1, -2, 3.5, 4.0, Int64(5), UInt32(6), Double.nan] as [Any]), "[1,-2,3.5,4,5,6,null]")
        // Parsed request values (NSNumber) keep booleans apart from integers.
        let parsed = try! JSONSerialization.jsonObject(with: Data(#"{"t":true,"n":1,"d":2.5}"#.utf8)) as! [String: Any]
        XCTAssertEqual(text(parsed), #"{"d":2.5,"n":1,"t":true}"#)
    }

    func testUnknownTypesAreAnError() {
        struct Opaque {}
        XCTAssertTrue(text(["x": Opaque()]).contains("INTERNAL_ERROR"))
    }
}
