/// An MQTT topic filter split into levels once, for `=~` and for routing inputs to rules.
/// `+` matches one level, `#` the rest (including the parent level); filters starting with a
/// wildcard do not match topics starting with `$` (MQTT 5.0 §4.7.2).
public struct TopicFilter: Sendable, Equatable {
    public let text: String
    let levels: [Substring]

    /// nil when the filter is invalid (`#` not last, wildcards mixed into a level, empty).
    public init?(_ text: String) {
        guard !text.isEmpty else { return nil }
        let levels = text.split(separator: "/", omittingEmptySubsequences: false)
        for (i, level) in levels.enumerated() {
            if level.contains("#") && (level != "#" || i != levels.count - 1) { return nil }
            if level.contains("+") && level != "+" { return nil }
        }
        self.text = text
        self.levels = levels
    }

    public static func == (a: TopicFilter, b: TopicFilter) -> Bool { a.text == b.text }

    /// Whether `topic` (a topic name) matches this filter.
    public func matches(_ topic: String) -> Bool {
        if topic.hasPrefix("$"), let first = levels.first, first == "+" || first == "#" { return false }
        var t = topic.utf8[...]
        var li = 0
        while li < levels.count {
            let level = levels[li]
            if level == "#" { return true }
            // Take the next topic level.
            let slash = t.firstIndex(of: UInt8(ascii: "/"))
            let part = slash.map { t[t.startIndex..<$0] } ?? t
            if level != "+" && !level.utf8.elementsEqual(part) { return false }
            li += 1
            if let slash {
                t = t[t.index(after: slash)...]
                if li == levels.count { return false }
            } else {
                // Topic exhausted: matches if the filter is done or only `#` remains.
                return li == levels.count || (li == levels.count - 1 && levels[li] == "#")
            }
        }
        return false
    }
}
