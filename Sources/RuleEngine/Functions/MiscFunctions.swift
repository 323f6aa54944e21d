/// uuid_v4, uuid_v4_no_hyphen, coalesce.
enum MiscFunctions {
    static func uuid(hyphens: Bool) -> String {
        var rng = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
        bytes[6] = bytes[6] & 0x0F | 0x40  // version 4
        bytes[8] = bytes[8] & 0x3F | 0x80  // RFC 4122 variant
        let hex = HashFunctions.hex(bytes)
        guard hyphens else { return hex }
        let h = Array(hex)
        return String(h[0..<8]) + "-" + String(h[8..<12]) + "-" + String(h[12..<16]) + "-" + String(h[16..<20]) + "-" + String(h[20..<32])
    }

    static let all: [BuiltinFunction] = [
        BuiltinFunction("uuid_v4", .nullary { () throws(EvalError) in .string(uuid(hyphens: true)) }, pure: false),
        BuiltinFunction("uuid_v4_no_hyphen", .nullary { () throws(EvalError) in .string(uuid(hyphens: false)) }, pure: false),
        // The first argument that is neither null nor undefined (EMQX 5 coalesce).
        BuiltinFunction("coalesce", arity: 1...Int.max) { args throws(EvalError) in
            args.first { !$0.isNull } ?? .undefined
        },
    ]
}
