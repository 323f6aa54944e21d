import XCTest
@testable import RuleEngine

/// `${…}` templates in action arguments.
final class TemplateTests: XCTestCase {
    let row: Value = .map(ValueMap([
        "vin": "V1", "speed": 142.5, "n": 3, "ok": true, "nil": .null,
        "pos": .map(ValueMap(["lat": 48.1])), "tags": ["a", "b"],
        "payload": #"{"x":{"y":5}}"#,
    ]))

    func render(_ text: String) throws -> String { try Template(parsing: text).render(row) }

    func testLiteralOnly() throws {
        XCTAssertEqual(try render("plain $ text {}"), "plain $ text {}")
        XCTAssertTrue(try Template(parsing: "abc").isConstant)
        XCTAssertFalse(try Template(parsing: "a${b}").isConstant)
    }

    func testFieldsAndTypes() throws {
        XCTAssertEqual(try render("fleet/${vin}/${n}"), "fleet/V1/3")
        XCTAssertEqual(try render("${speed} ${ok} ${nil}"), "142.5 true null")
        XCTAssertEqual(try render("${ vin }"), "V1")
    }

    func testNestedFieldsAndJSONInStrings() throws {
        XCTAssertEqual(try render("${pos.lat}"), "48.1")
        XCTAssertEqual(try render("${payload.x.y}"), "5")
        XCTAssertEqual(try render("${pos}"), #"{"lat":48.1}"#)
        XCTAssertEqual(try render("${tags}"), #"["a","b"]"#)
    }

    func testWholeRow() throws {
        XCTAssertEqual(try render("${.}"), #"{"vin":"V1","speed":142.5,"n":3,"ok":true,"nil":null,"pos":{"lat":48.1},"tags":["a","b"],"payload":"{\"x\":{\"y\":5}}"}"#)
    }

    func testMissingFieldRendersUndefined() throws {
        XCTAssertEqual(try render("a/${nope}/${pos.nope}"), "a/undefined/undefined")
    }

    func testTypedValueAndPlaceholders() throws {
        XCTAssertEqual(try Template(parsing: "${n}").value(row), 3)
        XCTAssertEqual(try Template(parsing: "${nope}").value(row), .undefined)
        XCTAssertEqual(try Template(parsing: "n=${n}").value(row), "n=3")
        XCTAssertEqual(try Template(parsing: "(${vin}, ${speed}, ${nope})").placeholderValues(row), ["V1", 142.5, .undefined])
        XCTAssertEqual(try Template(parsing: "${vin}-${.}").segments.count, 3)
    }

    func testRenderBytesKeepsBinary() throws {
        let r: Value = .map(ValueMap(["b": .binary([0xff, 0x00])]))
        XCTAssertEqual(try Template(parsing: "${b}").renderBytes(r), [0xff, 0x00])
        XCTAssertEqual(try Template(parsing: "x${.}").renderBytes(.map(ValueMap(["a": 1]))), Array(#"x{"a":1}"#.utf8))
    }

    func testMalformed() {
        XCTAssertThrowsError(try Template(parsing: "a ${b"))
        XCTAssertThrowsError(try Template(parsing: "${}"))
        XCTAssertThrowsError(try Template(parsing: "${a..b}"))
    }

    func testActionDefaults() throws {
        let rule = try RuleParser.parse(#"CREATE RULE r AS SELECT clientid AS c FROM "t/#" INTO republish(topic = 'out/${c}'), log()"#, file: "r.sql")
        let republish = rule.actions[0]
        XCTAssertEqual(republish.argumentNames, ["topic", "payload", "qos", "retain"])
        let row = try rule.evaluate(EvaluationContext(message()))[0]
        XCTAssertEqual(republish[argument: "payload"]?.render(row), #"{"c":"c1"}"#)
        XCTAssertEqual(republish[argument: "qos"]?.text, "0")
        XCTAssertEqual(rule.actions[1].target, .log)
        XCTAssertEqual(rule.actions[1][argument: "level"]?.text, "info")
    }
}
