@testable import EventLoop
import XCTest

final class IPAddressTests: XCTestCase {
    func testParsesBothFamiliesIntoOneSpace() {
        XCTAssertEqual(IPAddress("10.1.2.3"), IPAddress(ipv4: 0x0A01_0203))
        XCTAssertEqual(IPAddress("::ffff:10.1.2.3"), IPAddress("10.1.2.3"), "IPv4-mapped equals plain IPv4")
        XCTAssertEqual(IPAddress("2001:db8::1"), IPAddress(high: 0x2001_0DB8_0000_0000, low: 1))
        XCTAssertEqual(IPAddress("10.1.2.3")?.description, "10.1.2.3")
        for bad in ["", "10.1.2", "10.1.2.256", "::g", "[::1]", "localhost"] {
            XCTAssertNil(IPAddress(bad), bad)
        }
    }

    func testNetworksMatchByPrefix() throws {
        let v4 = try XCTUnwrap(IPNetwork("10.0.0.0/8"))
        XCTAssertTrue(v4.contains(IPAddress("10.255.0.1")!))
        XCTAssertTrue(v4.contains(IPAddress("::ffff:10.0.0.1")!))
        XCTAssertFalse(v4.contains(IPAddress("11.0.0.1")!))
        XCTAssertEqual(v4.description, "10.0.0.0/8")

        let host = try XCTUnwrap(IPNetwork("127.0.0.2"))
        XCTAssertTrue(host.contains(IPAddress("127.0.0.2")!))
        XCTAssertFalse(host.contains(IPAddress("127.0.0.1")!))

        let odd = try XCTUnwrap(IPNetwork("192.168.1.77/26")) // host bits are ignored
        XCTAssertEqual(odd.description, "192.168.1.64/26")
        XCTAssertTrue(odd.contains(IPAddress("192.168.1.127")!))
        XCTAssertFalse(odd.contains(IPAddress("192.168.1.128")!))

        let v6 = try XCTUnwrap(IPNetwork("2001:db8::/32"))
        XCTAssertTrue(v6.contains(IPAddress("2001:db8:ffff::1")!))
        XCTAssertFalse(v6.contains(IPAddress("2001:db9::1")!))
        XCTAssertTrue(IPNetwork("::1/128")!.contains(IPAddress("::1")!))
        XCTAssertFalse(IPNetwork("::1/128")!.contains(IPAddress("::2")!))
        let wide = try XCTUnwrap(IPNetwork("2001:db8:1:2::/72"))
        XCTAssertTrue(wide.contains(IPAddress("2001:db8:1:2:00ff::1")!))
        XCTAssertFalse(wide.contains(IPAddress("2001:db8:1:2:0100::1")!))

        XCTAssertTrue(IPNetwork("0.0.0.0/0")!.contains(IPAddress("8.8.8.8")!))
        XCTAssertFalse(IPNetwork("0.0.0.0/0")!.contains(IPAddress("::1")!))
        for bad in ["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0/8", "/8"] {
            XCTAssertNil(IPNetwork(bad), bad)
        }
    }
}
