/// A JSON document indexed in one pass into a flat array of nodes (no per-value allocation).
/// Field paths walk the tape comparing key bytes; values are materialized only when read.
/// An `EvaluationContext` keeps one tape per message and reuses its node buffer.
struct JSONTape {
    /// The nodes, valid while this tape is alive and not re-parsed.
    var nodes: UnsafeBufferPointer<JSONNode> { UnsafeBufferPointer(start: storage.base, count: count) }
    private(set) var bytes: [UInt8] = []
    /// False when the bytes were not one JSON value (then every path is `undefined`).
    private(set) var isValid = false
    private var storage = NodeStorage(capacity: 0)
    private var count = 0

    static let maximumDepth = 512

    init() {}

    init(parsing bytes: [UInt8]) {
        parse(bytes)
    }

    /// Indexes `bytes`, replacing what the tape held.
    mutating func parse(_ bytes: [UInt8]) {
        self.bytes = bytes
        // Every value takes at least one byte, so a node per byte (plus one) is always enough
        // for payloads up to 64 KiB: the scanner then writes through a pointer with no per-node
        // check but one compare. Bigger payloads start there and grow. A buffer left big by one
        // huge payload is given back when small ones follow.
        let wanted = Swift.min(bytes.count + 1, NodeStorage.preallocationLimit)
        if storage.capacity < wanted || !isKnownUniquelyReferenced(&storage)
            || (storage.capacity > NodeStorage.preallocationLimit && bytes.count < storage.capacity / 4) {
            storage = NodeStorage(capacity: Swift.max(wanted, 16))
        }
        var n = 0
        let ok = bytes.withUnsafeBufferPointer { p -> Bool in
            var scanner = JSONScanner(p: p, storage: storage)
            let ok = scanner.document()
            n = scanner.count
            return ok
        }
        count = ok ? n : 0
        isValid = ok
    }

    /// Index of the node after node `i`'s subtree.
    @inline(__always)
    func next(_ i: Int) -> Int {
        let n = nodes[i]
        return n.kind == .object || n.kind == .array ? Int(n.end) : i + 1
    }

    /// The value node of member `key` of the object at node `i`, or nil.
    func member(of i: Int, key: [UInt8]) -> Int? {
        guard nodes[i].kind == .object else { return nil }
        let end = Int(nodes[i].end)
        var j = i + 1
        return bytes.withUnsafeBufferPointer { p -> Int? in
            while j < end {
                let k = nodes[j]
                let length = Int(k.end - k.start)
                if k.escaped {
                    if Array(string(at: j).utf8) == key { return j + 1 }
                } else if length == key.count {
                    var equal = true
                    let base = Int(k.start)
                    for x in 0..<length where p[base + x] != key[x] { equal = false; break }
                    if equal { return j + 1 }
                }
                j = next(j + 1)
            }
            return nil
        }
    }

    /// The node of element `index` (1-based, negative from the end) of the array at node `i`.
    func element(of i: Int, index: Int) -> Int? {
        guard nodes[i].kind == .array else { return nil }
        let count = Int(nodes[i].count)
        let k: Int
        if index > 0 && index <= count { k = index - 1 } else if index < 0 && -index <= count { k = count + index } else { return nil }
        var j = i + 1
        for _ in 0..<k { j = next(j) }
        return j
    }

    /// The string at node `i`, escapes resolved.
    func string(at i: Int) -> String {
        let n = nodes[i]
        return bytes.withUnsafeBufferPointer { p in
            let raw = UnsafeBufferPointer(rebasing: p[Int(n.start)..<Int(n.end)])
            return n.escaped ? JSONScanner.unescape(raw) : String(decoding: raw, as: UTF8.self)
        }
    }

    /// Node `i` and its subtree as a `Value`.
    func value(at i: Int) -> Value {
        let n = nodes[i]
        switch n.kind {
        case .null: return .null
        case .true: return .bool(true)
        case .false: return .bool(false)
        case .number:
            return bytes.withUnsafeBufferPointer { p -> Value in
                var j = Int(n.start)
                var bits: UInt64 = 0
                // The scanner validated the syntax; only the conversion is left.
                switch NumberParser.scan(p, &j, &bits) {
                case 1: return .int(Int64(bitPattern: bits))
                case 2: return .float(Double(bitPattern: bits))
                default: return .undefined
                }
            }
        case .string: return .string(string(at: i))
        case .array:
            var items: [Value] = []
            items.reserveCapacity(Int(n.count))
            var j = i + 1
            while j < Int(n.end) { items.append(value(at: j)); j = next(j) }
            return .array(items)
        case .object:
            var keys: [String] = []
            var values: [Value] = []
            keys.reserveCapacity(Int(n.count)); values.reserveCapacity(Int(n.count))
            var j = i + 1
            while j < Int(n.end) {
                let key = string(at: j)
                let v = value(at: j + 1)
                // Duplicate keys: the last one wins, as in most JSON decoders.
                if let existing = keys.firstIndex(of: key) { values[existing] = v } else { keys.append(key); values.append(v) }
                j = next(j + 1)
            }
            return .map(ValueMap(keys: keys, values: values))
        }
    }

    /// The whole document, or nil when it was not valid JSON.
    var root: Value? { isValid && !nodes.isEmpty ? value(at: 0) : nil }
}

/// The tape's node buffer (JSONNode is trivial: no initialization or deinitialization needed).
final class NodeStorage {
    /// Most nodes preallocated (a node per payload byte plus one): payloads up to 64 KiB never
    /// make the buffer grow while being indexed.
    static let preallocationLimit = 65_537
    private(set) var base: UnsafeMutablePointer<JSONNode>
    private(set) var capacity: Int

    init(capacity: Int) {
        self.capacity = Swift.max(capacity, 1)
        base = UnsafeMutablePointer<JSONNode>.allocate(capacity: self.capacity)
    }

    /// Doubles the buffer, keeping the first `used` nodes.
    func grow(keeping used: Int) {
        let bigger = UnsafeMutablePointer<JSONNode>.allocate(capacity: capacity * 2)
        bigger.moveInitialize(from: base, count: used)
        base.deallocate()
        base = bigger
        capacity *= 2
    }

    deinit { base.deallocate() }
}
