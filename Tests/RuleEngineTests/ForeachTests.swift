import XCTest
@testable import RuleEngine

/// FOREACH … [AS] [DO] [INCASE] FROM … [WHERE].
final class ForeachTests: XCTestCase {
    let readings = #"{"readings":[{"id":"a","value":5},{"id":"b","value":15},{"id":"c","value":25}]}"#

    func rows(_ text: String, payload: String) throws -> [Value] {
        try RuleParser.parse(text, file: "r.sql").evaluate(EvaluationContext(message(payload: payload)))
    }

    func testDoAndIncase() throws {
        XCTAssertEqual(try rows(#"CREATE RULE r AS FOREACH payload.readings AS r DO r.value AS v, clientid INCASE r.value > 10 FROM "t/#" INTO log()"#, payload: readings),
                       [.map(ValueMap(["v": 15, "clientid": "c1"])), .map(ValueMap(["v": 25, "clientid": "c1"]))])
    }

    func testDefaultItemName() throws {
        XCTAssertEqual(try rows(#"CREATE RULE r AS FOREACH payload.readings DO item.id AS id FROM "t/#" INTO log()"#, payload: readings),
                       [.map(ValueMap(["id": "a"])), .map(ValueMap(["id": "b"])), .map(ValueMap(["id": "c"]))])
    }

    func testWithoutDoEachRowHoldsTheItem() throws {
        XCTAssertEqual(try rows(#"CREATE RULE r AS FOREACH payload.tags FROM "t/#" INTO log()"#, payload: #"{"tags":["x","y"]}"#),
                       [.map(ValueMap(["item": "x"])), .map(ValueMap(["item": "y"]))])
        XCTAssertEqual(try rows(#"CREATE RULE r AS FOREACH payload.tags AS t FROM "t/#" INTO log()"#, payload: #"{"tags":["x"]}"#),
                       [.map(ValueMap(["t": "x"]))])
    }

    func testIncaseWithoutDo() throws {
        XCTAssertEqual(try rows(#"CREATE RULE r AS FOREACH payload.n AS n INCASE n mod 2 = 0 FROM "t/#" INTO log()"#, payload: #"{"n":[1,2,3,4]}"#),
                       [.map(ValueMap(["n": 2])), .map(ValueMap(["n": 4]))])
    }

    func testWhereFiltersBeforeIterating() throws {
        let text = #"CREATE RULE r AS FOREACH payload.readings AS r DO r.id AS id FROM "t/#" WHERE payload.on = true INTO log()"#
        XCTAssertEqual(try rows(text, payload: #"{"on":false,"readings":[{"id":1}]}"#), [])
        XCTAssertEqual(try rows(text, payload: #"{"on":true,"readings":[{"id":1}]}"#), [.map(ValueMap(["id": 1]))])
    }

    func testMissingListGivesNoRowsAndNonListIsAnError() throws {
        XCTAssertEqual(try rows(#"CREATE RULE r AS FOREACH payload.none FROM "t/#" INTO log()"#, payload: "{}"), [])
        XCTAssertThrowsError(try rows(#"CREATE RULE r AS FOREACH payload.x FROM "t/#" INTO log()"#, payload: #"{"x":3}"#)) { error in
            XCTAssertEqual((error as! RuleError).message, "FOREACH needs an array, got integer")
        }
    }

    func testExpressionListAndFunctions() throws {
        XCTAssertEqual(try rows(#"CREATE RULE r AS FOREACH split(payload.csv, ',') AS p DO upper(p) AS u FROM "t/#" INTO log()"#, payload: #"{"csv":"a,b"}"#),
                       [.map(ValueMap(["u": "A"])), .map(ValueMap(["u": "B"]))])
    }

    func testDoAliasUsableInIncase() throws {
        XCTAssertEqual(try rows(#"CREATE RULE r AS FOREACH payload.readings AS r DO r.value * 2 AS d INCASE d > 40 FROM "t/#" INTO log()"#, payload: readings),
                       [.map(ValueMap(["d": 50]))])
    }

    func testItemShadowsField() throws {
        XCTAssertEqual(try rows(#"CREATE RULE r AS FOREACH payload.t AS topic DO topic AS x FROM "t/#" INTO log()"#, payload: #"{"t":["inner"]}"#),
                       [.map(ValueMap(["x": "inner"]))])
    }
}
