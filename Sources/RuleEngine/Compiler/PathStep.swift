/// One step of a compiled field path: a key (its UTF-8 bytes precomputed for the JSON tape), a
/// constant 1-based index, or an index computed per message.
enum PathStep: Sendable {
    case key(String, [UInt8])
    case index(Int)
    case dynamic(CompiledExpression)
}
