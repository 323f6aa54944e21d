import CSystemShims

/// N event loops, each on its own thread.
public final class EventLoopGroup: @unchecked Sendable {
    public let loops: [EventLoop]
    private var threads: [pthread_t] = []
    private var next = 0

    public init(threads count: Int) throws(SystemError) {
        var loops: [EventLoop] = []
        for i in 0..<max(1, count) { loops.append(try EventLoop(index: i)) }
        self.loops = loops
    }

    /// The number of online cores.
    public static var coreCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// Starts every loop on its own thread.
    public func start() {
        for loop in loops { threads.append(Threads.start { loop.run() }) }
    }

    /// Round-robin choice for a new connection.
    public func nextLoop() -> EventLoop {
        let l = loops[next % loops.count]
        next &+= 1
        return l
    }

    /// Stops every loop and waits for its thread.
    public func stopAndJoin() {
        for l in loops { l.stop() }
        for t in threads { pthread_join(t, nil) }
        threads.removeAll()
    }
}
