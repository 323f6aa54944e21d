import XCTest
@testable import RuleEngine

/// Operators, paths, CASE, =~, SELECT *, events, errors and the shared payload decode.
final class EvaluationTests: XCTestCase {
    let telemetry = #"{"speed":142.5,"n":3,"name":"x","pos":{"lat":48.1,"tags":["a","b","c"]},"arr":[10,20,30],"nested":"{\"k\":7}","nil":null}"#

    func testArithmetic() throws {
        XCTAssertEqual(try evaluate("1 + 2 * 3"), 7)
        XCTAssertEqual(try evaluate("7 - 10"), -3)
        XCTAssertEqual(try evaluate("7 / 2"), 3.5)
        XCTAssertEqual(try evaluate("6 / 2"), 3.0)
        XCTAssertEqual(try evaluate("7 div 2"), 3)
        XCTAssertEqual(try evaluate("-7 div 2"), -3)
        XCTAssertEqual(try evaluate("7 mod 3"), 1)
        XCTAssertEqual(try evaluate("-7 mod 3"), -1)
        XCTAssertEqual(try evaluate("1.5 * 2"), 3.0)
        XCTAssertEqual(try evaluate("payload.speed - 2.5", payload: telemetry), 140.0)
        XCTAssertEqual(try evaluate("-payload.n", payload: telemetry), -3)
        XCTAssertEqual(try evaluate("9223372036854775807 + 1"), .float(9223372036854775808.0))
    }

    func testPlusConcatenatesWhenAStringIsInvolved() throws {
        XCTAssertEqual(try evaluate("'a' + 'b'"), "ab")
        XCTAssertEqual(try evaluate("clientid + '/' + qos"), "c1/1")
    }

    func testArithmeticOnMissingFieldIsUndefined() throws {
        XCTAssertEqual(try evaluate("payload.missing * 2"), .undefined)
    }

    func testArithmeticErrors() throws {
        XCTAssertEqual(evaluationError("1 / 0")?.message, "division by zero")
        XCTAssertEqual(evaluationError("1 div 0")?.message, "division by zero")
        XCTAssertEqual(evaluationError("1 mod 0")?.message, "division by zero")
        XCTAssertEqual(evaluationError("1.5 div 1")?.message, "'DIV' needs integers, got float and integer")
        XCTAssertEqual(evaluationError("true * 2")?.message, "'*' needs numbers, got boolean and integer")
        XCTAssertEqual(evaluationError("-'x'")?.message, "'-' needs a number, got string")
    }

