/// Every input field a rule can name, across messages and events. The compiler turns a name into
/// one of these once; evaluation reads it with a switch, never a string lookup.
public enum Field: String, Sendable, CaseIterable {
    case id, clientid, username, topic, qos, retain, flags, payload, peerhost, timestamp
    case publishReceivedAt = "publish_received_at"
    case pubProps = "pub_props"
    case node, event, peername, sockname
    case protoName = "proto_name"
    case protoVer = "proto_ver"
    case keepalive
    case cleanStart = "clean_start"
    case expiryInterval = "expiry_interval"
    case connectedAt = "connected_at"
    case disconnectedAt = "disconnected_at"
    case reason
    case fromClientid = "from_clientid"
    case fromUsername = "from_username"

    /// The SQL name (EMQX's spelling).
    public var name: String { rawValue }
}
