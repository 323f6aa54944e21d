import XCTest
@testable import RuleEngine

/// Every construct of the grammar, printed back (round trip) and re-parsed.
final class ParserTests: XCTestCase {
    func printed(_ text: String) throws -> String {
        try RuleParser.parseStatement(text, file: "r.sql").description
    }

    /// parse → print → parse → print gives the same text.
    func assertRoundTrip(_ text: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let once = try printed(text)
        XCTAssertEqual(once, expected, file: file, line: line)
        XCTAssertEqual(try printed(once), once, file: file, line: line)
        XCTAssertNoThrow(try RuleParser.parse(text, file: "r.sql"), file: file, line: line)
    }

    func testSelectStarAndMinimalRule() throws {
        try assertRoundTrip(#"CREATE RULE r AS SELECT * FROM "t/#" INTO log()"#,
                            #"CREATE RULE r AS SELECT * FROM "t/#" INTO log();"#)
    }

    func testKeywordsAreCaseInsensitive() throws {
        try assertRoundTrip(#"create Rule r as select * from "a" where true And not false into republish(topic='x')"#,
                            #"CREATE RULE r AS SELECT * FROM "a" WHERE (true AND (NOT false)) INTO republish(topic = 'x');"#)
    }

    func testCommentsAreSkipped() throws {
        let text = """
        -- leading comment
        CREATE RULE r /* inline */ AS
        SELECT clientid -- trailing
        /* multi
           line */ FROM "a"
        INTO log();  -- after
        """
        try assertRoundTrip(text, #"CREATE RULE r AS SELECT clientid FROM "a" INTO log();"#)
    }

    func testColumnsAliasesAndPaths() throws {
        try assertRoundTrip(#"CREATE RULE r AS SELECT clientid AS vin, payload.a.b, payload.arr[1], payload.arr[-1] AS last, payload.'User-Property'.x FROM "a" INTO log()"#,
                            #"CREATE RULE r AS SELECT clientid AS vin, payload.a.b, payload.arr[1], payload.arr[-1] AS last, payload.'User-Property'.x FROM "a" INTO log();"#)
    }

    func testKeywordAfterDotIsAFieldName() throws {
        try assertRoundTrip(#"CREATE RULE r AS SELECT payload.from AS f FROM "a" INTO log()"#,
                            #"CREATE RULE r AS SELECT payload.'from' AS f FROM "a" INTO log();"#)
    }

    func testPrecedenceTable() throws {
        try assertRoundTrip(#"CREATE RULE r AS SELECT 1 + 2 * 3 - 4 / 2 AS a, 7 div 2 mod 3 AS b FROM "a" WHERE a > 1 or b < 2 and not a = 3 INTO log()"#,
                            #"CREATE RULE r AS SELECT ((1 + (2 * 3)) - (4 / 2)) AS a, ((7 DIV 2) MOD 3) AS b FROM "a" WHERE ((a > 1) OR ((b < 2) AND (NOT (a = 3)))) INTO log();"#)
    }

    func testParenthesesOverridePrecedence() throws {
        try assertRoundTrip(#"CREATE RULE r AS SELECT (1 + 2) * 3 AS a FROM "a" INTO log()"#,
                            #"CREATE RULE r AS SELECT ((1 + 2) * 3) AS a FROM "a" INTO log();"#)
    }

    func testAllComparisonOperators() throws {
        try assertRoundTrip(#"CREATE RULE r AS SELECT * FROM "a" WHERE qos = 1 and qos != 2 and qos <> 3 and qos < 4 and qos <= 5 and qos > -1 and qos >= 0 and topic =~ 'a/+' INTO log()"#,
                            #"CREATE RULE r AS SELECT * FROM "a" WHERE ((((((((qos = 1) AND (qos != 2)) AND (qos != 3)) AND (qos < 4)) AND (qos <= 5)) AND (qos > -1)) AND (qos >= 0)) AND (topic =~ 'a/+')) INTO log();"#)
    }

    func testUnaryMinusOnExpression() throws {
        try assertRoundTrip(#"CREATE RULE r AS SELECT -qos AS n, - 2.5 AS f FROM "a" INTO log()"#,
                            #"CREATE RULE r AS SELECT (-qos) AS n, -2.5 AS f FROM "a" INTO log();"#)
    }

    func testLiterals() throws {
        try assertRoundTrip(#"CREATE RULE r AS SELECT 'it''s', 'a\'b\n', "dq", 42, 1.5e3, true, FALSE, null, [1, 'x', [2]], [] FROM "a" INTO log()"#,
                            #"CREATE RULE r AS SELECT 'it\'s', 'a\'b\n', 'dq', 42, 1500.0, true, false, null, [1, 'x', [2]], [] FROM "a" INTO log();"#)
    }

    func testFunctionCalls() throws {
        try assertRoundTrip(#"CREATE RULE r AS SELECT abs(-1) AS a, concat(clientid, '/', str(qos)) AS b, now_timestamp() AS c FROM "a" INTO log()"#,
                            #"CREATE RULE r AS SELECT abs(-1) AS a, concat(clientid, '/', str(qos)) AS b, now_timestamp() AS c FROM "a" INTO log();"#)
    }

    func testSearchedAndSimpleCase() throws {
        try assertRoundTrip(#"CREATE RULE r AS SELECT CASE WHEN qos = 0 THEN 'zero' WHEN qos = 1 THEN 'one' ELSE 'two' END AS a, case qos when 1 then 'x' end AS b FROM "a" INTO log()"#,
                            #"CREATE RULE r AS SELECT CASE WHEN (qos = 0) THEN 'zero' WHEN (qos = 1) THEN 'one' ELSE 'two' END AS a, CASE qos WHEN 1 THEN 'x' END AS b FROM "a" INTO log();"#)
    }

    func testForeachWithAllClauses() throws {
        try assertRoundTrip(#"CREATE RULE r AS FOREACH payload.readings AS x DO x.value AS v, clientid INCASE x.value > 10 FROM "t/#" WHERE qos = 1 INTO log()"#,
                            #"CREATE RULE r AS FOREACH payload.readings AS x DO x.value AS v, clientid INCASE (x.value > 10) FROM "t/#" WHERE (qos = 1) INTO log();"#)
    }

    func testForeachBare() throws {
        try assertRoundTrip(#"CREATE RULE r AS FOREACH payload.list FROM "t/#" INTO log()"#,
                            #"CREATE RULE r AS FOREACH payload.list FROM "t/#" INTO log();"#)
    }

    func testSeveralSourcesAndActions() throws {
        try assertRoundTrip(#"CREATE RULE r AS SELECT * FROM "a/#", "$events/client_connected" INTO kafka.fleet(topic = 't', key = '${clientid}'), postgres.wh(statement = 'x'), webhook.crm(), republish(topic = 'b', qos = 2, retain = true), log(level = 'debug');"#,
                            #"CREATE RULE r AS SELECT * FROM "a/#", "$events/client_connected" INTO kafka.fleet(topic = 't', key = '${clientid}'), postgres.wh(statement = 'x'), webhook.crm(), republish(topic = 'b', qos = 2, retain = true), log(level = 'debug');"#)
    }

    func testDynamicIndex() throws {
        try assertRoundTrip(#"CREATE RULE r AS SELECT payload.arr[qos + 1] AS a, payload['key'] AS b FROM "a" INTO log()"#,
                            #"CREATE RULE r AS SELECT payload.arr[(qos + 1)] AS a, payload['key'] AS b FROM "a" INTO log();"#)
    }

    func testAliasesUsableInWhere() throws {
        let rule = try RuleParser.parse(#"CREATE RULE r AS SELECT payload.speed AS s FROM "a" WHERE s > 10 INTO log()"#, file: "r.sql")
        XCTAssertEqual(try rule.evaluate(EvaluationContext(message(payload: #"{"speed":11}"#, topic: "a"))).count, 1)
        XCTAssertEqual(try rule.evaluate(EvaluationContext(message(payload: #"{"speed":9}"#, topic: "a"))).count, 0)
    }

    func testCRLFLineEndings() throws {
        let text = "CREATE RULE r AS\r\nSELECT *\r\nFROM \"a\"\r\nINTO log()"
        try assertRoundTrip(text, #"CREATE RULE r AS SELECT * FROM "a" INTO log();"#)
    }

    func testDeepButReasonableNestingParses() throws {
        let expr = String(repeating: "(", count: 50) + "1" + String(repeating: ")", count: 50)
        XCTAssertEqual(try evaluate(expr), .int(1))
    }
}
