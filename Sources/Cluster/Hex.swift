/// Hexadecimal digits for subjects (`%XX`), header values and registry keys.
enum Hex {
    static let digits = Array("0123456789ABCDEF".utf8)

    /// The value of an upper-case hex digit (`lowercase`: a lower-case one too).
    @inline(__always)
    static func value(_ c: UInt8, lowercase: Bool = false) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f") where lowercase: c - UInt8(ascii: "a") + 10
        default: nil
        }
    }

    /// Appends `b` as two digits.
    @inline(__always)
    static func append(_ b: UInt8, to out: inout [UInt8]) {
        out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 0x0F)])
    }

    static func encode<C: Collection<UInt8>>(_ bytes: C) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { append(b, to: &out) }
        return String(decoding: out, as: UTF8.self)
    }
}
