/// One entry of a `JSONTape`. Containers record where their subtree ends, so a lookup can skip a
/// whole member in one step; strings and numbers record their byte range in the payload (a
/// number is converted only when a rule reads it: most of a telemetry payload never is).
struct JSONNode: Sendable {
    enum Kind: UInt8, Sendable {
        case object, array, string, number, `true`, `false`, null
    }

    var kind: Kind
    /// A string with backslash escapes (must be unescaped to compare or materialize).
    var escaped: Bool = false
    /// Containers: number of members (pairs for objects) or elements.
    var count: UInt32 = 0
    /// Strings: first byte after the opening quote. Numbers: first byte.
    var start: UInt32 = 0
    /// Strings: the closing quote's offset. Numbers: the offset after the last byte.
    /// Containers: index of the node after the subtree.
    var end: UInt32 = 0
}
