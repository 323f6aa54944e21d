import ArgumentParser
import Broker
import Foundation
import Storage

/// `turnpike storage check DIR`: what start-up would find in a data directory, without
/// starting the broker or changing anything in it.
struct StorageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storage",
        abstract: "Inspect the durable store.",
        subcommands: [Check.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a data directory's store: every file RocksDB reads, every record the broker decodes.",
            discussion: """
                Opens the store read-only, replays its write-ahead log strictly, reads every record with \
                checksums on and decodes it as start-up would. Prints the counts per keyspace and every \
                problem (naming the file or the record), and exits 0 when there is none, 1 otherwise. \
                Nothing in the directory is changed; start the broker to recover what can be recovered.
                """)

        @Argument(help: "The data directory (--data), or its store/ directory.")
        var directory: String = "data"

        func run() throws {
            let fm = FileManager.default
            let dir = fm.fileExists(atPath: directory + "/store") ? directory + "/store" : directory
            let report = StoreCheck.run(directory: dir, validate: StoredRecords.problem)
            print(report)
            if !report.isOK { throw ExitCode(1) }
        }
    }
}
