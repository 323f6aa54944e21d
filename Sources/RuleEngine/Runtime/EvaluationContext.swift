/// Per-message state shared by every rule evaluated for that message: the input and the lazily
/// built JSON index of its payload (decoded at most once, however many rules read it).
/// Confined to one thread; reuse one per reactor loop with `reset(_:)` so buffers keep capacity.
public final class EvaluationContext {
    public private(set) var input: RuleInput
    private var tape = JSONTape()
    private var tapeReady = false
    private var payloadText: Value?
    /// FOREACH item slots (one per nested FOREACH level in use).
    var locals: [Value] = []
    /// How many times a payload was JSON-indexed by this context (for tests and metrics).
    public private(set) var payloadDecodeCount = 0

    public init(_ input: RuleInput) {
        self.input = input
    }

    /// Starts a new message, keeping the buffers.
    public func reset(_ input: RuleInput) {
        self.input = input
        tapeReady = false
        payloadText = nil
    }

    /// Runs `body` on the payload's JSON index (built on first use) without copying it.
    @inline(__always)
    func withPayloadTape<R, E: Error>(_ body: (borrowing JSONTape) throws(E) -> R) throws(E) -> R {
        if !tapeReady {
            tape.parse(input.payload)
            tapeReady = true
            payloadDecodeCount += 1
        }
        return try body(tape)
    }

    /// `payload` itself: text when it is UTF-8 (EMQX treats payloads as strings), else binary.
    func payloadValue() -> Value {
        if let payloadText { return payloadText }
        let v: Value = String(validating: input.payload, as: UTF8.self).map(Value.string) ?? .binary(input.payload)
        payloadText = v
        return v
    }

    /// The value of an input field.
    func value(of field: Field) -> Value {
        switch field {
        case .id: return .string(input.id)
        case .clientid: return .string(input.clientid)
        case .username: return input.username.map(Value.string) ?? .null
        case .topic: return .string(input.topic)
        case .qos: return .int(Int64(input.qos))
        case .retain: return .bool(input.retain)
        case .flags: return .map(ValueMap(keys: ["dup", "retain"], values: [.bool(input.dup), .bool(input.retain)]))
        case .payload: return payloadValue()
        case .peerhost: return .string(input.peerhost)
        case .timestamp: return .int(input.timestamp)
        case .publishReceivedAt: return .int(input.publishReceivedAt)
        case .pubProps:
            var props = ValueMap()
            for p in input.userProperties { props[p.name] = .string(p.value) }
            return .map(ValueMap(keys: ["User-Property"], values: [.map(props)]))
        case .node: return .string(input.node)
        case .event: return .string(input.event.rawValue)
        case .peername: return .string(input.peername)
        case .sockname: return .string(input.sockname)
        case .protoName: return .string(input.protoName)
        case .protoVer: return .int(Int64(input.protoVer))
        case .keepalive: return .int(Int64(input.keepalive))
        case .cleanStart: return .bool(input.cleanStart)
        case .expiryInterval: return .int(input.expiryInterval)
        case .connectedAt: return .int(input.connectedAt)
        case .disconnectedAt: return .int(input.disconnectedAt)
        case .reason: return .string(input.reason)
        case .fromClientid: return .string(input.fromClientid)
        case .fromUsername: return input.fromUsername.map(Value.string) ?? .null
        }
    }
}
