import DequeModule
import EventLoop
import MQTTCodec
import Synchronization

/// A subscription as the session remembers it (the router holds the matching index).
struct SubscriptionRecord {
    var options: SubscriptionOptions
    var identifier: UInt32?
}

/// A session's subscriptions by filter. Most sessions have one (a car's `cars/<vin>/cmd`), and a
/// dictionary of one costs ~130 bytes, so one is kept inline and a dictionary is made for the
/// second. Iterates as the dictionary did, as (key: filter, value: record), in no set order.
struct SubscriptionTable: Sequence {
    typealias Element = (key: String, value: SubscriptionRecord)
    private enum Storage {
        case none
        case one(String, SubscriptionRecord)
        case many([String: SubscriptionRecord])
    }
    private var storage = Storage.none

    init() {}

    subscript(filter: String) -> SubscriptionRecord? {
        get {
            switch storage {
            case .none: return nil
            case .one(let f, let r): return f == filter ? r : nil
            case .many(let d): return d[filter]
            }
        }
        set {
            switch storage {
            case .none:
                if let newValue { storage = .one(filter, newValue) }
            case .one(let f, let r):
                if f == filter {
                    storage = newValue.map { .one(filter, $0) } ?? .none
                } else if let newValue {
                    storage = .many([f: r, filter: newValue])
                }
            case .many(var d):
                storage = .none // d unique: no copy on write
                d[filter] = newValue
                if d.count == 1, let (f, r) = d.first { storage = .one(f, r) } else if !d.isEmpty { storage = .many(d) }
            }
        }
    }

    var count: Int {
        switch storage {
        case .none: return 0
        case .one: return 1
        case .many(let d): return d.count
        }
    }

    var isEmpty: Bool { count == 0 }

    var keys: [String] { map(\.key) }

    mutating func removeAll() { storage = .none }

    func makeIterator() -> Array<Element>.Iterator {
        switch storage {
        case .none: return [].makeIterator()
        case .one(let f, let r): return [(f, r)].makeIterator()
        case .many(let d): return d.map { ($0.key, $0.value) }.makeIterator()
        }
    }
}

/// A QoS 1/2 message sent to the client and not yet fully acknowledged.
struct OutboundMessage {
    enum State { case awaitingPubAck, awaitingPubRec, awaitingPubComp }
    let packetId: UInt16
    let message: Message
    let qos: QoS
    let retain: Bool
    let identifiers: [UInt32]
    let group: SharedGroup?
    var state: State
    /// Its record in the durable store (`deliveries`), 0 when it has none.
    var storeSeq: UInt64 = 0
}

/// A message waiting for room in the inflight window (or for the client to come back).
struct QueuedMessage {
    let message: Message
    let qos: QoS
    let retain: Bool
    let identifiers: [UInt32]
    let group: SharedGroup?
    /// Its record in the durable store (`deliveries`), 0 when it has none.
    var storeSeq: UInt64 = 0
}

/// The MQTT session of one client id: subscriptions, QoS 1/2 state and queued messages. It
/// outlives connections while its expiry interval allows. All of its state belongs to the loop
/// named by `ownerIndex`; other loops reach it only through that loop's mailbox.
final class Session: @unchecked Sendable {
    // Layout: declaration order is memory order, so words first, then the small fields; what
    // most sessions never use (a pending will, inbound QoS 2 ids, drop counts) sits in `extras`:
    // 200 → 117 bytes per session.
    let clientId: String
    /// The loop that owns this session; changes only on a hand-over, on the old owner's thread.
    let ownerIndex: Atomic<Int>
    var subscriptions = SubscriptionTable()
    var inflight: [OutboundMessage] = []
    var queue: Deque<QueuedMessage> = []
    var connection: Connection?
    private var extras: SessionExtras?
    var expiryTimer: LoopTimer?
    /// Wall-clock ms: when it was created, when its last connection closed (0 while connected).
    let createdAt = Int64(wallClockMicroseconds() / 1000)
    var disconnectedAt: Int64 = 0
    /// Seconds the session outlives its connection; 0xFFFFFFFF never expires.
    var expiryInterval: UInt32 = 0
    private var lastPacketId: UInt16 = 0
    private let connectedFlag = Atomic<Bool>(false)
    /// Expiry > 0 and not ended: it outlives its connection, so the durable store keeps it.
    /// Readable from any loop (a publisher stores deliveries to offline durable sessions).
    private let durableFlag = Atomic<Bool>(false)
    /// Its session record is in the store.
    var isPersisted = false
    /// Its pending will is in the store.
    var willPersisted = false
    /// It replaced (clean start) a durable session whose records may still be in the store.
    var replacesStored = false
    /// Ended: removed from the registry and the router; deliveries to it are dropped.
    var isDead = false
    var protocolVersion: ProtocolVersion = .v3_1_1

