/// md5, sha (SHA-1) and sha256 of a string's bytes, as lowercase hex (EMQX).
enum HashFunctions {
    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    static let all: [BuiltinFunction] = [
        .unary("md5") { v throws(EvalError) in .string(hex(MD5.hash(try Arguments.bytes("md5", v)))) },
        .unary("sha") { v throws(EvalError) in .string(hex(SHA1.hash(try Arguments.bytes("sha", v)))) },
        .unary("sha256") { v throws(EvalError) in .string(hex(SHA256.hash(try Arguments.bytes("sha256", v)))) },
    ]
}
