import Glibc

/// Starts a closure on a pthread of its own (no Foundation `Thread`): the closure travels as a
/// retained box the new thread takes over. For the loops and every long-lived thread above them
/// (bridges, cluster); Storage has its own (it does not depend on this module).
public enum Threads {
    private final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Traps when the system refuses a thread: these start with the broker.
    public static func start(_ body: @escaping () -> Void) -> pthread_t {
        let box = Unmanaged.passRetained(Box(body))
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { arg in
            Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue().body()
            return nil
        }, box.toOpaque())
        precondition(rc == 0, "pthread_create failed: \(rc)")
        return tid
    }
}
