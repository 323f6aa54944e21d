import XCTest
@testable import RuleEngine

/// Rules that must be rejected, each with the exact position and message reported.
final class MalformedRuleTests: XCTestCase {
    func assertError(_ text: String, _ line: Int, _ column: Int, _ message: String, _ kind: RuleError.Kind = .syntax,
                     file: StaticString = #filePath, testLine: UInt = #line) {
        guard let error = parseError(text, file: file, line: testLine) else { return }
        XCTAssertEqual("\(error.line):\(error.column)", "\(line):\(column)", "\(error)", file: file, line: testLine)
        XCTAssertEqual(error.message, message, file: file, line: testLine)
        XCTAssertEqual(error.kind, kind, file: file, line: testLine)
        XCTAssertEqual(error.file, "r.sql", file: file, line: testLine)
    }

    func testDescriptionHasFileLineColumnSourceLineAndCaret() {
        let error = parseError("CREATE RULE r AS\nSELECT foo(1) FROM \"a\" INTO log()")!
        XCTAssertEqual(error.description, """
        r.sql:2:8: unknown function 'foo'
        SELECT foo(1) FROM "a" INTO log()
               ^
        """)
    }

    func testCaretKeepsTabs() {
        let error = parseError("CREATE RULE r AS\n\tSELECT\t* FROM a INTO log()")!
        XCTAssertEqual(error.description, "r.sql:2:16: expected a topic filter in double quotes, found identifier 'a'\n\tSELECT\t* FROM a INTO log()\n\t      \t       ^")
    }

    func testEmptyFile() { assertError("", 1, 1, "expected 'CREATE', found end of file") }
    func testOnlyComments() { assertError("-- nothing\n/* here */\n", 3, 1, "expected 'CREATE', found end of file") }
    func testMissingRuleKeyword() { assertError("CREATE r AS SELECT * FROM \"a\" INTO log()", 1, 8, "expected 'RULE', found identifier 'r'") }
    func testMissingRuleName() { assertError("CREATE RULE AS SELECT * FROM \"a\" INTO log()", 1, 13, "expected a rule name, found 'AS'") }
    func testMissingAs() { assertError("CREATE RULE r SELECT * FROM \"a\" INTO log()", 1, 15, "expected 'AS', found 'SELECT'") }
    func testMissingSelect() { assertError("CREATE RULE r AS * FROM \"a\" INTO log()", 1, 18, "expected 'SELECT' or 'FOREACH', found '*'") }
    func testMissingFrom() { assertError("CREATE RULE r AS SELECT * \"a\" INTO log()", 1, 27, "expected 'FROM', found quoted string") }
    func testSingleQuotedTopic() { assertError("CREATE RULE r AS SELECT * FROM 'a' INTO log()", 1, 32, "expected a topic filter in double quotes, found string") }
    func testMissingInto() { assertError("CREATE RULE r AS SELECT * FROM \"a\"", 1, 35, "expected 'INTO', found end of file") }
    func testTrailingComma() { assertError("CREATE RULE r AS SELECT a, FROM \"a\" INTO log()", 1, 28, "expected an expression, found 'FROM'") }
    func testUnclosedParen() { assertError("CREATE RULE r AS SELECT (1 + 2 FROM \"a\" INTO log()", 1, 32, "expected ')', found 'FROM'") }
    func testUnterminatedString() { assertError("CREATE RULE r AS SELECT 'abc FROM \"a\" INTO log()", 1, 25, "unterminated string") }
    func testUnterminatedComment() { assertError("CREATE RULE r AS\n  /* never closed\nSELECT", 2, 3, "unterminated comment") }
    func testUnknownCharacter() { assertError("CREATE RULE r AS SELECT a # b FROM \"a\" INTO log()", 1, 27, "unexpected character '#'") }
    func testBangWithoutEquals() { assertError("CREATE RULE r AS SELECT * FROM \"a\" WHERE !qos INTO log()", 1, 42, "unexpected character '!' (did you mean '!='?)") }
    func testBadEscape() { assertError("CREATE RULE r AS SELECT 'a\\qb' FROM \"a\" INTO log()", 1, 27, "unknown escape '\\q' in string") }
    func testLetterAfterNumber() { assertError("CREATE RULE r AS SELECT 12ab FROM \"a\" INTO log()", 1, 27, "invalid number: letter 'a' after digits") }
    func testIntegerTooLarge() { assertError("CREATE RULE r AS SELECT 99999999999999999999 FROM \"a\" INTO log()", 1, 25, "integer '99999999999999999999' is too large") }
    func testCaseWithoutWhen() { assertError("CREATE RULE r AS SELECT CASE qos ELSE 1 END FROM \"a\" INTO log()", 1, 34, "expected 'WHEN', found 'ELSE'") }
    func testCaseWithoutEnd() { assertError("CREATE RULE r AS SELECT CASE WHEN true THEN 1 FROM \"a\" INTO log()", 1, 47, "expected 'WHEN', 'ELSE' or 'END', found 'FROM'") }
    func testMissingAliasName() { assertError("CREATE RULE r AS SELECT qos AS FROM \"a\" INTO log()", 1, 32, "expected an alias name, found 'FROM'") }
    func testDotWithoutField() { assertError("CREATE RULE r AS SELECT payload.[1] FROM \"a\" INTO log()", 1, 33, "expected a field name after '.', found '['") }
    func testUnclosedBracket() { assertError("CREATE RULE r AS SELECT payload.a[1 FROM \"a\" INTO log()", 1, 37, "expected ']', found 'FROM'") }
    func testStarInDo() { assertError("CREATE RULE r AS FOREACH payload.a DO * FROM \"a\" INTO log()", 1, 39, "'*' is only allowed in SELECT") }
    func testActionArgumentNotLiteral() { assertError("CREATE RULE r AS SELECT * FROM \"a\" INTO republish(topic = clientid)", 1, 59, "expected a string, number or boolean, found identifier 'clientid'") }
    func testActionMissingParens() { assertError("CREATE RULE r AS SELECT * FROM \"a\" INTO log", 1, 44, "expected '(', found end of file") }
    func testGarbageAfterRule() { assertError("CREATE RULE r AS SELECT * FROM \"a\" INTO log(); SELECT", 1, 48, "expected ',' or the end of the rule, found 'SELECT'") }
    func testHostileNesting() {
        let deep = String(repeating: "(", count: 500) + "1" + String(repeating: ")", count: 500)
        assertError("CREATE RULE r AS SELECT \(deep) FROM \"a\" INTO log()", 1, 125, "expression nested too deeply (more than 100 levels)")
    }

