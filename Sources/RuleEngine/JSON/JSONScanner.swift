/// The one-pass JSON indexer behind `JSONTape` (RFC 8259 syntax, depth-limited).
struct JSONScanner {
    let p: UnsafeBufferPointer<UInt8>
    /// Where the nodes go; `out` and `capacity` mirror it and change only when it grows.
    let storage: NodeStorage
    private var out: UnsafeMutablePointer<JSONNode>
    private var capacity: Int
    var i = 0
    /// Nodes written so far.
    var count = 0

    init(p: UnsafeBufferPointer<UInt8>, storage: NodeStorage) {
        self.p = p
        self.storage = storage
        out = storage.base
        capacity = storage.capacity
    }

    @inline(__always)
    private mutating func emit(_ node: JSONNode) {
        if count == capacity {
            storage.grow(keeping: count)
            out = storage.base
            capacity = storage.capacity
        }
        (out + count).initialize(to: node)
        count += 1
    }

    /// One value and only whitespace around it.
    mutating func document() -> Bool {
        skipSpace()
        guard value(depth: 0) else { return false }
        skipSpace()
        return i == p.count
    }

    @inline(__always)
    private mutating func skipSpace() {
        while i < p.count {
            let c = p[i]
            if c == 32 || c == 10 || c == 13 || c == 9 { i += 1 } else { return }
        }
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let n = word.utf8CodeUnitCount
        guard i + n <= p.count else { return false }
        let w = word.utf8Start
        for k in 0..<n where p[i + k] != w[k] { return false }
        i += n
        return true
    }

    private mutating func value(depth: Int) -> Bool {
        guard i < p.count, depth < JSONTape.maximumDepth else { return false }
        switch p[i] {
        case UInt8(ascii: "{"):
            let index = count
            emit(JSONNode(kind: .object))
            i += 1
            skipSpace()
            var members: UInt32 = 0
            if i < p.count && p[i] == UInt8(ascii: "}") {
                i += 1
            } else {
                while true {
                    skipSpace()
                    guard i < p.count, p[i] == UInt8(ascii: "\""), string() else { return false }
                    skipSpace()
                    guard i < p.count, p[i] == UInt8(ascii: ":") else { return false }
                    i += 1
                    skipSpace()
                    guard value(depth: depth + 1) else { return false }
                    members += 1
                    skipSpace()
                    guard i < p.count else { return false }
                    if p[i] == UInt8(ascii: ",") { i += 1; continue }
                    if p[i] == UInt8(ascii: "}") { i += 1; break }
                    return false
                }
            }
            out[index].count = members
            out[index].end = UInt32(self.count)
            return true
        case UInt8(ascii: "["):
            let index = count
            emit(JSONNode(kind: .array))
            i += 1
            skipSpace()
            var members: UInt32 = 0
            if i < p.count && p[i] == UInt8(ascii: "]") {
                i += 1
            } else {
                while true {
                    skipSpace()
                    guard value(depth: depth + 1) else { return false }
                    members += 1
                    skipSpace()
                    guard i < p.count else { return false }
                    if p[i] == UInt8(ascii: ",") { i += 1; continue }
                    if p[i] == UInt8(ascii: "]") { i += 1; break }
                    return false
                }
            }
            out[index].count = members
            out[index].end = UInt32(self.count)
            return true
        case UInt8(ascii: "\""):
            return string()
        case UInt8(ascii: "t"):
            guard literal("true") else { return false }
            emit(JSONNode(kind: .true)); return true
        case UInt8(ascii: "f"):
            guard literal("false") else { return false }
            emit(JSONNode(kind: .false)); return true
        case UInt8(ascii: "n"):
            guard literal("null") else { return false }
            emit(JSONNode(kind: .null)); return true
        default:
            let start = i
            guard NumberParser.skip(p, &i) else { return false }
            emit(JSONNode(kind: .number, start: UInt32(start), end: UInt32(i)))
            return true
        }
    }

    /// A string starting at the opening quote.
    private mutating func string() -> Bool {
        i += 1
        let start = i
        var escaped = false
        while i < p.count {
            let c = p[i]
            if c == UInt8(ascii: "\"") {
                emit(JSONNode(kind: .string, escaped: escaped, start: UInt32(start), end: UInt32(i)))
                i += 1
                return true
            }
            if c == UInt8(ascii: "\\") {
                escaped = true
                guard i + 1 < p.count else { return false }
                switch p[i + 1] {
                case UInt8(ascii: "u"):
                    guard i + 5 < p.count else { return false }
                    for k in 2...5 where JSONScanner.hexValue(p[i + k]) == nil { return false }
                    i += 6
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                     UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    i += 2
                default:
                    return false
                }
                continue
            }
            if c < 0x20 { return false }
            i += 1
        }
        return false
    }

    static func hexValue(_ c: UInt8) -> UInt32? {
        switch c {
        case 48...57: return UInt32(c - 48)
        case 65...70: return UInt32(c - 55)
        case 97...102: return UInt32(c - 87)
        default: return nil
        }
    }

    /// The text of an already-validated string body with escapes resolved.
    static func unescape(_ raw: UnsafeBufferPointer<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = 0
        func hex4(_ at: Int) -> UInt32 {
            var v: UInt32 = 0
            for k in 0..<4 where at + k < raw.count { v = v << 4 | (hexValue(raw[at + k]) ?? 0) }
            return v
        }
        func appendScalar(_ v: UInt32) {
            let scalar = Unicode.Scalar(v) ?? "\u{FFFD}"
            out.append(contentsOf: String(Character(scalar)).utf8)
        }
        while i < raw.count {
            let c = raw[i]
            guard c == UInt8(ascii: "\\"), i + 1 < raw.count else { out.append(c); i += 1; continue }
            let e = raw[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "n"): out.append(10)
            case UInt8(ascii: "t"): out.append(9)
            case UInt8(ascii: "r"): out.append(13)
            case UInt8(ascii: "b"): out.append(8)
            case UInt8(ascii: "f"): out.append(12)
            case UInt8(ascii: "u"):
                var v = hex4(i)
                i += 4
                if v >= 0xD800 && v < 0xDC00, i + 5 < raw.count + 0, raw[i] == UInt8(ascii: "\\"), i + 1 < raw.count, raw[i + 1] == UInt8(ascii: "u") {
                    let low = hex4(i + 2)
                    if low >= 0xDC00 && low < 0xE000 {
                        v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00)
                        i += 6
                    }
                }
                appendScalar(v)
            default: out.append(e)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
