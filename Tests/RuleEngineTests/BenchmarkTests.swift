import XCTest
@testable import RuleEngine
#if canImport(Glibc)
import Glibc
#endif

/// Prints evaluations per second for the DESIGN.md rule (no assertion on timing; the numbers that
/// matter come from a release build).
final class BenchmarkTests: XCTestCase {
    func testOverspeedThroughput() throws {
        let rule = try RuleParser.parse(OverspeedRuleTests.text, file: "rules/overspeed.sql")
        func payload(_ speed: Double) -> [UInt8] {
            Array(#"{"vin":"WVWZZZ1JZXW000001","ts":1700000000123,"speed":\#(speed),"rpm":3150,"gear":6,"pos":{"lat":48.137154,"lon":11.576124,"alt":519.5,"heading":271},"fuel":0.62,"engine":{"temp":92.5,"oil":4.1,"load":0.73},"doors":[0,0,0,0],"odometer":123456,"battery":12.6,"tires":[2.4,2.4,2.3,2.4],"trip":"T-2024-0001"}"#.utf8)
        }
        let ctx = EvaluationContext(RuleInput(event: .messagePublish))
        for (label, speed) in [("reject", 88.5), ("pass", 142.25)] {
            let input = RuleInput.publish(clientid: "car-0001", topic: "cars/car-0001/telemetry", payload: payload(speed), timestamp: 1)
            let n = 20_000
            var rows = 0
            var t0 = timespec(), t1 = timespec()
            clock_gettime(CLOCK_MONOTONIC, &t0)
            for _ in 0..<n {
                ctx.reset(input)
                rows += try rule.evaluate(ctx).count
            }
            clock_gettime(CLOCK_MONOTONIC, &t1)
            let seconds = Double(t1.tv_sec - t0.tv_sec) + Double(t1.tv_nsec - t0.tv_nsec) / 1e9
            print("overspeed \(label): \(Int(Double(n) / seconds)) evaluations/s (\(rows) rows, debug build)")
            XCTAssertEqual(rows, label == "pass" ? n : 0)
        }
    }
}
