@testable import Broker
import MQTTCodec
import XCTest

final class TopicTreeTests: XCTestCase {
    func testOverlappingSubscriptionsMergeIntoOneDeliveryWithHighestQoS() {
        let tree = TopicTree()
        let s = Session(clientId: "car-1", owner: 0)
        tree.subscribe(session: s, filter: "cars/+/telemetry", options: SubscriptionOptions(qos: .atMostOnce), identifier: 1)
        tree.subscribe(session: s, filter: "cars/#", options: SubscriptionOptions(qos: .exactlyOnce), identifier: 2)
        var out: [RouteMatch] = []
        var seen: [ObjectIdentifier: Int] = [:]
        tree.match(topic: "cars/VIN1/telemetry", into: &out, seen: &seen)
        XCTAssertEqual(out.count, 1)
        XCTAssertEqual(out.first?.options.qos, .exactlyOnce)
        XCTAssertEqual(out.first?.identifiers.sorted(), [1, 2])
    }
}
