import Glibc
import XCTest

/// A connected non-blocking AF_UNIX stream pair.
func makeSocketPair(file: StaticString = #filePath, line: UInt = #line) -> (Int32, Int32) {
    var fds: [Int32] = [-1, -1]
    let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
    let rc = socketpair(AF_UNIX, type, 0, &fds)
    XCTAssertEqual(rc, 0, "socketpair: errno \(errno)", file: file, line: line)
    return (fds[0], fds[1])
}

/// Reads everything currently available from a non-blocking fd. Returns false at end of stream.
@discardableResult
func readAvailable(_ fd: Int32, into out: inout [UInt8]) -> Bool {
    var buf = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n > 0 { out.append(contentsOf: buf[0..<n]); continue }
        if n == 0 { return false }
        if errno == EINTR { continue }
        return true // EAGAIN
    }
}

/// Deterministic pseudo-random bytes, so reordered or duplicated chunks are detected.
struct ByteSource {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next(_ n: Int) -> [UInt8] {
        (0..<n).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
    }
}

/// Polls `condition` until it holds or `timeout` passes.
func waitUntil(timeout: Double = 5, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while !condition() {
        if Date() > deadline { return false }
        usleep(1_000)
    }
    return true
}

/// A lock-protected value shared between a test thread and a loop thread.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) -> R) -> R {
        lock.lock(); defer { lock.unlock() }
        return body(&value)
    }
    var get: Value { withLock { $0 } }
}

/// Writes `bytes` (typed, so a literal is not taken as [Int]) and returns write's result.
func writeBytes(_ fd: Int32, _ bytes: [UInt8]) -> Int {
    bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
}
