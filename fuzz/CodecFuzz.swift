// libFuzzer entry point for the MQTT decoder: every input must decode, ask for more bytes or
// throw a decode error, never crash; whatever decodes must re-encode and decode to the same packet.
import MQTTCodecFuzzed

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCodec(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    for version in [ProtocolVersion.v3_1_1, .v5] {
        let decoder = PacketDecoder(version: version, maximumPacketSize: 1 << 20)
        var offset = 0
        while offset < bytes.count {
            guard let result = try? decoder.decode(UnsafeRawBufferPointer(rebasing: bytes[offset...])),
                  let (packet, used) = Optional(result) else { break }
            precondition(used > 0 && used <= bytes.count - offset, "consumed count out of range")
            offset += used
            let v: ProtocolVersion
            if case .connect(let c) = packet { v = c.protocolVersion } else { v = version }
            var encoded: [UInt8] = []
            PacketEncoder.encode(packet, version: v, into: &encoded)
            let again = try? PacketDecoder(version: v, maximumPacketSize: 1 << 21).decode(encoded)
            precondition(again?.packet == packet, "round trip changed \(packet.type)")
        }
    }
    return 0
}
