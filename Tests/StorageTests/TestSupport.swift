import Foundation
@testable import Storage
import XCTest

/// A fresh directory under /tmp, removed with everything in it when the test ends.
final class TempDirectory {
    let path: String

    init(_ name: String = "store") {
        var template = Array("/tmp/turnpike-storage-test-XXXXXX".utf8CString)
        let base = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        path = base + "/" + name
    }

    deinit { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }

    /// File names and sizes, sorted (subdirectories such as lost/ included by path).
    func listing() -> [String] {
        let fm = FileManager.default
        guard let names = fm.subpaths(atPath: path) else { return [] }
        return names.sorted().map { name in
            let size = (try? fm.attributesOfItem(atPath: path + "/" + name)[.size] as? Int) ?? -1
            return "\(name) \(size)"
        }
    }

    func files(withSuffix suffix: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0.hasSuffix(suffix) }.sorted()
    }

    func size(_ name: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path + "/" + name))?[.size] as? Int) ?? -1
    }

    /// Cuts `name` to `length` bytes.
    func truncate(_ name: String, to length: Int) {
        XCTAssertEqual(Glibc.truncate(path + "/" + name, off_t(length)), 0, "truncate \(name)")
    }

    /// Writes `count` pseudo-random bytes over `name` from `offset`, keeping its size otherwise.
    func scribble(_ name: String, at offset: Int = 0, count: Int? = nil) {
        let fd = open(path + "/" + name, O_WRONLY)
        XCTAssertGreaterThanOrEqual(fd, 0, "open \(name)")
        defer { close(fd) }
        let n = count ?? max(0, size(name) - offset)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let junk = (0..<n).map { _ -> UInt8 in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        XCTAssertEqual(junk.withUnsafeBytes { pwrite(fd, $0.baseAddress, n, off_t(offset)) }, n)
    }

    func remove(_ name: String) { unlink(path + "/" + name) }
}

/// `prefix + n` as a big-endian key, and a value that says which key it belongs to.
func key(_ n: Int, prefix: [UInt8] = [0x6B]) -> [UInt8] { RecordKey.make(prefix, UInt64(n)) }
func value(_ n: Int, size: Int = 32) -> [UInt8] {
    var w = RecordWriter()
    w.u64(UInt64(n))
    w.raw([UInt8](repeating: UInt8(truncatingIfNeeded: n), count: max(0, size - 8)))
    return w.buffer
}

/// The numbers of the keys in `ks`, in iteration order.
func keyNumbers(_ store: Store, _ ks: Keyspace = .messages) throws -> [Int] {
    var out: [Int] = []
    try store.scan(ks) { k, v in
        out.append(Int(RecordKey.trailingU64(k)!))
        XCTAssertEqual(Array(v), value(out.last!), "value of key \(out.last!)")
        return true
    }
    return out
}

/// Writes keys `range` to `ks`, `perBatch` a commitNow.
func fill(_ store: Store, _ range: Range<Int>, _ ks: Keyspace = .messages, perBatch: Int = 1) throws {
    var b = StoreBatch()
    for i in range {
        b.put(ks, key: key(i), value: value(i))
        if b.count == perBatch { try store.commitNow(b); b.removeAll() }
    }
    if !b.isEmpty { try store.commitNow(b) }
}

/// Asserts `keys` is exactly `expected`, printing a summary rather than thousands of numbers.
func assertKeys(_ keys: [Int], _ expected: Range<Int>, _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    let summary = keys.isEmpty ? "none" : "\(keys.count) keys, \(keys.first!)...\(keys.last!)"
    XCTAssertTrue(keys == Array(expected), "\(summary), expected \(expected) \(message)", file: file, line: line)
}

extension TempDirectory {
    /// The largest SST: the one holding the test's records rather than a keyspace's anchor.
    func largestSST() -> String? {
        files(withSuffix: ".sst").max { size($0) < size($1) }
    }
}
