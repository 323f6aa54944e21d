/// One entry of a `JSONTape`. Containers record where their subtree ends, so a lookup can skip a
/// whole member in one step; strings record their byte range in the payload, numbers their value.
struct JSONNode: Sendable {
    enum Kind: UInt8, Sendable {
        case object, array, string, int, float, `true`, `false`, null
    }

    var kind: Kind
    /// A string with backslash escapes (must be unescaped to compare or materialize).
    var escaped: Bool = false
    /// Containers: number of members (pairs for objects) or elements.
    var count: UInt32 = 0
    /// Strings: first byte after the opening quote.
    var start: UInt32 = 0
    /// Strings: the closing quote's offset. Containers: index of the node after the subtree.
    var end: UInt32 = 0
    /// `int`: the Int64 bit pattern; `float`: the Double bit pattern.
    var bits: UInt64 = 0
}
