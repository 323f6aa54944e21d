import Glibc

/// Starts `body` on a new pthread (no Foundation `Thread`), as EventLoopGroup starts its loops:
/// the closure travels as a retained box that the new thread takes over and releases.
enum StoreThread {
    private final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Throws when the system refuses a thread (EAGAIN at the process's thread limit).
    static func start(_ name: String, _ body: @escaping () -> Void) throws(StorageError) -> pthread_t {
        let box = Unmanaged.passRetained(Box(body))
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { arg in
            Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue().body()
            return nil
        }, box.toOpaque())
        guard rc == 0 else {
            box.release()
            throw StorageError(code: .other, message: "cannot start the \(name) thread: pthread_create returned \(rc)")
        }
        return tid
    }
}
