import EventLoop

/// Everything the broker needs to know at start-up. The `turnpike` executable fills it from the
/// command line and `turnpike.toml`. `limits`, `auth` and `bans` can change while the broker
/// runs (`Broker.applySettings`, on SIGHUP): the loops read them from `LiveSettings`, never from
/// here; the rest takes a restart.
public struct BrokerConfiguration: Sendable {
    /// Where clients connect: plain MQTT on 1883 unless configured otherwise.
    public var listeners: [ListenerConfiguration] = [ListenerConfiguration()]
    /// Reactor loops (threads); one per core by default.
    public var threads: Int = 1
    /// Seconds between `$SYS/broker/…` publications; 0 turns them off.
    public var sysInterval: Int = 10
    /// Where persistent state lives.
    public var dataDirectory: String = "data"
    public var limits = Limits()
    public var rules = Rules()
    /// The durable store (`[storage]`), in `dataDirectory/store`.
    public var storage = StorageSettings()

    public struct StorageSettings: Sendable {
        public var durability: Durability = .sync
        /// `sync`: the group-commit window (0 = every loop iteration commits what it wrote).
        /// `periodic`: how often the written log is fsynced (0 = 1000).
        public var commitIntervalMs = 0
        public init() {}
    }

    /// The rule engine (`[rules]`); the rule files themselves are loaded by the executable.
    public struct Rules: Sendable {
        /// Directory of `*.sql` rule files.
        public var directory = "rules"
        /// Messages a rule fails to evaluate are republished to `$dlq/rules/<rule>`.
        public var deadLetter = false
        public init() {}
    }
    /// Authentication and ACL (`[auth]`; see Auth/AuthConfiguration.swift).
    public var auth = Auth()
    /// Clients refused outright (`[bans]`).
    public var bans = Bans()

    public init() {}

    /// One listening socket.
    public struct ListenerConfiguration: Sendable, Equatable {
        public var bind: String = "0.0.0.0"
        /// 0 lets the kernel choose (the chosen port is logged).
        public var port: Int = 1883
        /// TLS settings; nil for plain MQTT.
        public var tls: TLSConfiguration?
        /// Use the client certificate's CN (or its whole subject) as the MQTT username.
        public var useIdentityAsUsername = false
        public var useSubjectAsUsername = false
        /// Connections on this listener; 0 is unlimited.
        public var maxConnections = 0
        /// New connections accepted per second; nil takes `Limits.acceptRate`, 0 is unlimited.
        public var acceptRate: Int?
        /// Anonymous clients on this listener; nil takes `[auth] allow_anonymous`, and when that
        /// is not set either, only clients connecting over loopback may be anonymous.
        public var allowAnonymous: Bool?

        public init(bind: String = "0.0.0.0", port: Int = 1883, tls: TLSConfiguration? = nil) {
            self.bind = bind; self.port = port; self.tls = tls
        }
    }