    // Semantic errors: the rule parses but names something that does not exist.
    func testUnknownFunction() { assertError("CREATE RULE r AS\nSELECT lowr(clientid) FROM \"a\" INTO log()", 2, 8, "unknown function 'lowr'", .semantic) }
    func testWrongArity() { assertError("CREATE RULE r AS SELECT abs(1, 2) FROM \"a\" INTO log()", 1, 25, "abs takes 1 argument, got 2", .semantic) }
    func testUnknownField() { assertError("CREATE RULE r AS SELECT *\nFROM \"a\"\nWHERE speed > 1 INTO log()", 3, 7, "unknown field 'speed'", .semantic) }
    func testUnknownFieldSource() { assertError("CREATE RULE r AS SELECT pyload.speed FROM \"a\" INTO log()", 1, 25, "unknown field 'pyload'", .semantic) }
    func testFieldNotOfferedByEvent() {
        assertError("CREATE RULE r AS SELECT payload FROM \"$events/client_connected\" INTO log()", 1, 25,
                    "field 'payload' is not available from \"$events/client_connected\"", .semantic)
    }
    func testUnknownEvent() {
        assertError("CREATE RULE r AS SELECT * FROM \"a\", \"$events/nope\" INTO log()", 1, 37,
                    "unknown event topic '$events/nope' (known: $events/client_connected, $events/client_disconnected, $events/session_subscribed, $events/session_unsubscribed, $events/message_delivered, $events/message_acked, $events/message_dropped)", .semantic)
    }
    func testInvalidTopicFilter() { assertError("CREATE RULE r AS SELECT * FROM \"a/#/b\" INTO log()", 1, 32, "invalid topic filter 'a/#/b'", .semantic) }
    func testInvalidMatchFilter() { assertError("CREATE RULE r AS SELECT * FROM \"a\" WHERE topic =~ 'a/b#' INTO log()", 1, 51, "'=~' needs a valid topic filter on its right", .semantic) }
    func testInvalidRegexLiteral() { assertError("CREATE RULE r AS SELECT regex_match(clientid, '(') FROM \"a\" INTO log()", 1, 25, "regex_match: invalid regular expression '('", .semantic) }
    func testUnknownAction() { assertError("CREATE RULE r AS SELECT * FROM \"a\" INTO\n  mqtt(topic = 'x')", 2, 3, "unknown action 'mqtt' (expected republish, log, kafka.NAME, postgres.NAME or webhook.NAME)", .semantic) }
    func testBridgeWithoutName() { assertError("CREATE RULE r AS SELECT * FROM \"a\" INTO kafka(topic = 'x')", 1, 41, "bridge action 'kafka' needs a bridge name: kafka.NAME(…)", .semantic) }
    func testRepublishWithoutTopic() { assertError("CREATE RULE r AS SELECT * FROM \"a\" INTO republish(qos = 1)", 1, 41, "republish needs a topic argument", .semantic) }
    func testRepublishBadQos() { assertError("CREATE RULE r AS SELECT * FROM \"a\" INTO republish(topic = 'x', qos = 3)", 1, 70, "qos must be 0, 1 or 2", .semantic) }
    func testRepublishWildcardTopic() { assertError("CREATE RULE r AS SELECT * FROM \"a\" INTO republish(topic = 'x/#')", 1, 59, "republish topic must be a topic name without wildcards", .semantic) }
    func testUnknownRepublishArgument() { assertError("CREATE RULE r AS SELECT * FROM \"a\" INTO republish(topic = 'x', qso = 1)", 1, 64, "unknown argument 'qso' for republish (expected payload, qos, retain, topic, user_properties)", .semantic) }
    func testBadLogLevel() { assertError("CREATE RULE r AS SELECT * FROM \"a\" INTO log(level = 'loud')", 1, 53, "unknown log level 'loud' (expected alert, critical, debug, emergency, error, info, notice, warning)", .semantic) }
    func testUnterminatedTemplate() { assertError("CREATE RULE r AS SELECT * FROM \"a\" INTO kafka.k(key = 'id-${vin')", 1, 59, "unterminated '${' in template", .semantic) }
    func testEmptyTemplatePlaceholder() { assertError("CREATE RULE r AS SELECT * FROM \"a\" INTO kafka.k(key = '${}')", 1, 56, "empty '${}' in template", .semantic) }
    func testDuplicateArgument() { assertError("CREATE RULE r AS SELECT * FROM \"a\" INTO kafka.k(key = 'a', key = 'b')", 1, 60, "duplicate argument 'key'", .semantic) }
    func testForeachItemNotVisibleInWhere() { assertError("CREATE RULE r AS FOREACH payload.a AS x FROM \"t\" WHERE x > 1 INTO log()", 1, 56, "unknown field 'x'", .semantic) }
}
