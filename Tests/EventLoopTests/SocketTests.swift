@testable import EventLoop
import Glibc
import XCTest

final class SocketTests: XCTestCase {
    /// A blocking IPv4 client connected to 127.0.0.1:`port`.
    private func connectClient(port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        XCTAssertEqual(rc, 0, "connect: errno \(errno)")
        return fd
    }

    func testListenAcceptRead() throws {
        let (lfd, port) = try Socket.listen(host: "127.0.0.1", port: 0)
        defer { Socket.close(lfd) }
        XCTAssertGreaterThan(port, 0)
        XCTAssertEqual(try Socket.localPort(lfd), port)
        XCTAssertNotEqual(fcntl(lfd, F_GETFL) & O_NONBLOCK, 0, "the listener is non-blocking")

        XCTAssertNil(try Socket.accept(lfd), "nothing is waiting")

        var client = connectClient(port: port)
        defer { if client >= 0 { close(client) } }
        let clientPort = try Socket.localPort(client)
        var accepted: (fd: Int32, peer: String)?
        XCTAssertTrue(waitUntil(timeout: 2) {
            accepted = try? Socket.accept(lfd)
            return accepted != nil
        })
        guard let (fd, peer) = accepted else { return }
        defer { Socket.close(fd) }
        XCTAssertEqual(peer, "127.0.0.1:\(clientPort)")
        XCTAssertNotEqual(fcntl(fd, F_GETFL) & O_NONBLOCK, 0, "accepted sockets are non-blocking")
        var nodelay: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &nodelay, &len)
        XCTAssertNotEqual(nodelay, 0, "TCP_NODELAY is set")
        XCTAssertNil(try Socket.accept(lfd), "only one connection was waiting")

        var buf = [UInt8](repeating: 0, count: 16)
        let r0 = try buf.withUnsafeMutableBytes { try Socket.read(fd, into: $0) }
        guard case .wouldBlock = r0 else { return XCTFail("expected .wouldBlock before the client writes") }
        XCTAssertEqual(writeBytes(client, [10, 20, 30]), 3)
        var got: [UInt8] = []
        XCTAssertTrue(waitUntil(timeout: 2) {
            if case .done(let n)? = try? buf.withUnsafeMutableBytes({ try Socket.read(fd, into: $0) }) {
                got += buf[0..<n]
            }
            return got.count >= 3
        })
        XCTAssertEqual(got, [10, 20, 30])

        // End of stream reads as .done(0).
        close(client)
        client = -1
        var sawEOF = false
        XCTAssertTrue(waitUntil(timeout: 2) {
            if case .done(0)? = try? buf.withUnsafeMutableBytes({ try Socket.read(fd, into: $0) }) { sawEOF = true }
            return sawEOF
        })
    }

    func testListenOnABusyPortThrows() throws {
        let (lfd, port) = try Socket.listen(host: "127.0.0.1", port: 0)
        defer { Socket.close(lfd) }
        XCTAssertThrowsError(try Socket.listen(host: "127.0.0.1", port: port)) { error in
            XCTAssertEqual((error as? SystemError)?.errno, EADDRINUSE)
        }
    }
}
