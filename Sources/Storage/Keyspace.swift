/// One column family per kind of record. The raw value is the column family's name on disk, so
/// renaming a case orphans its data: add cases, never rename them.
public enum Keyspace: String, CaseIterable, Sendable {
    case sessions
    case messages
    case deliveries
    case retained
    case wills
    case bridges
    case meta

    /// Position in `allCases`, which is also the index of its column family handle in `Store`.
    @inline(__always)
    var index: Int {
        switch self {
        case .sessions: 0
        case .messages: 1
        case .deliveries: 2
        case .retained: 3
        case .wills: 4
        case .bridges: 5
        case .meta: 6
        }
    }
}
