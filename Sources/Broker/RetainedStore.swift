import MQTTCodec
import Synchronization

/// Retained messages by topic. Replaced by each retained PUBLISH, cleared by an empty one.
/// Reads on SUBSCRIBE scan every entry unless the filter has no wildcard; a trie can replace
/// the scan when retained sets grow into the millions.
final class RetainedStore: @unchecked Sendable {
    private let messages = Mutex<[String: Message]>([:])

    /// Stores or clears; returns the new count.
    func store(_ message: Message) -> Int {
        messages.withLock { m in
            if message.payload.isEmpty { m[message.topic] = nil } else { m[message.topic] = message }
            return m.count
        }
    }

    var count: Int { messages.withLock { $0.count } }

    /// Every retained message not expired at `now`, by topic.
    func all(now: UInt64) -> [Message] {
        messages.withLock { m in m.values.filter { !$0.isExpired(now: now) } }.sorted { $0.topic < $1.topic }
    }

    func message(topic: String) -> Message? { messages.withLock { $0[topic] } }

    /// Retained messages matching a (non-shared) filter, dropping expired ones.
    func matching(_ filter: String, now: UInt64) -> [Message] {
        let hasWildcard = filter.utf8.contains(UInt8(ascii: "+")) || filter.utf8.contains(UInt8(ascii: "#"))
        return messages.withLock { m in
            if !hasWildcard {
                guard let msg = m[filter] else { return [] }
                if msg.isExpired(now: now) { m[filter] = nil; return [] }
                return [msg]
            }
            var out: [Message] = []
            var expired: [String] = []
            for (topic, msg) in m where Topic.matches(filter: filter, topic: topic) {
                if msg.isExpired(now: now) { expired.append(topic) } else { out.append(msg) }
            }
            for t in expired { m[t] = nil }
            return out.sorted { $0.topic < $1.topic }
        }
    }
}
