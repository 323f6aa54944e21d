/// Base64 (RFC 4648 §4, with padding) for password files and base64url (§5, no padding) for JWTs.
/// Small and allocation-light; used only at CONNECT time and start-up, never per message.
public enum Base64 {
    private static let standard = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Standard alphabet with '=' padding, as mosquitto_passwd writes.
    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 2 < bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [standard[Int(n >> 18 & 63)], standard[Int(n >> 12 & 63)], standard[Int(n >> 6 & 63)], standard[Int(n & 63)]]
            i += 3
        }
        let rest = bytes.count - i
        if rest > 0 {
            var n = UInt32(bytes[i]) << 16
            if rest == 2 { n |= UInt32(bytes[i + 1]) << 8 }
            out += [standard[Int(n >> 18 & 63)], standard[Int(n >> 12 & 63)]]
            out += rest == 2 ? [standard[Int(n >> 6 & 63)], UInt8(ascii: "=")] : [UInt8(ascii: "="), UInt8(ascii: "=")]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes the standard alphabet ('=' padding optional); nil on any other character.
    public static func decode<S: StringProtocol>(_ text: S) -> [UInt8]? {
        decode(text.utf8, url: false)
    }

    /// Decodes base64url (RFC 7515 §2: '-' and '_', no padding); nil on any other character.
    public static func decodeURL<S: StringProtocol>(_ text: S) -> [UInt8]? {
        decode(text.utf8, url: true)
    }

    private static func value(_ c: UInt8, url: Bool) -> UInt32? {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return UInt32(c - UInt8(ascii: "A"))
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return UInt32(c - UInt8(ascii: "a") + 26)
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(c - UInt8(ascii: "0") + 52)
        case UInt8(ascii: "+") where !url, UInt8(ascii: "-") where url: return 62
        case UInt8(ascii: "/") where !url, UInt8(ascii: "_") where url: return 63
        default: return nil
        }
    }

    private static func decode<C: Collection<UInt8>>(_ input: C, url: Bool) -> [UInt8]? {
        var chars = Array(input)
        if !url {
            // Padding only at the end, at most two, and only to a multiple of four.
            var pad = 0
            while chars.last == UInt8(ascii: "=") { chars.removeLast(); pad += 1 }
            if pad > 2 || (pad > 0 && (chars.count + pad) % 4 != 0) { return nil }
        }
        if chars.count % 4 == 1 { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count * 3 / 4)
        var acc: UInt32 = 0
        var bits = 0
        for c in chars {
            guard let v = value(c, url: url) else { return nil }
            acc = acc << 6 | v
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        // Leftover bits must be zero (canonical encoding).
        if bits > 0 && acc & ((1 << UInt32(bits)) - 1) != 0 { return nil }
        return out
    }
}
