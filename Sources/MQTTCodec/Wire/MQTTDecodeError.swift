/// Why bytes could not be decoded.
///
/// `reasonCode` is what a v5 server puts in its DISCONNECT (or CONNACK, for a broken CONNECT):
/// - `.malformedPacket` (0x81): the bytes cannot be parsed (MQTT 5.0 §4.13.1, e.g. bad flags, bad UTF-8,
///   a read past the end of the packet, an unknown or misplaced property);
/// - `.protocolError` (0x82): the packet parses but carries something the protocol forbids
///   (a duplicate property, Receive Maximum 0, packet identifier 0, ...);
/// - `.packetTooLarge` (0x95): the packet exceeds `PacketDecoder.maximumPacketSize`;
/// - `.unsupportedProtocolVersion` (0x84): CONNECT with an unknown protocol name or level;
/// - `.topicNameInvalid` (0x90): a PUBLISH or will topic containing wildcards;
/// - `.topicAliasInvalid` (0x94): a Topic Alias of 0.
///
/// A v3 server has no reason codes on the wire: it simply closes the connection (or, for
/// `.unsupportedProtocolVersion`, answers CONNACK 0x01 first).
public struct MQTTDecodeError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reasonCode: ReasonCode
    /// Names the broken rule, e.g. "remaining length overlong encoding [MQTT-1.5.5-1]".
    public var message: String

    public init(reasonCode: ReasonCode, message: String) {
        self.reasonCode = reasonCode
        self.message = message
    }

    public var description: String { "\(message) (reason code \(reasonCode))" }

    /// The bytes cannot be parsed (0x81).
    public static func malformed(_ message: String) -> MQTTDecodeError {
        MQTTDecodeError(reasonCode: .malformedPacket, message: message)
    }

    /// The packet parses but breaks a protocol rule (0x82).
    public static func protocolError(_ message: String) -> MQTTDecodeError {
        MQTTDecodeError(reasonCode: .protocolError, message: message)
    }

    /// The whole packet (fixed header included) is larger than the receiver's limit (0x95).
    public static func tooLarge(size: Int, maximum: Int) -> MQTTDecodeError {
        MQTTDecodeError(reasonCode: .packetTooLarge,
                        message: "packet of \(size) bytes exceeds maximum packet size \(maximum)")
    }

    /// CONNECT with a protocol name or level this server does not speak (0x84).
    public static func unsupportedVersion(_ message: String) -> MQTTDecodeError {
        MQTTDecodeError(reasonCode: .unsupportedProtocolVersion, message: message)
    }

    /// A topic name that is not allowed where it appears (0x90).
    public static func topicNameInvalid(_ message: String) -> MQTTDecodeError {
        MQTTDecodeError(reasonCode: .topicNameInvalid, message: message)
    }

    /// A Topic Alias the receiver cannot accept (0x94).
    public static func topicAliasInvalid(_ message: String) -> MQTTDecodeError {
        MQTTDecodeError(reasonCode: .topicAliasInvalid, message: message)
    }
}
