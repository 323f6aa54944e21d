/// Rules indexed by their FROM filters, so a message runs only the rules whose filter matches its
/// topic (a trie walk, not a scan of every rule). Built once per rule set and never mutated, so
/// every loop reads it without a lock. Matching follows MQTT's rules (see TopicTree.swift):
/// '+' one level, '#' this level and below, no leading wildcard for '$' topics.
final class RuleIndex: Sendable {
    private final class Node: @unchecked Sendable {
        var children: [Substring: Node] = [:]
        var rules: [Int] = []
    }

    private let root = Node()
    let isEmpty: Bool

    /// `filters[i]` are the FROM filters of rule `i`.
    init(filters: [[String]]) {
        var any = false
        for (i, fs) in filters.enumerated() {
            for f in fs {
                var node = root
                for level in f.split(separator: "/", omittingEmptySubsequences: false) {
                    let key = Substring(String(level))
                    if let c = node.children[key] { node = c } else {
                        let c = Node()
                        node.children[key] = c
                        node = c
                    }
                }
                if !node.rules.contains(i) { node.rules.append(i) }
                any = true
            }
        }
        isEmpty = !any
    }

    /// Appends the indices of the rules matching `topic` to `out`, each once, in rule order.
    func match(_ topic: String, into out: inout [Int]) {
        let start = out.count
        let isDollar = topic.utf8.first == UInt8(ascii: "$")
        walk(root, Substring(topic), depth: 0, isDollar: isDollar, &out)
        if out.count - start > 1 {
            // Several filters may match: keep each rule once, in rule order, sorting in place
            // so the per-message path allocates nothing.
            out[start...].sort()
            var write = start + 1
            for read in (start + 1)..<out.count where out[read] != out[write - 1] {
                out[write] = out[read]
                write += 1
            }
            out.removeLast(out.count - write)
        }
    }

    private func walk(_ node: Node, _ topic: Substring, depth: Int, isDollar: Bool, _ out: inout [Int]) {
        let wildcards = !(depth == 0 && isDollar)
        if wildcards, let hash = node.children["#"] { out.append(contentsOf: hash.rules) }
        let (level, rest) = splitFirstLevel(topic)
        if let exact = node.children[level] { descend(exact, rest, depth: depth, isDollar: isDollar, &out) }
        if wildcards, let plus = node.children["+"] { descend(plus, rest, depth: depth, isDollar: isDollar, &out) }
    }

    private func descend(_ child: Node, _ rest: Substring?, depth: Int, isDollar: Bool, _ out: inout [Int]) {
        if let rest {
            walk(child, rest, depth: depth + 1, isDollar: isDollar, &out)
        } else {
            out.append(contentsOf: child.rules)
            // "a/#" also matches "a".
            if let hash = child.children["#"] { out.append(contentsOf: hash.rules) }
        }
    }
}
