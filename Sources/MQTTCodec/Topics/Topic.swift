/// Topic names and filters (MQTT 3.1.1 §4.7, 5.0 §4.7, §4.8.2 shared subscriptions).
///
/// A note on matching, with the spec's own examples (§4.7.1):
/// - "sport/tennis/player1/#" matches "sport/tennis/player1", ".../ranking" and ".../score/wimbledon";
///   "sport/#" also matches the parent "sport" itself.
/// - "sport/tennis/+" matches "sport/tennis/player1" but not "sport/tennis/player1/ranking";
///   "sport/+" does not match "sport" but does match "sport/"; "+/+" and "/+" match "/finance".
/// - Invalid filters: "sport/tennis#", "sport/tennis/#/ranking", "sport+".
/// - Topics starting with '$' are not matched by filters starting with a wildcard [MQTT-4.7.2-1]:
///   "#" does not match "$SYS/x", "$SYS/#" does.
/// All checks work on UTF-8 bytes: '/', '+', '#' and '$' are ASCII and never occur inside a
/// multi-byte sequence, so no decoding is needed.
public enum Topic {
    private static let slash = UInt8(ascii: "/")
    private static let plus = UInt8(ascii: "+")
    private static let hash = UInt8(ascii: "#")
    private static let dollar = UInt8(ascii: "$")
    private static let sharePrefix: [UInt8] = Array("$share/".utf8)

    /// Non-empty, at most 65,535 UTF-8 bytes, no '+' or '#' [MQTT-3.3.2-2], no U+0000 [MQTT-4.7.3-2].
    public static func isValidName(_ topic: String) -> Bool {
        let utf8 = topic.utf8
        // [MQTT-4.7.3-1]: at least one character; [MQTT-4.7.3-3]: at most 65,535 bytes.
        guard !utf8.isEmpty, utf8.count <= 65_535 else { return false }
        for byte in utf8 where byte == plus || byte == hash || byte == 0 { return false }
        return true
    }

    /// Non-empty; '#' only last and alone in its level [MQTT-4.7.1-2]; '+' alone in its level
    /// [MQTT-4.7.1-3]; no U+0000. "$share/group/filter" is valid when the group is non-empty and has
    /// no '+', '#' or '/', and the filter is a valid non-shared filter (5.0 §4.8.2).
    public static func isValidFilter(_ filter: String) -> Bool {
        let utf8 = filter.utf8
        guard !utf8.isEmpty, utf8.count <= 65_535 else { return false }
        if utf8.starts(with: sharePrefix) {
            guard let (group, rest) = parseShared(filter), !group.utf8.isEmpty else { return false }
            for byte in group.utf8 where byte == plus || byte == hash || byte == 0 { return false }
            return isValidPlainFilter(rest.utf8)
        }
        return isValidPlainFilter(utf8)
    }

    private static func isValidPlainFilter(_ utf8: String.UTF8View) -> Bool {
        guard !utf8.isEmpty else { return false }
        var levelLength = 0          // bytes in the current level so far
        var levelHasWildcard = false // the current level is "+" or "#" so far
        var previousWasHash = false
        for byte in utf8 {
            if previousWasHash { return false } // '#' must be the last character
            switch byte {
            case 0:
                return false
            case slash:
                levelLength = 0
                levelHasWildcard = false
                continue
            case plus, hash:
                if levelLength != 0 { return false } // wildcard must start its level...
                levelHasWildcard = true
                previousWasHash = byte == hash
            default:
                if levelHasWildcard { return false } // ...and be alone in it
            }
            levelLength += 1
        }
        return true
    }

    /// Shared subscription split: "$share/g/a/b" -> ("g", "a/b"); nil for non-shared filters
    /// (those not starting with "$share/", or with no '/' after the group).
    /// The parts are not validated; `isValidFilter` does that.
    public static func parseShared(_ filter: String) -> (group: String, filter: String)? {
        let utf8 = filter.utf8
        guard utf8.starts(with: sharePrefix) else { return nil }
        let groupStart = utf8.index(utf8.startIndex, offsetBy: sharePrefix.count)
        guard let groupEnd = utf8[groupStart...].firstIndex(of: slash) else { return nil }
        let group = String(filter[groupStart..<groupEnd])
        let rest = String(filter[utf8.index(after: groupEnd)...])
        return (group, rest)
    }

    /// Does a (non-shared) filter match a topic name? '+' matches one level, '#' this level and all
    /// below (also the parent: "a/#" matches "a"); filters starting with a wildcard do not match
    /// topics starting with '$' [MQTT-4.7.2-1].
    public static func matches(filter: String, topic: String) -> Bool {
        let f = filter.utf8
        let t = topic.utf8
        guard let fFirst = f.first else { return false }
        if t.first == dollar && (fFirst == plus || fFirst == hash) { return false }

        var fi = f.startIndex
        var ti = t.startIndex
        while true {
            let fEnd = f[fi...].firstIndex(of: slash) ?? f.endIndex
            let fLevel = f[fi..<fEnd]
            if fLevel.count == 1 && fLevel.first == hash { return true }
            let tEnd = t[ti...].firstIndex(of: slash) ?? t.endIndex
            let isPlus = fLevel.count == 1 && fLevel.first == plus
            if !isPlus && !fLevel.elementsEqual(t[ti..<tEnd]) { return false }

            let filterDone = fEnd == f.endIndex
            let topicDone = tEnd == t.endIndex
            if filterDone { return topicDone }
            fi = f.index(after: fEnd)
            if topicDone {
                // The topic ran out first: only a trailing "/#" still matches (the parent rule).
                let rest = f[fi...]
                return rest.count == 1 && rest.first == hash
            }
            ti = t.index(after: tEnd)
        }
    }
}
