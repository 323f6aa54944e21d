import XCTest
@testable import RuleEngine

/// Builds a one-column rule around `expression` and evaluates it for a message.
func evaluate(_ expression: String, payload: String = "{}", topic: String = "t/1",
              file: StaticString = #filePath, line: UInt = #line) throws -> Value {
    let rule = try RuleParser.parse("CREATE RULE t AS SELECT \(expression) AS v FROM \"t/#\" INTO log()", file: "t.sql")
    let rows = try rule.evaluate(EvaluationContext(message(payload: payload, topic: topic)))
    XCTAssertEqual(rows.count, 1, file: file, line: line)
    return rows.first?["v"] ?? .undefined
}

/// The evaluation error `expression` raises, or nil.
func evaluationError(_ expression: String, payload: String = "{}") -> RuleError? {
    do {
        let rule = try RuleParser.parse("CREATE RULE t AS SELECT \(expression) AS v FROM \"t/#\" INTO log()", file: "t.sql")
        _ = try rule.evaluate(EvaluationContext(message(payload: payload)))
        return nil
    } catch {
        return error
    }
}

func message(payload: String = "{}", topic: String = "t/1", clientid: String = "c1") -> RuleInput {
    .publish(id: "0001", clientid: clientid, username: "u1", topic: topic, qos: 1, payload: Array(payload.utf8),
             peerhost: "10.0.0.1", timestamp: 1_700_000_000_000,
             userProperties: [(name: "region", value: "eu")])
}

/// The rule error parsing `text` raises (fails the test if it parses).
func parseError(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> RuleError? {
    do {
        _ = try RuleParser.parse(text, file: "r.sql")
        XCTFail("expected an error for: \(text)", file: file, line: line)
        return nil
    } catch {
        return error
    }
}

extension Value: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .float(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: Value...) { self = .array(elements) }
}
