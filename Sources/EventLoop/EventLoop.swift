import CSystemShims
import Glibc
import Synchronization

/// What a registered descriptor's owner implements. One dynamic call per epoll event (not per
/// message), so a class-bound protocol is cheap enough here.
public protocol EventHandler: AnyObject {
    /// The descriptor is readable (or hung up / errored: the next read reports it).
    func handleReadable()
    /// The descriptor is writable; only delivered while write interest is on.
    func handleWritable()
}

/// Something with output to flush at the end of the current loop iteration.
public protocol FlushTarget: AnyObject {
    func flushPendingOutput()
}

/// One reactor: an epoll instance on its own thread, with an eventfd for cross-thread wake-ups
/// (mailboxes, tasks) and a timing wheel on one timerfd. Everything registered with a loop is
/// touched only on that loop's thread.
public final class EventLoop: @unchecked Sendable {
    /// The loop's position in its group.
    public let index: Int
    private let epfd: Int32
    private let wakeFD: Int32
    private let timerFD: Int32
    /// Handlers and generations by descriptor, in memory mapped once for the process's
    /// descriptor limit: pages are touched only where this loop's descriptors are, and nothing
    /// is copied to grow (doubling arrays cost 2 × 20 bytes per descriptor per loop at 19,000
    /// connections). Zeroed pages read as nil handlers and generation 0.
    private let handlers: UnsafeMutablePointer<EventHandler?>
    private let generations: UnsafeMutablePointer<UInt32>
    private let descriptorCapacity: Int
    private let mapped: Int
    private var wheel: TimerWheel
    private var timerArmed = false
    private var dueTimers: [TimerNode] = []
    private var drains: [() -> Void] = []
    private var flushQueue: [FlushTarget] = []
    private var flushSpare: [FlushTarget] = []
    private let tasks = Mutex<[() -> Void]>([])
    private let wakePending = Atomic<Bool>(false)
    private var running = true
    private var threadID: pthread_t?
    /// Monotonic milliseconds, refreshed once per loop iteration.
    public private(set) var now: UInt64
    /// Counts iterations: lets handlers ration work per iteration.
    public private(set) var iteration: UInt64 = 0
    /// The longest iteration (events, timers, cross-thread work and flushes, not the wait) since
    /// `takeLongestIteration()` last read it, in ms: how late the loop can be for any socket.
    private let longestIteration = Atomic<UInt64>(0)
    /// The same, for the admin listener's scrapes: a second reader must not reset `$SYS`'s figure.
    private let longestIterationForMetrics = Atomic<UInt64>(0)

    private static let wakeToken: UInt64 = 1 << 62
    private static let timerToken: UInt64 = 1 << 63

    public init(index: Int) throws(SystemError) {
        self.index = index
        epfd = try blockingSyscall("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
        wakeFD = try blockingSyscall("eventfd") { eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC)) }
        timerFD = try blockingSyscall("timerfd_create") {
            timerfd_create(CLOCK_MONOTONIC, Int32(TFD_NONBLOCK | TFD_CLOEXEC))
        }
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        descriptorCapacity = Int(min(limit.rlim_max, 1 << 22))
        let handlerBytes = (descriptorCapacity * MemoryLayout<EventHandler?>.stride + 4095) & ~4095
        mapped = handlerBytes + descriptorCapacity * MemoryLayout<UInt32>.stride
        guard let base = mmap(nil, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              base != MAP_FAILED else {
            let e = errno
            close(epfd); close(wakeFD); close(timerFD)
            throw SystemError(call: "mmap", errno: e)
        }
        handlers = base.bindMemory(to: EventHandler?.self, capacity: descriptorCapacity)
        generations = (base + handlerBytes).bindMemory(to: UInt32.self, capacity: descriptorCapacity)
        now = monotonicMilliseconds()
        wheel = TimerWheel(nowMilliseconds: now)
        try addRaw(fd: wakeFD, token: Self.wakeToken, events: UInt32(EPOLLIN.rawValue))
        try addRaw(fd: timerFD, token: Self.timerToken, events: UInt32(EPOLLIN.rawValue))
    }

