/// MQTT topics and filters as NATS subjects, so that NATS's interest routing is MQTT's matching.
///
/// A topic's levels become tokens: `cars/VIN1/telemetry` → `tp.m.cars.VIN1.telemetry`. A level
/// keeps the printable ASCII characters NATS has no use for; every other byte (`.`, `*`, `>`,
/// `%`, spaces, control characters, each byte of a non-ASCII character) is written `%XX`, and an
/// empty level is the token `%` (a literal `%` is always `%25`), so every valid topic maps to
/// exactly one subject and back. In filters `+` becomes `*`, and `#` becomes `>` plus the parent
/// subject (MQTT's `#` also matches its parent level; NATS's `>` does not).
///
/// Topics starting with `$` live under `tp.d.` and the rest under `tp.m.`, so a filter starting
/// with a wildcard (`tp.m.>`) never matches them [MQTT-4.7.2-1]. `$SYS/…` is each node's own
/// and never crosses nodes.
public enum Subjects {
    /// The tokens after the configured prefix for plain and `$` topics.
    static let plain = "m", dollar = "d"

    /// The subject a message on `topic` is published on; nil for `$SYS/…`.
    public static func subject(forTopic topic: String, prefix: String) -> String? {
        if isNodeLocal(topic) { return nil }
        var out = prefix
        out += topic.utf8.first == UInt8(ascii: "$") ? "." + dollar : "." + plain
        for level in topic.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            out += "."
            appendLevel(level, to: &out)
        }
        return out
    }

    /// The subjects that carry what `filter` (no `$share/` prefix) matches: one, or two for a
    /// filter ending in `#` with a parent; none for `$SYS` filters.
    public static func subjects(forFilter filter: String, prefix: String) -> [String] {
        if isNodeLocal(filter) { return [] }
        let levels = filter.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        guard let first = levels.first else { return [] }
        let startsWithDollar = first.first == UInt8(ascii: "$")
        var base = prefix + "." + (startsWithDollar ? dollar : plain)
        var parent: String?
        for (i, level) in levels.enumerated() {
            if level.elementsEqual("#".utf8) {
                // `#` matches its parent level too: `a/#` also matches `a`. A lone `#` has no parent.
                if i > 0 { parent = base }
                base += ".>"
                break
            }
            base += "."
            if level.elementsEqual("+".utf8) { base += "*" } else { appendLevel(level, to: &base) }
        }
        return parent.map { [base, $0] } ?? [base]
    }

    /// The topic a subject carries, or nil when it is not one `subject(forTopic:)` makes.
    public static func topic(fromSubject subject: String, prefix: String) -> String? {
        let head = prefix + "."
        guard subject.hasPrefix(head) else { return nil }
        let rest = subject.utf8.dropFirst(head.utf8.count)
        var tokens = rest.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard tokens.count >= 2 else { return nil }
        let space = tokens.removeFirst()
        let isDollar: Bool
        if space.elementsEqual(plain.utf8) { isDollar = false } else if space.elementsEqual(dollar.utf8) { isDollar = true } else { return nil }
        var bytes: [UInt8] = []
        for (i, token) in tokens.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: "/")) }
            guard decodeLevel(token, into: &bytes) else { return nil }
        }
        guard let topic = String(validating: bytes, as: UTF8.self) else { return nil }
        // The namespace must agree with the topic, and the result must be a valid topic name.
        guard (topic.utf8.first == UInt8(ascii: "$")) == isDollar, !isNodeLocal(topic),
              !topic.utf8.contains(UInt8(ascii: "+")), !topic.utf8.contains(UInt8(ascii: "#")),
              !topic.utf8.contains(0) else { return nil }
        return topic
    }

    /// `$SYS` and everything below it.
    static func isNodeLocal(_ topicOrFilter: String) -> Bool {
        topicOrFilter == "$SYS" || topicOrFilter.hasPrefix("$SYS/")
    }

    /// Characters a level keeps as they are.
    @inline(__always)
    private static func isPlain(_ b: UInt8) -> Bool {
        b > 0x20 && b < 0x7F && b != UInt8(ascii: ".") && b != UInt8(ascii: "*") && b != UInt8(ascii: ">") && b != UInt8(ascii: "%")
    }

    private static func appendLevel<C: Collection<UInt8>>(_ level: C, to out: inout String) {
        if level.isEmpty { out += "%"; return }
        if level.allSatisfy(isPlain) {
            out += String(decoding: level, as: UTF8.self)
            return
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(level.count * 3)
        for b in level {
            if isPlain(b) { bytes.append(b) } else {
                bytes.append(UInt8(ascii: "%")); Hex.append(b, to: &bytes)
            }
        }
        out += String(decoding: bytes, as: UTF8.self)
    }

    private static func decodeLevel(_ token: Substring.UTF8View.SubSequence, into out: inout [UInt8]) -> Bool {
        if token.elementsEqual("%".utf8) { return true }           // the empty level
        guard !token.isEmpty else { return false }
        var i = token.startIndex
        while i != token.endIndex {
            let b = token[i]
            if b == UInt8(ascii: "%") {
                let h = token.index(after: i)
                guard h != token.endIndex else { return false }
                let l = token.index(after: h)
                guard l != token.endIndex, let hi = Hex.value(token[h]), let lo = Hex.value(token[l]) else { return false }
                let v = hi << 4 | lo
                guard !isPlain(v) else { return false }                 // one spelling per topic
                out.append(v)
                i = token.index(after: l)
            } else {
                guard isPlain(b) else { return false }
                out.append(b)
                i = token.index(after: i)
            }
        }
        return true
    }
}
