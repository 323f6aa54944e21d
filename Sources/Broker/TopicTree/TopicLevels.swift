/// Splits off the first level of a topic name without allocating: ("a", "b/c") for "a/b/c",
/// ("a", nil) for "a", ("", "x") for "/x". Shared by the subscription trie and the rule index.
@inline(__always)
func splitFirstLevel(_ topic: Substring) -> (level: Substring, rest: Substring?) {
    if let slash = topic.utf8.firstIndex(of: UInt8(ascii: "/")) {
        return (topic[topic.startIndex..<slash], topic[topic.utf8.index(after: slash)...])
    }
    return (topic, nil)
}
