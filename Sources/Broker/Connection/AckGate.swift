import EventLoop
import MQTTCodec

/// An acknowledgement (PUBACK, PUBREC, PUBCOMP) that waits before it may leave: for the commit
/// of what its packet wrote (durability "sync", Broker+Persistence.swift) and for the sinks of
/// the packet's `ack = 'after_sink'` rule actions (Broker+Rules.swift). A connection's gates
/// leave strictly in the order their packets arrived [MQTT-4.6.0-2]; one that waits for
/// nothing still waits behind those before it.
final class AckGate {
    let packet: Packet
    /// Confirmations still to come.
    var waiting: Int
    /// Why it cannot be a success (a failed commit, a sink that gave up, `ack_timeout`).
    var failure: String?
    /// The sink confirmations it waits for (LoopContext.sinkGates), and the ack_timeout timer.
    var tickets: [UInt64] = []
    var timer: LoopTimer?

    init(packet: Packet, waiting: Int) {
        self.packet = packet
        self.waiting = waiting
    }

    var isPubAck: Bool {
        if case .puback = packet { return true }
        return false
    }
}

/// Identifies one record's confirmation: the publisher's loop and a number unique on it.
public struct AckTicket: Sendable, Hashable {
    public let loop: Int
    public let id: UInt64
}
