/// The outcome of `StoreCheck.run`: what a read-only look at a store directory found.
public struct CheckReport: Sendable, CustomStringConvertible {
    public let directory: String
    /// Every keyspace opened and every record's checksum verified.
    public var isOK: Bool { problems.isEmpty }
    /// Records per keyspace, counted by iteration; absent when it could not be counted.
    public var counts: [Keyspace: Int] = [:]
    /// SST plus WAL bytes in the directory.
    public var bytesOnDisk: Int = 0
    /// What is wrong, in RocksDB's words (which name the damaged files).
    public var problems: [String] = []

    public init(directory: String) { self.directory = directory }

    public var description: String {
        var s = "\(directory): " + (isOK ? "ok" : "damaged")
        for ks in Keyspace.allCases {
            s += "\n  \(ks.rawValue): " + (counts[ks].map(String.init) ?? "?")
        }
        s += "\n  bytes on disk: \(bytesOnDisk)"
        for p in problems { s += "\n  problem: " + p }
        return s
    }
}
