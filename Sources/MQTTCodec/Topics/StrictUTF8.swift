/// The characters a strict receiver refuses in client identifiers, user names and topics.
///
/// MQTT 3.1.1 §1.5.3 and 5.0 §1.5.4 let a receiver treat a string containing a control
/// character (U+0001–U+001F, U+007F–U+009F) or a Unicode non-character as malformed. They are
/// never needed in an id or a topic, and accepted they end up in logs, `$SYS`, rule rows and
/// bridges. U+0000 is refused by the decoder whatever this policy says [MQTT-1.5.4-2].
public enum StrictUTF8 {
    /// The first refused character in `s`, or nil when it has none. ASCII strings (the usual
    /// case) are checked byte by byte; only strings with multi-byte characters are decoded.
    public static func firstRefused(in s: String) -> Unicode.Scalar? {
        var ascii = true
        for byte in s.utf8 {
            if byte < 0x20 || byte == 0x7F { return Unicode.Scalar(byte) }
            if byte >= 0x80 { ascii = false }
        }
        if ascii { return nil }
        for scalar in s.unicodeScalars where isRefused(scalar) { return scalar }
        return nil
    }

    /// A control character or a non-character (U+FDD0–U+FDEF and the last two code points of
    /// every plane, U+xFFFE and U+xFFFF).
    public static func isRefused(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if v < 0x20 || (0x7F...0x9F).contains(v) { return true }
        if (0xFDD0...0xFDEF).contains(v) { return true }
        return v & 0xFFFE == 0xFFFE
    }

    /// "U+001B" for log and reason-string text.
    public static func describe(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
}