    deinit {
        close(epfd); close(wakeFD); close(timerFD)
        var i = 0
        while i < descriptorCapacity {   // release what is still registered (only touched pages hold any)
            if handlers[i] != nil { handlers[i] = nil }
            i += 1
        }
        munmap(UnsafeMutableRawPointer(handlers), mapped)
    }

    // MARK: Registration

    private func addRaw(fd: Int32, token: UInt64, events: UInt32) throws(SystemError) {
        var ev = epoll_event()
        cshim_epoll_event_set(&ev, events, token)
        _ = try blockingSyscall("epoll_ctl(ADD)") { epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) }
    }

    /// The epoll token packs a generation with the fd, so an event for a closed descriptor
    /// whose number was reused is recognised and dropped.
    private func token(for fd: Int32) -> UInt64 {
        (UInt64(generations[Int(fd)]) << 32) | UInt64(UInt32(bitPattern: fd))
    }

    /// Registers `fd` for reading (and writing when `writable`), delivering events to `handler`.
    public func register(fd: Int32, handler: EventHandler, writable: Bool = false) throws(SystemError) {
        let i = Int(fd)
        guard i >= 0, i < descriptorCapacity else { throw SystemError(call: "register", errno: EMFILE) }
        generations[i] &+= 1
        handlers[i] = handler
        var events = UInt32(EPOLLIN.rawValue) | UInt32(EPOLLRDHUP.rawValue)
        if writable { events |= UInt32(EPOLLOUT.rawValue) }
        var ev = epoll_event()
        cshim_epoll_event_set(&ev, events, token(for: fd))
        _ = try blockingSyscall("epoll_ctl(ADD)") { epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) }
    }

    /// Sets read and write interest for a registered descriptor (read interest off pauses a
    /// peer, e.g. while its session is being handed over from another loop).
    public func setInterest(fd: Int32, readable: Bool, writable: Bool) {
        var events: UInt32 = 0
        if readable { events |= UInt32(EPOLLIN.rawValue) | UInt32(EPOLLRDHUP.rawValue) }
        if writable { events |= UInt32(EPOLLOUT.rawValue) }
        var ev = epoll_event()
        cshim_epoll_event_set(&ev, events, token(for: fd))
        _ = epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev)
    }

    /// Removes a descriptor (call before closing it).
    public func deregister(fd: Int32) {
        let i = Int(fd)
        guard i >= 0, i < descriptorCapacity, handlers[i] != nil else { return }
        handlers[i] = nil
        generations[i] &+= 1
        _ = epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nil)
    }

    // MARK: Timers

    /// Schedules (or reschedules) `timer` to fire after `milliseconds`. Loop thread only.
    public func schedule(_ timer: TimerNode, afterMilliseconds milliseconds: UInt64) {
        if !timerArmed && wheel.count == 0 { wheel.resync(to: now) }
        wheel.schedule(timer, afterMilliseconds: milliseconds, now: now)
        if !timerArmed { armTimerFD(true) }
    }

    public func cancel(_ timer: TimerNode) {
        wheel.cancel(timer)
    }

    private func armTimerFD(_ on: Bool) {
        // timerfd_settime is not free: the wheel ticks on a periodic timer that stays armed
        // while any timer is scheduled and is disarmed when the wheel empties.
        var spec = itimerspec()
        if on {
            let ns = Int(TimerWheel.tickMilliseconds) * 1_000_000
            spec.it_value.tv_nsec = ns
            spec.it_interval.tv_nsec = ns
        }
        _ = timerfd_settime(timerFD, 0, &spec, nil)
        timerArmed = on
    }

    private func runTimers() {
        var expirations: UInt64 = 0
        _ = read(timerFD, &expirations, 8)
        wheel.advance(to: now, due: &dueTimers)
        if !dueTimers.isEmpty {
            // A callback may reschedule its own timer; it was unscheduled before this runs.
            for t in dueTimers { t.timerFired() }
            dueTimers.removeAll(keepingCapacity: true)
        }
        if wheel.count == 0 && timerArmed { armTimerFD(false) }
    }

    // MARK: Cross-thread work

    func addMailboxDrain(_ drain: @escaping () -> Void) {
        drains.append(drain)
    }

    /// Wakes the loop from any thread; coalesced until the loop has run its drains.
    public func wakeUp() {
        if wakePending.exchange(true, ordering: .acquiringAndReleasing) { return }
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    /// Runs `task` on this loop's thread soon. For rare control work (hand-offs, shutdown);
    /// per-message traffic goes through a typed `Mailbox`.
    public func execute(_ task: @escaping () -> Void) {
        tasks.withLock { $0.append(task) }
        wakeUp()
    }

    /// True when called on this loop's thread.
    public var inLoop: Bool {
        guard let t = threadID else { return false }
        return pthread_equal(t, pthread_self()) != 0
    }

    // MARK: End-of-iteration flushing

    /// Asks for `target.flushPendingOutput()` once at the end of this iteration, so several
    /// packets produced while handling one batch of events leave in one write.
    public func scheduleFlush(_ target: FlushTarget) {
        assert(threadID == nil || pthread_equal(threadID!, pthread_self()) != 0, "scheduleFlush off the loop's thread")
        flushQueue.append(target)
    }

    // MARK: Running

    /// The longest iteration since the last call, in ms, and starts a new period (any thread).
    public func takeLongestIteration() -> UInt64 {
        longestIteration.exchange(0, ordering: .relaxed)
    }

    /// `takeLongestIteration` for the metrics scrape, which keeps a period of its own.
    public func takeLongestIterationForMetrics() -> UInt64 {
        longestIterationForMetrics.exchange(0, ordering: .relaxed)
    }

    /// Runs until `stop()`; call on the loop's own thread.
    public func run() {
        threadID = pthread_self()
        let capacity = 256
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        defer { events.deallocate() }
        while running {
            let timeout: Int32 = flushQueue.isEmpty ? -1 : 0
            let n = epoll_wait(epfd, events, Int32(capacity), timeout)
            now = monotonicMilliseconds()
            iteration &+= 1
            if n < 0 {
                if cshim_errno() == EINTR { continue }
                preconditionFailure("epoll_wait failed: errno \(cshim_errno())")
            }
            for i in 0..<Int(n) {
                let data = cshim_epoll_event_data(events + i)
                let mask = cshim_epoll_event_events(events + i)
                if data == Self.wakeToken {
                    var v: UInt64 = 0
                    _ = read(wakeFD, &v, 8)
                    wakePending.store(false, ordering: .releasing)
                    runCrossThreadWork()
                    continue
                }
                if data == Self.timerToken {
                    runTimers()
                    continue
                }
                let fd = Int(UInt32(truncatingIfNeeded: data))
                let gen = UInt32(truncatingIfNeeded: data >> 32)
                guard fd < descriptorCapacity, generations[fd] == gen, let h = handlers[fd] else { continue }
                if mask & (UInt32(EPOLLIN.rawValue) | UInt32(EPOLLRDHUP.rawValue) | UInt32(EPOLLHUP.rawValue) | UInt32(EPOLLERR.rawValue)) != 0 {
                    h.handleReadable()
                }
                // The read may have closed and deregistered it.
                if mask & UInt32(EPOLLOUT.rawValue) != 0, generations[fd] == gen, let h2 = handlers[fd] {
                    h2.handleWritable()
                }
            }
            flushAll()
            let took = monotonicMilliseconds() &- now
            if took > longestIteration.load(ordering: .relaxed) { longestIteration.store(took, ordering: .relaxed) }
            if took > longestIterationForMetrics.load(ordering: .relaxed) { longestIterationForMetrics.store(took, ordering: .relaxed) }
        }
        // Final drain so work handed over during shutdown is not lost.
        runCrossThreadWork()
        flushAll()
    }

    private func runCrossThreadWork() {
        let pending = tasks.withLock { t -> [() -> Void] in
            let p = t
            t.removeAll()
            return p
        }
        for task in pending { task() }
        for d in drains { d() }
    }

    private func flushAll() {
        while !flushQueue.isEmpty {
            swap(&flushQueue, &flushSpare)
            for t in flushSpare { t.flushPendingOutput() }
            flushSpare.removeAll(keepingCapacity: true)
        }
    }

    /// Stops the loop after the current iteration; callable from any thread.
    public func stop() {
        execute { [unowned self] in self.running = false }
    }
}
