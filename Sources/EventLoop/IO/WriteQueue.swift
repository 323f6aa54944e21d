import CSystemShims

/// Outbound bytes for one stream socket: small packets are appended to a shared tail buffer;
/// a large payload is queued as its own chunk (the shared message's array, not a copy), and
/// everything leaves in one `writev`. Memory is allocated only while output is pending.
public struct WriteQueue {
    /// Payloads at least this large are queued by reference instead of copied.
    public static let largePayload = 4096
    private var chunks: [[UInt8]] = []
    /// Bytes of `chunks[0]` already written.
    private var headOffset = 0
    public private(set) var pendingBytes = 0

    public init() {}

    public var isEmpty: Bool { pendingBytes == 0 }

    /// Appends bytes produced by `body` to the tail chunk.
    public mutating func append(_ body: (inout [UInt8]) -> Void) {
        if chunks.isEmpty || chunks[chunks.count - 1].count >= 64 * 1024 || (chunks.count == 1 && headOffset > 0) {
            var fresh: [UInt8] = []
            fresh.reserveCapacity(256)
            chunks.append(fresh)
        }
        let i = chunks.count - 1
        let before = chunks[i].count
        body(&chunks[i])
        pendingBytes += chunks[i].count - before
    }

    /// Queues `bytes` as a chunk of its own without copying them.
    public mutating func appendChunk(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        chunks.append(bytes)
        pendingBytes += bytes.count
    }

    public enum FlushResult { case flushed, wouldBlock, failed(SystemError) }

    /// Writes as much as the socket takes.
    public mutating func flush(to fd: Int32) -> FlushResult {
        while pendingBytes > 0 {
            let n = min(chunks.count, 64)
            var written = 0
            var err: SystemError?
            withIOVecs(count: n) { iov in
                do throws(SystemError) {
                    let r = try syscall("writev") { writev(fd, iov.baseAddress, Int32(n)) }
                    if case .done(let w) = r { written = w } else { written = -1 }
                } catch { err = error }
            }
            if let err { return .failed(err) }
            if written < 0 { return .wouldBlock }
            consume(written)
        }
        return .flushed
    }

    /// Writes chunk by chunk through `write` (a TLS stream), which returns the bytes it took or
    /// nil when it must wait (or failed: the caller keeps that state). Returns true when all is out.
    public mutating func flush(through write: (UnsafeRawBufferPointer) -> Int?) -> Bool {
        while pendingBytes > 0 {
            let skip = headOffset
            let taken: Int? = chunks[0].withUnsafeBytes { raw in
                let rest = UnsafeRawBufferPointer(rebasing: raw[skip...])
                return rest.isEmpty ? 0 : write(rest)
            }
            guard let n = taken else { return false }
            if n == 0 && chunks[0].count - skip > 0 { return false }
            if n == 0 {
                chunks.removeFirst()
                headOffset = 0
                continue
            }
            consume(n)
        }
        return true
    }

    private func withIOVecs(count n: Int, _ body: (UnsafeMutableBufferPointer<iovec>) -> Void) {
        withUnsafeTemporaryAllocation(of: iovec.self, capacity: n) { iov in
            // The chunks stay alive and unmodified for the duration of the call.
            for i in 0..<n {
                chunks[i].withUnsafeBytes { raw in
                    let skip = i == 0 ? headOffset : 0
                    iov[i] = iovec(iov_base: raw.baseAddress.map { UnsafeMutableRawPointer(mutating: $0 + skip) }, iov_len: raw.count - skip)
                }
            }
            body(iov)
        }
    }

    private mutating func consume(_ n: Int) {
        var left = n
        pendingBytes -= n
        while left > 0 {
            let avail = chunks[0].count - headOffset
            if left >= avail {
                left -= avail
                chunks.removeFirst()
                headOffset = 0
            } else {
                headOffset += left
                left = 0
            }
        }
        if pendingBytes == 0 {
            // Keep one small buffer for the next burst; let big ones go.
            if chunks.isEmpty == false { chunks.removeAll() }
            headOffset = 0
        }
    }

    /// Frees the (empty) chunk list itself: an idle connection then holds no buffer at all.
    public mutating func releaseStorage() {
        if pendingBytes == 0 { chunks = [] }
    }

    /// Drops everything queued.
    public mutating func reset() {
        chunks.removeAll()
        headOffset = 0
        pendingBytes = 0
    }
}
