/// base64_encode base64_decode json_encode json_decode bin2hexstr hexstr2bin.
/// Decoders return text when the bytes are UTF-8 and a binary otherwise; malformed input is an
/// evaluation error. `bin2hexstr` is upper case (Erlang's `binary:encode_hex`).
enum EncodingFunctions {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func base64(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            for s in [18, 12, 6, 0] { out.append(alphabet[Int(n >> UInt32(s) & 63)]) }
            i += 3
        }
        let rest = bytes.count - i
        if rest > 0 {
            let n = UInt32(bytes[i]) << 16 | (rest == 2 ? UInt32(bytes[i + 1]) << 8 : 0)
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(rest == 2 ? alphabet[Int(n >> 6 & 63)] : UInt8(ascii: "="))
            out.append(UInt8(ascii: "="))
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func unbase64(_ text: [UInt8]) -> [UInt8]? {
        var values: [UInt8] = []
        var padding = 0
        for c in text {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): values.append(c - 65)
            case UInt8(ascii: "a")...UInt8(ascii: "z"): values.append(c - 71)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): values.append(c + 4)
            case UInt8(ascii: "+"), UInt8(ascii: "-"): values.append(62)
            case UInt8(ascii: "/"), UInt8(ascii: "_"): values.append(63)
            case UInt8(ascii: "="): padding += 1; continue
            case 10, 13, 32: continue
            default: return nil
            }
            if padding > 0 { return nil }  // data after '='
        }
        guard padding <= 2, values.count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        var i = 0
        while i < values.count {
            let chunk = values[i..<min(i + 4, values.count)]
            var n: UInt32 = 0
            for (k, v) in chunk.enumerated() { n |= UInt32(v) << UInt32(18 - 6 * k) }
            out.append(UInt8(n >> 16 & 255))
            if chunk.count > 2 { out.append(UInt8(n >> 8 & 255)) }
            if chunk.count > 3 { out.append(UInt8(n & 255)) }
            i += 4
        }
        return out
    }

    static func textOrBinary(_ bytes: [UInt8]) -> Value {
        String(validating: bytes, as: UTF8.self).map(Value.string) ?? .binary(bytes)
    }

    static let all: [BuiltinFunction] = [
        .unary("base64_encode") { v throws(EvalError) in .string(base64(try Arguments.bytes("base64_encode", v))) },
        .unary("base64_decode") { v throws(EvalError) in
            guard let bytes = unbase64(try Arguments.bytes("base64_decode", v)) else {
                throw EvalError("base64_decode: the input is not base64")
            }
            return textOrBinary(bytes)
        },
        .unary("json_encode") { v throws(EvalError) in .string(JSONWriter.string(v)) },
        .unary("json_decode") { v throws(EvalError) in
            let bytes = try Arguments.bytes("json_decode", v)
            guard let decoded = JSONTape(parsing: bytes).root else { throw EvalError("json_decode: the input is not JSON") }
            return decoded
        },
        .unary("bin2hexstr") { v throws(EvalError) in
            .string(HashFunctions.hex(try Arguments.bytes("bin2hexstr", v)).uppercased())
        },
        .unary("hexstr2bin") { v throws(EvalError) in
            let text = try Arguments.bytes("hexstr2bin", v)
            guard text.count % 2 == 0 else { throw EvalError("hexstr2bin: odd number of hex digits") }
            var out: [UInt8] = []
            out.reserveCapacity(text.count / 2)
            var i = 0
            while i < text.count {
                guard let hi = JSONScanner.hexValue(text[i]), let lo = JSONScanner.hexValue(text[i + 1]) else {
                    throw EvalError("hexstr2bin: '\(String(decoding: text, as: UTF8.self))' is not hex")
                }
                out.append(UInt8(hi << 4 | lo))
                i += 2
            }
            return textOrBinary(out)
        },
    ]
}