    /// Broker-wide limits. A zero means "no limit" where the comment says so.
    public struct Limits: Sendable {
        /// Simultaneous client connections; 0 is unlimited.
        public var maxConnections: Int = 0
        /// Largest packet accepted from a client, fixed header included (advertised to v5 clients).
        public var maxPacketSize: Int = 1_048_576
        /// Outbound QoS 1/2 messages in flight per client (further ones wait in the queue).
        public var maxInflight: Int = 20
        /// Messages queued per session beyond the inflight window, online or offline.
        public var maxQueuedMessages: Int = 1000
        /// Largest keepalive accepted: v5 clients asking for more (or for none) get this as Server Keep Alive;
        /// v3 clients asking for more are refused, as mosquitto does.
        public var maxKeepalive: Int = 65535
        /// Most levels in a topic name or filter.
        public var maxTopicLevels: Int = 128
        /// Subscriptions per client; 0 is unlimited.
        public var maxSubscriptionsPerClient: Int = 0
        /// Topic Alias Maximum offered to v5 clients (0 turns inbound aliases off).
        public var maxTopicAlias: Int = 10
        /// Receive Maximum offered to v5 clients: QoS 1/2 messages a client may have awaiting the
        /// broker's acknowledgement (PUBACK, or PUBREL then PUBCOMP); one more is DISCONNECT 0x93.
        /// Bounded by default (EMQX offers 32, mosquitto 20) so one client cannot pin broker memory.
        public var receiveMaximum: Int = 128
        /// Client ids, user names, will topics, topic names and filters with control characters
        /// (U+0001–U+001F, U+007F–U+009F) or Unicode non-characters are refused as malformed.
        public var strictUTF8 = true
        /// Seconds a QoS 1/2 acknowledgement waits for the bridges of `ack = 'after_sink'`
        /// actions; past it a v5 publisher gets 0x80 and a v3.1.1 one is disconnected.
        public var ackTimeout: Int = 30
        /// Upper bound on a v5 client's Session Expiry Interval, seconds (0xFFFFFFFF: never expires).
        public var maxSessionExpiry: UInt32 = 0xFFFF_FFFF
        /// Seconds a new connection may take to send CONNECT.
        public var connectTimeout: Int = 10
        /// New connections accepted per second on each listener (bursts of one second's worth);
        /// past it the rest wait in the kernel's backlog. 0 is unlimited.
        public var acceptRate: Int = 0
        /// PUBLISH packets per second per client; a client past it is not read until it is back
        /// under (TCP pushes back on it), and nothing it sent is dropped. 0 is off.
        public var maxPublishRate: Int = 0
        /// The same in bytes of PUBLISH packets per second. 0 is off.
        public var maxPublishBytesRate: Int = 0
        /// A client id that connects more than this many times within `flappingWindow` seconds
        /// is refused for `flappingBan` seconds (v5 CONNACK 0x9F, v3 3). 0 is off.
        public var flappingMaxConnects: Int = 0
        public var flappingWindow: Int = 60
        public var flappingBan: Int = 300

        public init() {}
    }

    /// Whether a client that proves no identity may connect on `listener`: as the listener says,
    /// else as `[auth] allow_anonymous` says, else only over loopback (mosquitto 2.0's lesson: a
    /// default that lets anyone on the network in gets found and used).
    public func allowsAnonymous(on listener: ListenerConfiguration, fromLoopback: Bool) -> Bool {
        listener.allowAnonymous ?? auth.allowAnonymous ?? fromLoopback
    }
}

/// The part of the configuration a reload changes while clients stay connected (`[limits]`,
/// `[auth]` with its password and ACL files, `[bans]`). Each loop holds its own reference
/// (`LoopContext.settings`), replaced on that loop between two packets, so reading it takes no
/// lock. New values apply to new connections and to a connected client's next packet (its ACL
/// is compiled again then: `generation` tells it that it changed).
public final class LiveSettings: Sendable {
    public let limits: BrokerConfiguration.Limits
    public let auth: BrokerConfiguration.Auth
    public let bans: BrokerConfiguration.Bans
    public let generation: UInt64

    init(_ c: BrokerConfiguration, generation: UInt64) {
        limits = c.limits; auth = c.auth; bans = c.bans; self.generation = generation
    }

    /// Whether a client that proves no identity may connect on `listener`.
    func allowsAnonymous(on listener: BrokerConfiguration.ListenerConfiguration, fromLoopback: Bool) -> Bool {
        listener.allowAnonymous ?? auth.allowAnonymous ?? fromLoopback
    }
}

extension BrokerConfiguration {
    /// Clients refused outright: by address at accept (before any TLS handshake), by client id
    /// or user name at CONNECT (v5 CONNACK 0x8A Banned, v3 return code 5).
    public struct Bans: Sendable {
        public var clientIds: Set<String> = []
        public var usernames: Set<String> = []
        public var networks: [IPNetwork] = []

        public init() {}
    }
}
