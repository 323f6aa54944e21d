#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import RuleEngine
import EventLoop
import Logging
import MQTTCodec
import Storage
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
    /// The cluster this node is part of (Sources/Cluster), attached before `start`.
    var cluster: (any ClusterLink)?
    let retained = RetainedStore()
    let sessions: any SessionStore = InMemorySessionStore()
    /// Sessions handed to another node whose subscriptions stay here until that node asks for
    /// the rest (SessionTransfer.swift); not in `sessions`, so a CONNECT here never finds one.
    let departures = Mutex<[String: Session]>([:])
    /// The durable store; nil with `durability = "none"`.
    let persistence: Persistence?
    /// Bridges by "kind.name", installed before `start` (Sources/Bridges makes them).
    private let bridgeRegistry = Mutex<[String: any BridgeSink]>([:])
    /// What start-up recovered from it.
    public private(set) var recovered = RecoverySummary()
    private var listeners: [Listener] = []
    private let settingsGeneration = Atomic<UInt64>(0)
    private let latestSettings: Mutex<LiveSettings>
    /// The settings as the last reload left them (any thread; the loops read their own copy).
    public var settings: LiveSettings { latestSettings.withLock { $0 } }
    private let idCounter = Atomic<Int>(0)
    let startedAt = monotonicMilliseconds()
    /// The active rules, for `$SYS/rules/…` (each loop holds its own reference for evaluation).
    let currentRules = Mutex<RuleSet>(RuleSet.empty)
    /// Password hashing and JWT signature checks run here, one at a time, so a reconnect storm
    /// with passwords costs one core at most and never stalls a loop.
    let credentialQueue = DispatchQueue(label: "turnpike.credentials")
    var sysTimerStorage: LoopTimer?
    /// The store's counters at the last `$SYS` publish (loop 0), for the per-second rates.
    var lastStorageSample: (at: UInt64, writes: Int, commits: Int) = (0, 0, 0)
    var trimTimerStorage: LoopTimer?
    /// Most clients connected since the heap was last trimmed (loop 0 only).
    /// The arenas' free bytes after the last trim (or the lowest seen since): trimming again
    /// needs as much again freed, since glibc still counts the pages it gave back as free.
    let trimBaseline = Atomic<UInt64>(0)
    /// CONNECTs per client id, for flapping detection (Broker+Overload.swift).
    let flapping = Mutex(FlappingTracker())
    /// When a banned client id or user name was last logged (at most every 10 s).
    let lastBanLog = Atomic<UInt64>(0)
    /// Bans added through the admin API (Admin/BanList.swift).
    let runtimeBans = BanList()
    /// Rules disabled through the admin API, by name; kept across rule reloads.
    let disabledRules = Mutex<Set<String>>([])
    public static let version = "0.1.0"

    /// Opens the store in `dataDirectory/store` (unless durability is "none"): a damaged store
    /// is repaired as far as RocksDB can and the damage logged; one that cannot be opened at
    /// all is an error naming the directory.
    public init(configuration: BrokerConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        if configuration.storage.durability == .none {
            persistence = nil
        } else {
            let dir = configuration.dataDirectory + "/store"
            try Broker.makeDirectories(dir)
            var options = StoreOptions()
            let interval = configuration.storage.commitIntervalMs
            if configuration.storage.durability == .sync {
                options.durability = .sync
                options.commitIntervalMs = interval
            } else {
                options.durability = .periodic(intervalMs: interval > 0 ? interval : 1000)
            }
            // A crash leaves no clean-shutdown mark: then look for damage in the write-ahead
            // log first, which opening would drop without a word.
            let mark = configuration.dataDirectory + "/store.clean"
            if access(mark, F_OK) != 0, let damage = StoreCheck.logDamage(directory: dir) {
                logger.error("storage: \(dir): \(damage); the records before the damage are recovered")
            }
            unlink(mark)
            let (store, report) = try Store.open(directory: dir, options: options)
            if !report.isClean { logger.error("storage: \(dir): \(report)") }
            persistence = Persistence(store: store, durability: configuration.storage.durability)
            logger.info("storage: \(dir), durability \(configuration.storage.durability.rawValue)")
        }
        self.group = try EventLoopGroup(threads: configuration.threads)
        let settings = LiveSettings(configuration, generation: 0)
        latestSettings = Mutex(settings)
        for loop in group.loops {
            let ctx = LoopContext(loop: loop, broker: self, loopCount: group.loops.count, settings: settings)
            ctx.deliveries = Mailbox(loop: loop) { [unowned ctx] d in ctx.broker.deliverLocally(d, on: ctx) }
            ctx.fromCluster = Mailbox(loop: loop) { [unowned ctx] r in ctx.broker.deliverFromCluster(r, on: ctx) }
            contexts.append(ctx)
        }
    }

    /// Makes `sinks` available to rule actions; call before `start`.
    public func installBridges(_ sinks: [any BridgeSink]) {
        var all: [String: any BridgeSink] = [:]
        for s in sinks { all[s.id] = s }
        bridgeRegistry.withLock { $0 = all }
        for ctx in contexts { ctx.bridges = all }
    }

    /// Every bridge, by id (any thread).
    public var bridges: [String: any BridgeSink] { bridgeRegistry.withLock { $0 } }

    /// Reload: the loops use `sinks` from their next packet on; `done` runs (on some loop)
    /// once every loop has switched, so nothing is submitted to a bridge left out after it.
    public func replaceBridges(_ sinks: [any BridgeSink], done: @escaping @Sendable () -> Void) {
        var all: [String: any BridgeSink] = [:]
        for s in sinks { all[s.id] = s }
        bridgeRegistry.withLock { $0 = all }
        let countdown = Countdown(contexts.count)
        let box = UncheckedSendable(all)
        for ctx in contexts {
            ctx.loop.execute {
                ctx.bridges = box.value
                if countdown.tick() { done() }
            }
        }
    }

    /// Binds every listener and starts the loops. Returns the bound ports, in listener order.
    /// Fails (binding nothing) when a port is taken or a TLS file does not load.
    @discardableResult
    public func start() throws -> [Int] {
        var ports: [Int] = []
        recovered = try recover()
        do {
            for lc in configuration.listeners {
                let tls = try lc.tls.map { try TLSContext(server: $0) }
                let (fd, port) = try Socket.listen(host: lc.bind, port: lc.port)
                let l = Listener(fd: fd, name: "\(tls == nil ? "tcp" : "ssl"):\(port)", configuration: lc, tls: tls,
                                 broker: self, context: contexts[0])
                listeners.append(l)
                try contexts[0].loop.register(fd: fd, handler: l)
                ports.append(port)
                logger.info("listening on \(lc.bind):\(port) (\(tls == nil ? "mqtt" : "mqtt over TLS")); \(whoMayConnect(lc))")
            }
        } catch {
            for l in listeners { l.close() }
            listeners.removeAll()
            throw error
        }
        group.start()
        if configuration.sysInterval > 0 {
            contexts[0].loop.execute { [unowned self] in self.startSysTimer() }
        }
        contexts[0].loop.execute { [unowned self] in self.startTrimTimer() }
        logger.info("turnpike \(Broker.version) running with \(group.loops.count) loop(s)")
        return ports
    }

    /// One line for the start-up log: who may connect on `listener`.
    func whoMayConnect(_ listener: BrokerConfiguration.ListenerConfiguration) -> String {
        var proofs: [String] = []
        if configuration.auth.passwords != nil { proofs.append("a password_file user") }
        if configuration.auth.jwt != nil { proofs.append("a JWT") }
        if let tls = listener.tls, tls.caFile != nil {
            proofs.append(tls.requireClientCertificate ? "a client certificate (required)" : "a client certificate")
        } else if listener.tls?.requireClientCertificate == true {
            proofs.append("a client certificate (required)")
        }
        let proof = proofs.isEmpty ? "nothing can authenticate a client" : "clients authenticate with " + proofs.joined(separator: ", ")
        let anonymousEverywhere = configuration.allowsAnonymous(on: listener, fromLoopback: false)
        let anonymousLocally = configuration.allowsAnonymous(on: listener, fromLoopback: true)
        let anonymous: String
        if anonymousEverywhere {
            anonymous = "anonymous clients allowed from anywhere (allow_anonymous = true)"
        } else if anonymousLocally {
            anonymous = "anonymous clients allowed over loopback only (set allow_anonymous = true to allow them from the network)"
        } else {
            anonymous = "anonymous clients refused"
        }
        return anonymous + "; " + proof
    }

    /// Reloads every TLS listener's certificate, key and CA files (SIGHUP). New connections use
    /// the new context; established ones keep theirs. A listener whose files fail to load keeps
    /// its old context, and the error is logged. Returns the listeners reloaded and those that
    /// failed, one line each ("port 8883: …").
    @discardableResult
    public func reloadTLS() -> (reloaded: [String], failed: [String]) {
        var reloaded: [String] = [], failed: [String] = []
        for l in listeners {
            guard let c = l.configuration.tls else { continue }
            do {
                let fresh = try TLSContext(server: c)
                contexts[0].loop.execute { l.tls = fresh }
                logger.info("reloaded TLS certificates for port \(l.configuration.port)")
                reloaded.append("port \(l.configuration.port)")
            } catch {
                logger.error("TLS reload for port \(l.configuration.port) failed, keeping the old certificates: \(error)")
                failed.append("port \(l.configuration.port): \(error)")
            }
        }
        return (reloaded, failed)
    }

    /// Applies a reloaded configuration's `[limits]`, `[auth]` and `[bans]` (SIGHUP): each loop
    /// takes the new settings between two packets, new connections get them, connected clients'
    /// next PUBLISH or SUBSCRIBE is checked against the new ACL. Nothing is disconnected. What
    /// needs a restart to change (listeners, threads, storage, the data directory) is only
    /// reported: returns those names.
    @discardableResult
    public func applySettings(_ c: BrokerConfiguration) -> [String] {
        let settings = LiveSettings(c, generation: settingsGeneration.wrappingAdd(1, ordering: .relaxed).newValue)
        latestSettings.withLock { $0 = settings }
        for ctx in contexts {
            ctx.loop.execute { ctx.settings = settings }
        }
        let ls = listeners
        contexts[0].loop.execute { for l in ls { l.bannedNetworks = c.bans.networks } }
        var needRestart: [String] = []
        if c.listeners != configuration.listeners { needRestart.append("[[listeners]]") }
        if c.threads != configuration.threads { needRestart.append("threads") }
        if c.sysInterval != configuration.sysInterval { needRestart.append("sys_interval") }
        if c.dataDirectory != configuration.dataDirectory { needRestart.append("the data directory") }
        if c.storage.durability != configuration.storage.durability || c.storage.commitIntervalMs != configuration.storage.commitIntervalMs {
            needRestart.append("[storage]")
        }
        if c.rules.directory != configuration.rules.directory || c.rules.deadLetter != configuration.rules.deadLetter { needRestart.append("[rules]") }
        return needRestart
    }

    /// Graceful stop: v5 clients get DISCONNECT 0x8B, every socket is closed, loops end.
    public func shutdown() {
        logger.info("shutting down")
        let ls = listeners
        contexts[0].loop.execute { for l in ls { l.close() } }
        for ctx in contexts {
            ctx.loop.execute {
                for (_, c) in ctx.connections {
                    c.disconnectedNormally = true // no wills on a clean server shutdown
                    c.disconnect(.serverShuttingDown, "server shutting down")
                }
            }
        }
        group.stopAndJoin()
        cluster?.stop()
        for b in bridges.values { b.stop() }
        // The loops' last batches (sessions of the clients just disconnected) are queued:
        // closing drains them.
        if let p = persistence {
            p.store.close()
            let fd = open(configuration.dataDirectory + "/store.clean", O_CREAT | O_WRONLY, 0o644)
            if fd >= 0 { Glibc.close(fd) }
        }
    }

    static func makeDirectories(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for part in path.split(separator: "/") {
            prefix += part + "/"
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw SystemError(call: "mkdir \(prefix)", errno: errno)
            }
        }
    }

    /// A unique id for clients that connect without one.
    func makeClientId() -> String {
        let n = idCounter.wrappingAdd(1, ordering: .relaxed).newValue
        return "turnpike-\(startedAt % 1_000_000)-\(n)"
    }

    /// Accepted sockets are spread round-robin over the loops.
    func adopt(fd: Int32, peer: String, fromLoopback: Bool, listener: Listener) {
        let limit = listener.context.settings.limits.maxConnections
        let open = stats.socketsOpen.wrappingAdd(1, ordering: .relaxed).newValue
        let listenerLimit = listener.configuration.maxConnections
        let openHere = listener.open.wrappingAdd(1, ordering: .relaxed).newValue
        if (limit > 0 && open > limit) || (listenerLimit > 0 && openHere > listenerLimit) {
            stats.socketsOpen.wrappingAdd(-1, ordering: .relaxed)
            listener.open.wrappingAdd(-1, ordering: .relaxed)
            listener.refusedFull(peer: peer, limit: limit > 0 && open > limit ? limit : listenerLimit)
            Socket.close(fd)
            return
        }
        let tlsContext = listener.tls
        let ctx = contexts[group.nextLoop().index]
        ctx.loop.execute { [unowned self] in
            do {
                let tls = try tlsContext.map { try TLSStream(context: $0, fd: fd) }
                let c = Connection(fd: fd, peer: peer, fromLoopback: fromLoopback, context: ctx, listener: listener, tls: tls)
                try c.start()
                ctx.add(c)
            } catch {
                self.logger.error("cannot set up the connection from \(peer): \(error)")
                self.stats.socketsOpen.wrappingAdd(-1, ordering: .relaxed)
                listener.open.wrappingAdd(-1, ordering: .relaxed)
                Socket.close(fd)
            }
        }
    }
}