    func testEvaluationErrorCarriesPosition() {
        let text = "CREATE RULE r AS\nSELECT payload.a / payload.b AS q FROM \"t/#\" INTO log()"
        let rule = try! RuleParser.parse(text, file: "r.sql")
        XCTAssertThrowsError(try rule.evaluate(EvaluationContext(message(payload: #"{"a":1,"b":0}"#)))) { error in
            let e = error as! RuleError
            XCTAssertEqual(e.kind, .evaluation)
            XCTAssertEqual(e.description, "r.sql:2:18: division by zero\nSELECT payload.a / payload.b AS q FROM \"t/#\" INTO log()\n                 ^")
        }
    }

    func testFunctionErrorPointsAtCall() {
        let e = evaluationError("upper(payload.n)", payload: telemetry)!
        XCTAssertEqual(e.message, "upper: expected a string, got integer")
        XCTAssertEqual(e.column, 25)
    }

    func testComparisons() throws {
        XCTAssertEqual(try evaluate("1 = 1.0"), true)
        XCTAssertEqual(try evaluate("1 != 2"), true)
        XCTAssertEqual(try evaluate("1 <> 1"), false)
        XCTAssertEqual(try evaluate("2 < 3"), true)
        XCTAssertEqual(try evaluate("3 <= 3"), true)
        XCTAssertEqual(try evaluate("3.5 > 3"), true)
        XCTAssertEqual(try evaluate("3 >= 4"), false)
        XCTAssertEqual(try evaluate("'abc' < 'abd'"), true)
        XCTAssertEqual(try evaluate("'abc' = 'abc'"), true)
        XCTAssertEqual(try evaluate("'42' = 42"), true)
        XCTAssertEqual(try evaluate("10 > '9'"), true)
        XCTAssertEqual(try evaluate("'x' = 1"), false)
        XCTAssertEqual(try evaluate("'x' != 1"), true)
        XCTAssertEqual(try evaluate("'x' < 1"), false)
        XCTAssertEqual(try evaluate("true = true"), true)
        XCTAssertEqual(try evaluate("null = null"), true)
        XCTAssertEqual(try evaluate("[1, 2] = [1, 2]"), true)
        XCTAssertEqual(try evaluate("payload.pos = payload.pos", payload: telemetry), true)
    }

    func testComparisonsWithUndefinedAreFalse() throws {
        for op in ["=", "!=", "<", "<=", ">", ">="] {
            XCTAssertEqual(try evaluate("payload.missing \(op) 1"), false, op)
        }
    }

    func testLogic() throws {
        XCTAssertEqual(try evaluate("true and false"), false)
        XCTAssertEqual(try evaluate("true or false"), true)
        XCTAssertEqual(try evaluate("not true"), false)
        XCTAssertEqual(try evaluate("not payload.missing"), true)
        XCTAssertEqual(try evaluate("false and 1"), false, "short-circuits")
        XCTAssertEqual(try evaluate("true or 1"), true, "short-circuits")
        XCTAssertEqual(evaluationError("1 and true")?.message, "'AND' needs booleans, got integer")
        XCTAssertEqual(evaluationError("false or 'x'")?.message, "'OR' needs booleans, got string")
        XCTAssertEqual(evaluationError("not 1")?.message, "'NOT' needs booleans, got integer")
    }

    func testTopicMatch() throws {
        XCTAssertEqual(try evaluate("topic =~ 'cars/+/telemetry'", topic: "cars/7/telemetry"), true)
        XCTAssertEqual(try evaluate("topic =~ 'cars/#'", topic: "cars/7/telemetry"), true)
        XCTAssertEqual(try evaluate("topic =~ 'cars/+'", topic: "cars/7/telemetry"), false)
        XCTAssertEqual(try evaluate("topic =~ concat('cars/', '#')", topic: "cars/7"), true)
        XCTAssertEqual(try evaluate("'$SYS/x' =~ '#'"), false)
        XCTAssertEqual(evaluationError("topic =~ concat(clientid, '/#/b')")?.message, "'=~': invalid topic filter 'c1/#/b'")
    }

    func testPaths() throws {
        XCTAssertEqual(try evaluate("payload.pos.lat", payload: telemetry), 48.1)
        XCTAssertEqual(try evaluate("payload.arr[1]", payload: telemetry), 10)
        XCTAssertEqual(try evaluate("payload.arr[-1]", payload: telemetry), 30)
        XCTAssertEqual(try evaluate("payload.arr[0]", payload: telemetry), .undefined)
        XCTAssertEqual(try evaluate("payload.arr[4]", payload: telemetry), .undefined)
        XCTAssertEqual(try evaluate("payload.pos.tags[2]", payload: telemetry), "b")
        XCTAssertEqual(try evaluate("payload.arr[qos + 1]", payload: telemetry), 20)
        XCTAssertEqual(try evaluate("payload['speed']", payload: telemetry), 142.5)
        XCTAssertEqual(try evaluate("payload.nested.k", payload: telemetry), 7, "JSON inside a string is decoded")
        XCTAssertEqual(try evaluate("payload.nil", payload: telemetry), .null)
        XCTAssertEqual(try evaluate("payload.pos", payload: telemetry),
                       .map(ValueMap(["lat": 48.1, "tags": ["a", "b", "c"]])))
        XCTAssertEqual(try evaluate("payload.speed", payload: "not json"), .undefined)
        XCTAssertEqual(try evaluate("payload", payload: "raw text"), "raw text")
        XCTAssertEqual(try evaluate("[1, [2, 3]][2][1]"), 2)
        XCTAssertEqual(try evaluate("json_decode(payload).pos.lat", payload: telemetry), 48.1)
    }

    func testEscapedKeysAndUnicode() throws {
        XCTAssertEqual(try evaluate(#"payload.'a"b'"#, payload: #"{"a\"b":1}"#), 1)
        XCTAssertEqual(try evaluate("payload.s", payload: #"{"s":"caf\u00e9 \ud83d\ude97"}"#), "café 🚗")
    }

    func testCase() throws {
        XCTAssertEqual(try evaluate("CASE WHEN payload.speed > 130 THEN 'fast' WHEN payload.speed > 50 THEN 'ok' ELSE 'slow' END", payload: #"{"speed":60}"#), "ok")
        XCTAssertEqual(try evaluate("CASE WHEN payload.speed > 130 THEN 'fast' END", payload: #"{"speed":60}"#), .undefined)
        XCTAssertEqual(try evaluate("CASE qos WHEN 0 THEN 'zero' WHEN 1 THEN 'one' ELSE 'many' END"), "one")
        XCTAssertEqual(try evaluate("CASE qos WHEN 5 THEN 'five' ELSE 'other' END"), "other")
    }

    func testInputFields() throws {
        let rule = try RuleParser.parse(#"CREATE RULE r AS SELECT id, clientid, username, topic, qos, retain, flags, peerhost, timestamp, publish_received_at, pub_props.'User-Property'.region AS region, node, event FROM "t/#" INTO log()"#, file: "r.sql")
        let row = try rule.evaluate(EvaluationContext(message()))[0]
        XCTAssertEqual(row, .map(ValueMap([
            "id": "0001", "clientid": "c1", "username": "u1", "topic": "t/1", "qos": 1, "retain": false,
            "flags": .map(ValueMap(["dup": false, "retain": false])), "peerhost": "10.0.0.1",
            "timestamp": 1_700_000_000_000, "publish_received_at": 1_700_000_000_000, "region": "eu",
            "node": "turnpike@127.0.0.1", "event": "message.publish",
        ])))
    }

    func testSelectStarListsEveryFieldInOrder() throws {
        let rule = try RuleParser.parse(#"CREATE RULE r AS SELECT *, 1 AS extra FROM "t/#" INTO log()"#, file: "r.sql")
        let row = try rule.evaluate(EvaluationContext(message(payload: "hi")))[0]
        XCTAssertEqual(row.mapValue?.keys, ["id", "clientid", "username", "payload", "peerhost", "topic", "qos", "retain",
                                            "flags", "pub_props", "timestamp", "publish_received_at", "node", "event", "extra"])
        XCTAssertEqual(row["payload"], "hi")
    }

    func testUnaliasedColumnsNestAndMissingFieldsAreOmitted() throws {
        let rule = try RuleParser.parse(#"CREATE RULE r AS SELECT clientid, payload.pos.lat, payload.missing, abs(-2) FROM "t/#" INTO log()"#, file: "r.sql")
        let row = try rule.evaluate(EvaluationContext(message(payload: telemetry)))[0]
        XCTAssertEqual(row, .map(ValueMap(["clientid": "c1", "payload": .map(ValueMap(["pos": .map(ValueMap(["lat": 48.1]))])), "abs(-2)": 2])))
    }

    func testAliasOmittedWhenUndefined() throws {
        let rule = try RuleParser.parse(#"CREATE RULE r AS SELECT payload.a AS a, payload.b AS b FROM "t/#" INTO log()"#, file: "r.sql")
        XCTAssertEqual(try rule.evaluate(EvaluationContext(message(payload: #"{"a":1}"#))), [.map(ValueMap(["a": 1]))])
    }

    func testAliasReferencesEarlierAlias() throws {
        XCTAssertEqual(try RuleParser.parse(#"CREATE RULE r AS SELECT payload.speed AS s, s * 2 AS d FROM "t/#" WHERE d > 100 INTO log()"#, file: "r.sql")
            .evaluate(EvaluationContext(message(payload: #"{"speed":60}"#))), [.map(ValueMap(["s": 60, "d": 120]))])
    }

    func testWhereOnlyPassesOnTrue() throws {
        let rule = try RuleParser.parse(#"CREATE RULE r AS SELECT 1 AS one FROM "t/#" WHERE payload.flag INTO log()"#, file: "r.sql")
        XCTAssertEqual(try rule.evaluate(EvaluationContext(message(payload: #"{"flag":true}"#))).count, 1)
        XCTAssertEqual(try rule.evaluate(EvaluationContext(message(payload: #"{"flag":1}"#))).count, 0)
        XCTAssertEqual(try rule.evaluate(EvaluationContext(message(payload: #"{}"#))).count, 0)
    }

    func testPayloadIsDecodedOncePerMessageAcrossRules() throws {
        let a = try RuleParser.parse(#"CREATE RULE a AS SELECT payload.speed AS s FROM "t/#" INTO log()"#, file: "a.sql")
        let b = try RuleParser.parse(#"CREATE RULE b AS SELECT payload.pos.lat AS l FROM "t/#" WHERE payload.speed > 1 INTO log()"#, file: "b.sql")
        let c = try RuleParser.parse(#"CREATE RULE c AS SELECT clientid FROM "t/#" INTO log()"#, file: "c.sql")
        let ctx = EvaluationContext(message(payload: telemetry))
        _ = try c.evaluate(ctx)
        XCTAssertEqual(ctx.payloadDecodeCount, 0, "a rule that does not read the payload does not decode it")
        _ = try a.evaluate(ctx)
        _ = try b.evaluate(ctx)
        XCTAssertEqual(ctx.payloadDecodeCount, 1)
        ctx.reset(message(payload: telemetry))
        _ = try b.evaluate(ctx)
        XCTAssertEqual(ctx.payloadDecodeCount, 2, "a new message decodes again")
    }

    func testAcceptsRoutesByFilterAndEvent() throws {
        let rule = try RuleParser.parse(#"CREATE RULE r AS SELECT clientid FROM "cars/+/telemetry", "$events/client_connected" INTO log()"#, file: "r.sql")
        XCTAssertTrue(rule.accepts(message(topic: "cars/1/telemetry")))
        XCTAssertFalse(rule.accepts(message(topic: "cars/1/status")))
        XCTAssertTrue(rule.accepts(.clientConnected(clientid: "c", peername: "1.2.3.4:5", sockname: "0.0.0.0:1883", protoVer: 5, keepalive: 60, cleanStart: true, connectedAt: 1)))
        XCTAssertFalse(rule.accepts(.clientDisconnected(clientid: "c", reason: "normal", disconnectedAt: 1)))
        XCTAssertEqual(rule.events, [.messagePublish, .clientConnected])
    }

    func testEvents() throws {
        let connected = try RuleParser.parse(#"CREATE RULE r AS SELECT * FROM "$events/client_connected" INTO log()"#, file: "r.sql")
        let input = RuleInput.clientConnected(clientid: "c", username: "u", peername: "1.2.3.4:5", sockname: "0.0.0.0:1883",
                                              protoVer: 5, keepalive: 60, cleanStart: false, expiryInterval: 30, connectedAt: 99)
        XCTAssertEqual(try connected.evaluate(EvaluationContext(input)), [.map(ValueMap([
            "clientid": "c", "username": "u", "peername": "1.2.3.4:5", "sockname": "0.0.0.0:1883", "proto_name": "MQTT",
            "proto_ver": 5, "keepalive": 60, "clean_start": false, "expiry_interval": 30, "connected_at": 99,
            "timestamp": 99, "node": "turnpike@127.0.0.1", "event": "client.connected",
        ]))])

        let disconnected = try RuleParser.parse(#"CREATE RULE r AS SELECT clientid, reason, disconnected_at FROM "$events/client_disconnected" WHERE reason = 'kicked' INTO log()"#, file: "r.sql")
        XCTAssertEqual(try disconnected.evaluate(EvaluationContext(.clientDisconnected(clientid: "c", reason: "kicked", disconnectedAt: 5))),
                       [.map(ValueMap(["clientid": "c", "reason": "kicked", "disconnected_at": 5]))])

        let subscribed = try RuleParser.parse(#"CREATE RULE r AS SELECT topic, qos FROM "$events/session_subscribed", "$events/session_unsubscribed" INTO log()"#, file: "r.sql")
        XCTAssertEqual(try subscribed.evaluate(EvaluationContext(.session(.sessionUnsubscribed, clientid: "c", topic: "a/#", qos: 1, timestamp: 1))),
                       [.map(ValueMap(["topic": "a/#", "qos": 1]))])

        let delivered = try RuleParser.parse(#"CREATE RULE r AS SELECT from_clientid, clientid, payload.x AS x FROM "$events/message_delivered", "$events/message_acked" INTO log()"#, file: "r.sql")
        let original = message(payload: #"{"x":1}"#, clientid: "sender")
        XCTAssertEqual(try delivered.evaluate(EvaluationContext(.messageEvent(.messageAcked, message: original, clientid: "receiver", timestamp: 2))),
                       [.map(ValueMap(["from_clientid": "sender", "clientid": "receiver", "x": 1]))])

        let dropped = try RuleParser.parse(#"CREATE RULE r AS SELECT reason, topic FROM "$events/message_dropped" INTO log()"#, file: "r.sql")
        XCTAssertEqual(try dropped.evaluate(EvaluationContext(.messageEvent(.messageDropped, message: original, clientid: "", reason: "no_subscribers", timestamp: 2))),
                       [.map(ValueMap(["reason": "no_subscribers", "topic": "t/1"]))])
    }

    func testConstantsAreFoldedAtCompileTime() throws {
        let rule = try RuleParser.parse(#"CREATE RULE r AS SELECT upper('a') + 'b' AS v FROM "t" INTO log()"#, file: "r.sql")
        guard case .select(let row) = rule.projection, case .value(_, .constant(let v)) = row.columns[0] else {
            return XCTFail("not folded")
        }
        XCTAssertEqual(v, "Ab")
    }
}
