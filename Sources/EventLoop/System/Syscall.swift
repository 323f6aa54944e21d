import CSystemShims

/// A failed system call: the call's name and errno.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let errno: Int32

    public init(call: String, errno: Int32) { self.call = call; self.errno = errno }

    public var description: String {
        guard let s = strerror(errno) else { return "\(call): errno \(errno)" }
        return "\(call): \(String(cString: s)) (errno \(errno))"
    }
}

/// The outcome of a non-blocking I/O call.
public enum IOResult<T> {
    case done(T)
    case wouldBlock
}

/// All errno handling goes through here: EINTR is retried, EAGAIN becomes `.wouldBlock`,
/// EBADF/EFAULT can only be our bug and trap, anything else throws `SystemError`.
/// `@inline(never)` so no ARC traffic can clobber errno between the call and the read.
@inline(never)
func syscall<T: FixedWidthInteger>(_ name: @autoclosure () -> String, _ body: () -> T) throws(SystemError) -> IOResult<T> {
    while true {
        let r = body()
        if r >= 0 { return .done(r) }
        let err = cshim_errno()
        switch err {
        case EINTR: continue
        case EAGAIN: return .wouldBlock
        case EBADF, EFAULT: preconditionFailure("\(name()) failed with errno \(err): a descriptor or pointer bug")
        default: throw SystemError(call: name(), errno: err)
        }
    }
}

/// Same as `syscall`, for calls that never block (their EAGAIN is an error too).
@inline(never)
func blockingSyscall<T: FixedWidthInteger>(_ name: @autoclosure () -> String, _ body: () -> T) throws(SystemError) -> T {
    while true {
        let r = body()
        if r >= 0 { return r }
        let err = cshim_errno()
        if err == EINTR { continue }
        if err == EBADF || err == EFAULT { preconditionFailure("\(name()) failed with errno \(err): a descriptor or pointer bug") }
        throw SystemError(call: name(), errno: err)
    }
}

/// Monotonic milliseconds.
@inline(__always)
public func monotonicMilliseconds() -> UInt64 { cshim_monotonic_ms() }

/// Monotonic microseconds.
@inline(__always)
public func monotonicMicroseconds() -> UInt64 { cshim_monotonic_us() }

/// Seconds since the Unix epoch.
@inline(__always)
public func wallClockSeconds() -> Int64 { cshim_wall_seconds() }

/// Microseconds since the Unix epoch (CLOCK_REALTIME): timestamps compared across processes.
@inline(__always)
public func wallClockMicroseconds() -> UInt64 { cshim_wall_us() }