/// A listening socket, on loop 0.
final class Listener: EventHandler, @unchecked Sendable {
    let fd: Int32
    /// "tcp:1883", "ssl:8883": the `listener` label of the metrics and the admin API.
    let name: String
    let configuration: BrokerConfiguration.ListenerConfiguration
    /// Replaced on a TLS reload (on loop 0, where accepts happen).
    var tls: TLSContext?
    /// Connections accepted here and not yet closed.
    let open = Atomic<Int>(0)
    unowned let broker: Broker
    let context: LoopContext
    private var closed = false
    private var lastFullLog: UInt64 = 0
    /// `accept_rate` (nil: unlimited), and whether accepts are paused for it right now.
    private var acceptBucket: TokenBucket?
    private var acceptPaused = false
    /// A throttle episode lasts until the backlog is drained; one log line each, at most every 10 s.
    private var throttleEpisode = false
    private var lastThrottleLog: UInt64 = 0
    private var lastBanLog: UInt64 = 0
    private var bannedSinceLog = 0
    /// `[bans] cidrs`, checked at accept on the listener's loop (replaced there on reload).
    var bannedNetworks: [IPNetwork]

    init(fd: Int32, name: String, configuration: BrokerConfiguration.ListenerConfiguration, tls: TLSContext?, broker: Broker, context: LoopContext) {
        self.fd = fd; self.name = name; self.configuration = configuration; self.tls = tls; self.broker = broker; self.context = context
        let rate = configuration.acceptRate ?? broker.configuration.limits.acceptRate
        if rate > 0 { acceptBucket = TokenBucket(rate: rate, now: context.loop.now) }
        bannedNetworks = broker.configuration.bans.networks
    }

