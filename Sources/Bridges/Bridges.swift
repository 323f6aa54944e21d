import Broker
import Logging

/// Makes the configured bridges (the executable reads `[bridges.<kind>.<name>]` into these).
public enum Bridges {
    public enum Kind: Sendable {
        case webhook(WebhookSettings)
        case kafka(KafkaSettings)
        case postgres(PostgresSettings)
    }

    public struct Definition: Sendable {
        public var name: String
        public var kind: Kind
        public var buffer: BufferSettings
        public init(name: String, kind: Kind, buffer: BufferSettings) {
            self.name = name; self.kind = kind; self.buffer = buffer
        }

        /// "webhook.crm".
        public var id: String {
            switch kind {
            case .webhook: "webhook.\(name)"
            case .kafka: "kafka.\(name)"
            case .postgres: "postgres.\(name)"
            }
        }
    }

    /// Starts one thread per bridge; `broker.installBridges` makes them reachable from rules.
    /// Throws when a sink's library refuses its configuration (checked at load already).
    public static func start(_ definitions: [Definition], broker: Broker, loops: Int, logger: Logger) throws -> [any BridgeSink] {
        try definitions.map { d in try start(d, broker: broker, loops: loops, logger: logger) }
    }

    /// Starts one bridge's thread.
    public static func start(_ d: Definition, broker: Broker, loops: Int, logger: Logger) throws -> any BridgeSink {
        let driver: any SinkDriver
        switch d.kind {
        case .webhook(let w): driver = WebhookDriver(settings: w)
        case .kafka(let k): driver = try KafkaDriver(settings: k)
        case .postgres(let p): driver = PostgresDriver(settings: p)
        }
        var buffer = d.buffer
        if case .webhook(let w) = d.kind { buffer.inflightWindow = w.poolSize }
        // One transaction in flight per connection.
        if case .postgres(let p) = d.kind { buffer.inflightWindow = p.poolSize }
        let b = BridgeBuffer(id: d.id, settings: buffer, driver: driver, loops: loops, broker: broker, logger: logger)
        b.start()
        logger.info("bridge \(d.id) started")
        return b
    }
}
