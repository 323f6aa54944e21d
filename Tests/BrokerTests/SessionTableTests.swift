@testable import Broker
import XCTest

final class SessionTableTests: XCTestCase {
    /// Random inserts, replacements and removals agree with a Dictionary at every step
    /// (backward-shift deletion must keep every probe sequence whole).
    func testAgreesWithADictionaryThroughRandomChanges() {
        var table = SessionTable()
        var model: [String: Session] = [:]
        var rng = SystemRandomNumberGenerator()
        let ids = (0..<500).map { "car-\($0)" }
        for step in 0..<20_000 {
            let id = ids.randomElement(using: &rng)!
            if Int.random(in: 0..<3, using: &rng) == 0 {
                table[id] = nil
                model[id] = nil
            } else {
                let s = Session(clientId: id, owner: 0)
                table[id] = s
                model[id] = s
            }
            XCTAssertEqual(table.count, model.count)
            if step % 500 == 0 {
                for id in ids { XCTAssertTrue(table[id] === model[id], "\(id) at step \(step)") }
                XCTAssertEqual(Set(table.map(\.key)), Set(model.keys))
                XCTAssertEqual(table.values.count, model.count)
            }
        }
        for id in ids { table[id] = nil }
        XCTAssertEqual(table.count, 0)
        XCTAssertNil(table["car-1"])
    }
}