    /// Logged at most every 10 s, so a reconnect storm against a full broker cannot flood the log.
    func refusedFull(peer: String, limit: Int) {
        let now = context.loop.now
        if lastFullLog == 0 || now &- lastFullLog >= 10_000 {
            lastFullLog = now
            broker.logger.warning("refusing \(peer) on port \(configuration.port): connection limit \(limit) reached")
        }
    }

    private lazy var resumeTimer = LoopTimer { [unowned self] in
        self.acceptPaused = false
        if !self.closed { self.context.loop.setInterest(fd: self.fd, readable: true, writable: false) }
    }

    func handleReadable() {
        guard !acceptPaused else { return }
        var address = IPAddress(high: 0, low: 0)
        for _ in 0..<64 {
            do {
                if acceptBucket != nil && throttleAccepts() { return }
                guard let (cfd, peer) = try Socket.accept(fd, peerAddress: &address) else {
                    throttleEpisode = false
                    return
                }
                if !bannedNetworks.isEmpty, let net = bannedNetworks.first(where: { $0.contains(address) }) {
                    refusedBanned(peer: peer, network: net)
                    Socket.close(cfd)
                    continue
                }
                acceptBucket?.take(1, now: context.loop.now)
                broker.adopt(fd: cfd, peer: peer, fromLoopback: address.isLoopback, listener: self)
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

    /// Out of accept tokens: stop reading the listening socket until one is back. Pending
    /// connections wait in the kernel's backlog (not refused), so a reconnect storm is spread out.
    private func throttleAccepts() -> Bool {
        let now = context.loop.now
        guard let wait = acceptBucket?.millisecondsUntil(1, now: now), wait > 0 else { return false }
        if !throttleEpisode {
            throttleEpisode = true
            if lastThrottleLog == 0 || now >= lastThrottleLog + 10_000 {
                lastThrottleLog = now
                broker.logger.notice("port \(configuration.port): connections arriving faster than accept_rate \(acceptBucket!.rate)/s; the rest wait in the backlog")
            }
        }
        acceptPaused = true
        context.loop.setInterest(fd: fd, readable: false, writable: false)
        context.loop.schedule(resumeTimer, afterMilliseconds: wait)
        return true
    }

    /// A peer in a `[bans]` network: closed at accept, before any TLS handshake. Logged at most
    /// every 10 s per listener.
    private func refusedBanned(peer: String, network: IPNetwork) {
        bannedSinceLog += 1
        let now = context.loop.now
        if lastBanLog == 0 || now >= lastBanLog + 10_000 {
            broker.logger.notice("port \(configuration.port): refused \(peer), banned by \(network) (\(bannedSinceLog) refused since the last report)")
            lastBanLog = now
            bannedSinceLog = 0
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
