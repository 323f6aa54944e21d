/// What `Store.open` had to do to open the directory.
public struct RecoveryReport: Sendable, CustomStringConvertible {
    /// The directory held no store and a new one was created.
    public var created: Bool = false
    /// `rocksdb_repair_db` rebuilt the MANIFEST from the SST and WAL files found; anything in a
    /// file it could not read is lost (RocksDB moves such files to `lost/`).
    public var repaired: Bool = false
    /// What was wrong, in RocksDB's words, naming the files it named.
    public var problems: [String] = []
    /// Files repair moved to `<directory>/lost/`: always the old MANIFEST and the WALs (their
    /// records were first copied into new SSTs), plus any SST it could not read, whose records are lost.
    public var lostFiles: [String] = []

    public init() {}

    /// Opened as it was, with nothing to report.
    public var isClean: Bool { !repaired && problems.isEmpty }

    public var description: String {
        if isClean { return created ? "created" : "clean" }
        var s = repaired ? "repaired" : "opened with problems"
        for p in problems { s += "; " + p }
        if !lostFiles.isEmpty { s += "; set aside in lost/: " + lostFiles.joined(separator: ", ") }
        return s
    }
}
