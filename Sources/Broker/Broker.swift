import EventLoop
import Logging
import MQTTCodec
import Synchronization

/// The broker: listeners, loops, the router, the retained store and the session registry.
/// Packet handling lives in `Connection+*.swift`; message flow between sessions lives in
/// `Broker+Delivery.swift`, session life in `Broker+Sessions.swift`.
public final class Broker: @unchecked Sendable {
    public let configuration: BrokerConfiguration
    public let logger: Logger
    public let stats = BrokerStats()
    let group: EventLoopGroup
    var contexts: [LoopContext] = []
    let tree = TopicTree()
    let retained = RetainedStore()
    let sessions: any SessionStore = InMemorySessionStore()
    private var listener: Listener?
    private let idCounter = Atomic<Int>(0)
    let startedAt = monotonicMilliseconds()
    var sysTimerStorage: LoopTimer?
    public static let version = "0.1.0"

    public init(configuration: BrokerConfiguration, logger: Logger) throws(SystemError) {
        self.configuration = configuration
        self.logger = logger
        self.group = try EventLoopGroup(threads: configuration.threads)
        for loop in group.loops {
            let ctx = LoopContext(loop: loop, broker: self, loopCount: group.loops.count)
            ctx.deliveries = Mailbox(loop: loop) { [unowned ctx] d in ctx.broker.deliverLocally(d, on: ctx) }
            contexts.append(ctx)
        }
    }

    /// Binds the listener and starts the loops. Returns the bound port.
    @discardableResult
    public func start() throws(SystemError) -> Int {
        let (fd, port) = try Socket.listen(host: configuration.bind, port: configuration.port)
        let l = Listener(fd: fd, broker: self, context: contexts[0])
        try contexts[0].loop.register(fd: fd, handler: l)
        listener = l
        group.start()
        if configuration.sysInterval > 0 {
            contexts[0].loop.execute { [unowned self] in self.startSysTimer() }
        }
        logger.info("turnpike \(Broker.version) listening on \(configuration.bind):\(port) (mqtt), \(group.loops.count) loop(s)")
        return port
    }

    /// Graceful stop: v5 clients get DISCONNECT 0x8B, every socket is closed, loops end.
    public func shutdown() {
        logger.info("shutting down")
        if let l = listener {
            contexts[0].loop.execute { l.close() }
        }
        for ctx in contexts {
            ctx.loop.execute {
                for (_, c) in ctx.connections {
                    c.disconnectedNormally = true // no wills on a clean server shutdown
                    c.disconnect(.serverShuttingDown, "server shutting down")
                }
            }
        }
        group.stopAndJoin()
    }

    /// A unique id for clients that connect without one.
    func makeClientId() -> String {
        let n = idCounter.wrappingAdd(1, ordering: .relaxed).newValue
        return "turnpike-\(startedAt % 1_000_000)-\(n)"
    }

    /// Accepted sockets are spread round-robin over the loops.
    func adopt(fd: Int32, peer: String) {
        let limit = configuration.limits.maxConnections
        let open = stats.socketsOpen.wrappingAdd(1, ordering: .relaxed).newValue
        if limit > 0 && open > limit {
            stats.socketsOpen.wrappingAdd(-1, ordering: .relaxed)
            logger.warning("refusing \(peer): max_connections (\(limit)) reached")
            Socket.close(fd)
            return
        }
        let ctx = contexts[group.nextLoop().index]
        ctx.loop.execute { [unowned self] in
            let c = Connection(fd: fd, peer: peer, context: ctx)
            do {
                try c.start()
                ctx.add(c)
            } catch {
                self.logger.error("cannot register \(peer): \(error)")
                self.stats.socketsOpen.wrappingAdd(-1, ordering: .relaxed)
                Socket.close(fd)
            }
        }
    }
}

/// The listening socket, on loop 0.
final class Listener: EventHandler {
    let fd: Int32
    unowned let broker: Broker
    let context: LoopContext
    private var closed = false

    init(fd: Int32, broker: Broker, context: LoopContext) {
        self.fd = fd; self.broker = broker; self.context = context
    }

    private lazy var resumeTimer = LoopTimer { [unowned self] in
        if !self.closed { self.context.loop.setInterest(fd: self.fd, readable: true, writable: false) }
    }

    func handleReadable() {
        for _ in 0..<64 {
            do {
                guard let (cfd, peer) = try Socket.accept(fd) else { return }
                broker.adopt(fd: cfd, peer: peer)
            } catch {
                // Out of descriptors (EMFILE/ENFILE) or memory: the pending connection stays
                // queued and the listener stays readable, so pause it for a moment instead of
                // spinning, and say so once per pause.
                broker.logger.error("accept failed: \(error); pausing accepts for 100 ms")
                context.loop.setInterest(fd: fd, readable: false, writable: false)
                context.loop.schedule(resumeTimer, afterMilliseconds: 100)
                return
            }
        }
    }

    func handleWritable() {}

    func close() {
        guard !closed else { return }
        closed = true
        context.loop.cancel(resumeTimer)
        context.loop.deregister(fd: fd)
        Socket.close(fd)
    }
}