    /// Readable from any loop (shared subscriptions prefer connected members).
    var isConnected: Bool { connectedFlag.load(ordering: .relaxed) }
    var isDurable: Bool { durableFlag.load(ordering: .relaxed) }
    func setDurable(_ on: Bool) { durableFlag.store(on, ordering: .relaxed) }

    /// A will waiting for its delay (or the session end).
    var pendingWill: Will? {
        get { extras?.will }
        set { if newValue != nil || extras != nil { madeExtras().will = newValue } }
    }
    var willTimer: LoopTimer? {
        get { extras?.willTimer }
        set { if newValue != nil || extras != nil { madeExtras().willTimer = newValue } }
    }
    /// Inbound QoS 2 packet ids received and not yet released (exactly-once, method A).
    var inboundQoS2: Set<UInt16> {
        get { extras?.inboundQoS2 ?? [] }
        _modify { yield &madeExtras().inboundQoS2 }
    }
    var droppedMessages: Int {
        get { extras?.droppedMessages ?? 0 }
        set { madeExtras().droppedMessages = newValue }
    }
    /// When a drop was last logged (monotonic ms).
    var lastDropLog: UInt64 {
        get { extras?.lastDropLog ?? 0 }
        set { madeExtras().lastDropLog = newValue }
    }
    /// This node handed the session to another one and still collects what reaches it until
    /// that node has its subscriptions on NATS (SessionTransfer.swift); ends it if never asked.
    var departureTimer: LoopTimer? {
        get { extras?.departureTimer }
        set { if newValue != nil || extras != nil { madeExtras().departureTimer = newValue } }
    }
    /// The session arrived from another node, which still collects what reaches it there:
    /// deliveries here wait in this list until that rest is merged in front of them.
    var arrivalHold: [Delivery]? {
        get { extras?.arrivalHold }
        _modify { yield &madeExtras().arrivalHold }
    }
    var holdsArrivals: Bool { extras?.arrivalHold != nil }
    /// A move on to another node waiting for this arrival to complete.
    var afterArrival: (() -> Void)? {
        get { extras?.afterArrival }
        set { if newValue != nil || extras != nil { madeExtras().afterArrival = newValue } }
    }
    private func madeExtras() -> SessionExtras {
        if let extras { return extras }
        let e = SessionExtras()
        extras = e
        return e
    }

    init(clientId: String, owner: Int) {
        self.clientId = clientId
        self.ownerIndex = Atomic(owner)
    }

    var owner: Int { ownerIndex.load(ordering: .acquiring) }

    func setConnected(_ on: Bool) { connectedFlag.store(on, ordering: .relaxed) }

    /// After a restart: new packet ids continue after the highest one in flight.
    func restorePacketIds() {
        lastPacketId = inflight.map(\.packetId).max() ?? 0
    }

    /// A packet id not used by any inflight message.
    func nextPacketId() -> UInt16 {
        while true {
            lastPacketId = lastPacketId == 0xFFFF ? 1 : lastPacketId + 1
            if !inflight.contains(where: { $0.packetId == lastPacketId }) { return lastPacketId }
        }
    }
}

/// What most sessions never need: a will waiting for its delay and the timer that publishes it,
/// inbound QoS 2 ids, dropped-message figures.
private final class SessionExtras {
    var will: Will?
    var willTimer: LoopTimer?
    var inboundQoS2: Set<UInt16> = []
    var droppedMessages = 0
    var lastDropLog: UInt64 = 0
    var departureTimer: LoopTimer?
    var arrivalHold: [Delivery]?
    var afterArrival: (() -> Void)?
}
