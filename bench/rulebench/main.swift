// Rule evaluation speed: the DESIGN.md overspeed rule on ~300-byte telemetry JSON, for a
// message WHERE rejects and one it passes, on one core (release build):
//   swift build -c release --product rulebench && .build/release/rulebench [N]
// Issue 5 aims at >= 1,000,000/s (reject) and >= 300,000/s (pass).
import RuleEngine
#if canImport(Glibc)
import Glibc
#endif

let text = """
CREATE RULE overspeed AS
SELECT clientid AS vin, payload.speed AS speed, payload.pos.lat AS lat, timestamp AS ts
FROM "cars/+/telemetry"
WHERE payload.speed > 130
INTO kafka.fleet (topic = 'alerts.overspeed', key = '${vin}'),
     postgres.warehouse (statement = 'INSERT INTO overspeed (vin, speed, lat, ts) VALUES (${vin}, ${speed}, ${lat}, ${ts})'),
     republish (topic = 'fleet/alerts/${vin}', qos = 1);
"""

func telemetry(_ speed: Double) -> [UInt8] {
    let s = "{\"vin\":\"WVWZZZ1JZXW000001\",\"ts\":1700000000123,\"speed\":\(speed),\"rpm\":3150,\"gear\":6,\"pos\":{\"lat\":48.137154,\"lon\":11.576124,\"alt\":519.5,\"heading\":271},\"fuel\":0.62,\"engine\":{\"temp\":92.5,\"oil\":4.1,\"load\":0.73},\"doors\":[0,0,0,0],\"odometer\":123456,\"battery\":12.6,\"tires\":[2.4,2.4,2.3,2.4],\"trip\":\"T-2024-0001\"}"
    return Array(s.utf8)
}

func seconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

let rule: Rule
do { rule = try RuleParser.parse(text, file: "overspeed.sql") } catch { print(error); exit(1) }
let reject = telemetry(88.5), pass = telemetry(142.25)
let n = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 1_000_000 : 1_000_000
let ctx = EvaluationContext(.publish(clientid: "car-0001", topic: "cars/car-0001/telemetry", payload: pass, timestamp: 1))
print("payload: \(pass.count) bytes; \(n) evaluations per case, best of 3")
for (label, payload) in [("reject (WHERE false)", reject), ("pass (WHERE true, row built)", pass)] {
    let input = RuleInput.publish(clientid: "car-0001", topic: "cars/car-0001/telemetry", payload: payload,
                                  timestamp: 1_700_000_000_000)
    var best = 0.0
    var rows = 0
    for _ in 0..<3 {
        let t0 = seconds()
        for i in 0..<n {
            var next = input
            next.timestamp = Int64(i)
            ctx.reset(next)
            do { rows &+= try rule.evaluate(ctx).count } catch { print(error); exit(1) }
        }
        best = max(best, Double(n) / (seconds() - t0))
    }
    print("\(label): \(Int(best)) evaluations/s (rows \(rows))")
}
