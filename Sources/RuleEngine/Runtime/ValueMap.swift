/// A map that keeps insertion order (so output rows and JSON keep the order they were written in).
/// Rows have a handful of keys, so lookup is a linear scan; the keys array of a compiled SELECT is
/// shared by every row it produces.
public struct ValueMap: Sendable, Equatable, Sequence {
    public private(set) var keys: [String]
    public private(set) var values: [Value]

    public init() {
        keys = []
        values = []
    }

    /// Keys must be unique.
    public init(keys: [String], values: [Value]) {
        precondition(keys.count == values.count, "ValueMap: keys and values differ in count")
        self.keys = keys
        self.values = values
    }

    public init(_ pairs: KeyValuePairs<String, Value>) {
        self.init()
        for (k, v) in pairs { self[k] = v }
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    public func index(of key: String) -> Int? {
        for i in keys.indices where keys[i] == key { return i }
        return nil
    }

    /// Reading gives nil when absent; writing appends or replaces; writing `.undefined` removes.
    public subscript(key: String) -> Value? {
        get { index(of: key).map { values[$0] } }
        set {
            if let i = index(of: key) {
                if let newValue, !newValue.isUndefined {
                    values[i] = newValue
                } else {
                    keys.remove(at: i); values.remove(at: i)
                }
            } else if let newValue, !newValue.isUndefined {
                keys.append(key); values.append(newValue)
            }
        }
    }

    /// Appends without checking for an existing key (the caller knows it is new).
    mutating func appendUnchecked(_ key: String, _ value: Value) {
        keys.append(key)
        values.append(value)
    }

    mutating func reserveCapacity(_ n: Int) {
        keys.reserveCapacity(n)
        values.reserveCapacity(n)
    }

    public func makeIterator() -> Zip2Sequence<[String], [Value]>.Iterator {
        zip(keys, values).makeIterator()
    }

    /// Maps are equal when they hold the same keys with equal values, in any order.
    public static func == (a: ValueMap, b: ValueMap) -> Bool {
        guard a.count == b.count else { return false }
        for (k, v) in a {
            guard let w = b[k], w == v else { return false }
        }
        return true
    }
}
