import XCTest
@testable import MQTTCodec

/// Encodes `packet`, then checks that the decoder gives it back when the bytes arrive whole, one
/// byte at a time (nil until the last byte), and concatenated with other packets.
func assertRoundTrip(_ packet: Packet, _ version: ProtocolVersion,
                     file: StaticString = #filePath, line: UInt = #line) {
    var bytes: [UInt8] = []
    PacketEncoder.encode(packet, version: version, into: &bytes)
    XCTAssertEqual(bytes.count, PacketEncoder.size(of: packet, version: version), "size(of:)", file: file, line: line)
    let decoder = PacketDecoder(version: version)
    do {
        // Whole.
        let whole = try decoder.decode(bytes)
        XCTAssertEqual(whole?.packet, packet, "whole", file: file, line: line)
        XCTAssertEqual(whole?.consumed, bytes.count, "consumed", file: file, line: line)

        // Byte by byte: every proper prefix needs more bytes.
        let prefixResult: Result<Void, MQTTDecodeError> = bytes.withUnsafeBytes { raw in
            Result { () throws(MQTTDecodeError) in
                for n in 0..<raw.count {
                    if let early = try decoder.decode(UnsafeRawBufferPointer(rebasing: raw[..<n])) {
                        XCTFail("decoded \(early.packet) from a \(n)-byte prefix of \(raw.count)", file: file, line: line)
                        return
                    }
                }
            }
        }
        try prefixResult.get()

        // Concatenated: a PINGREQ, the packet twice, a PINGRESP; consumed counts add up.
        var stream: [UInt8] = [0xC0, 0x00]
        PacketEncoder.encode(packet, version: version, into: &stream)
        PacketEncoder.encode(packet, version: version, into: &stream)
        stream += [0xD0, 0x00]
        var offset = 0
        var decoded: [Packet] = []
        while offset < stream.count {
            guard let next = try decoder.decode(Array(stream[offset...])) else {
                XCTFail("stream stalled at offset \(offset)", file: file, line: line)
                return
            }
            decoded.append(next.packet)
            offset += next.consumed
        }
        XCTAssertEqual(decoded, [.pingreq, packet, packet, .pingresp], "stream", file: file, line: line)
        XCTAssertEqual(offset, stream.count, file: file, line: line)
    } catch {
        XCTFail("round trip of \(packet) in \(version) threw \(error); bytes \(hex(bytes))", file: file, line: line)
    }
}

/// Asserts that decoding `bytes` throws with `reasonCode`, and returns the error's message.
@discardableResult
func assertDecodeError(_ bytes: [UInt8], version: ProtocolVersion = .v3_1_1, maximumPacketSize: Int = 268_435_460,
                       _ reasonCode: ReasonCode, file: StaticString = #filePath, line: UInt = #line) -> String? {
    let decoder = PacketDecoder(version: version, maximumPacketSize: maximumPacketSize)
    do {
        let result = try decoder.decode(bytes)
        XCTFail("expected \(reasonCode), got \(String(describing: result))", file: file, line: line)
        return nil
    } catch {
        XCTAssertEqual(error.reasonCode, reasonCode, error.message, file: file, line: line)
        XCTAssertFalse(error.message.isEmpty, file: file, line: line)
        return error.message
    }
}

/// A packet with a correct remaining length around `body`.
func frame(_ firstByte: UInt8, _ body: [UInt8]) -> [UInt8] {
    var out = [firstByte]
    PacketEncoder.appendVarInt(body.count, &out)
    return out + body
}

/// A length-prefixed UTF-8 string (or binary) field.
func str(_ s: String) -> [UInt8] { bin(Array(s.utf8)) }
func bin(_ b: [UInt8]) -> [UInt8] { [UInt8(b.count >> 8), UInt8(b.count & 0xFF)] + b }

/// A v5 property block: property length, then the given property bytes.
func props(_ bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    PacketEncoder.appendVarInt(bytes.count, &out)
    return out + bytes
}

func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef")
    return bytes.map { String([digits[Int($0 >> 4)], digits[Int($0 & 0xF)]]) }.joined(separator: " ")
}

/// SplitMix64: a small seeded generator so fuzz runs are reproducible.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
