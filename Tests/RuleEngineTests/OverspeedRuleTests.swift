import XCTest
@testable import RuleEngine

/// The DESIGN.md example rule end to end.
final class OverspeedRuleTests: XCTestCase {
    static let text = """
    -- Cars over 130 km/h: to Kafka (keyed by car) and PostgreSQL.
    CREATE RULE overspeed AS
    SELECT clientid AS vin, payload.speed AS speed, payload.pos.lat AS lat, timestamp AS ts
    FROM "cars/+/telemetry"
    WHERE payload.speed > 130
    INTO kafka.fleet (topic = 'alerts.overspeed', key = '${vin}'),
         postgres.warehouse (statement = 'INSERT INTO overspeed (vin, speed, lat, ts) VALUES (${vin}, ${speed}, ${lat}, ${ts})'),
         republish (topic = 'fleet/alerts/${vin}', qos = 1);
    """

    func input(speed: Double) -> RuleInput {
        .publish(clientid: "car-7", topic: "cars/car-7/telemetry",
                 payload: Array("{\"speed\":\(speed),\"pos\":{\"lat\":48.1,\"lon\":11.5}}".utf8), timestamp: 1700)
    }

    func testParsesNameFiltersAndActions() throws {
        let rule = try RuleParser.parse(Self.text, file: "rules/overspeed.sql")
        XCTAssertEqual(rule.name, "overspeed")
        XCTAssertEqual(rule.filters, ["cars/+/telemetry"])
        XCTAssertEqual(rule.events, [.messagePublish])
        XCTAssertEqual(rule.actions.map(\.target), [.bridge(kind: "kafka", name: "fleet"),
                                                    .bridge(kind: "postgres", name: "warehouse"), .republish])
        XCTAssertTrue(rule.accepts(input(speed: 1)))
        XCTAssertFalse(rule.accepts(.publish(clientid: "x", topic: "cars/x/status", payload: [], timestamp: 0)))
    }

    func testPassingMessageProducesRowAndRendersActions() throws {
        let rule = try RuleParser.parse(Self.text, file: "rules/overspeed.sql")
        let rows = try rule.evaluate(EvaluationContext(input(speed: 142.5)))
        XCTAssertEqual(rows, [.map(ValueMap(["vin": .string("car-7"), "speed": .float(142.5), "lat": .float(48.1), "ts": .int(1700)]))])
        XCTAssertEqual(rule.actions[0][argument: "key"]?.render(rows[0]), "car-7")
        XCTAssertEqual(rule.actions[1][argument: "statement"]?.render(rows[0]),
                       "INSERT INTO overspeed (vin, speed, lat, ts) VALUES (car-7, 142.5, 48.1, 1700)")
        XCTAssertEqual(rule.actions[2][argument: "topic"]?.render(rows[0]), "fleet/alerts/car-7")
        XCTAssertEqual(rule.actions[2][argument: "qos"]?.render(rows[0]), "1")
        XCTAssertEqual(rule.actions[2][argument: "payload"]?.render(rows[0]),
                       #"{"vin":"car-7","speed":142.5,"lat":48.1,"ts":1700}"#)
    }

    func testRejectedMessageProducesNoRow() throws {
        let rule = try RuleParser.parse(Self.text, file: "rules/overspeed.sql")
        XCTAssertEqual(try rule.evaluate(EvaluationContext(input(speed: 88))), [])
    }
}
