// No CRocksDB import here: fuzz/run.sh compiles this file standalone with the record codec.

/// The storage layer's one error: what went wrong, RocksDB's (or the decoder's) own text, and
/// where in our code it was raised.
public struct StorageError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What kind of failure, so callers can decide without parsing `message`.
    public enum Code: Sendable, Equatable {
        /// Bytes on disk (or in a record) are not what was written: checksum, bad magic, truncation.
        case corruption
        /// The file system failed or refused: ENOSPC, EIO, a missing file, a held lock.
        case io
        /// The caller asked for something impossible (bad options, a missing directory).
        case invalidArgument
        /// The store was closed before or during the call.
        case closed
        /// Anything RocksDB reports that fits none of the above (busy, aborted, not supported).
        case other
    }

    public let code: Code
    public let message: String
    public let file: String
    public let line: Int

    public init(code: Code, message: String, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.file = file
        self.line = line
    }

    public var description: String { "storage \(code): \(message) [\(file):\(line)]" }

    /// Equal when code and message are; where it was raised does not matter.
    public static func == (a: StorageError, b: StorageError) -> Bool { a.code == b.code && a.message == b.message }

    /// A record (or key) that does not decode.
    public static func corruption(_ message: String, file: String = #fileID, line: Int = #line) -> StorageError {
        StorageError(code: .corruption, message: message, file: file, line: line)
    }

    /// A call on a store after `close()`.
    public static func closed(file: String = #fileID, line: Int = #line) -> StorageError {
        StorageError(code: .closed, message: "the store is closed", file: file, line: line)
    }

    /// Classifies one of RocksDB's `Status::ToString()` texts ("Corruption: ...", "IO error: ...").
    public static func rocksDB(_ message: String, file: String = #fileID, line: Int = #line) -> StorageError {
        let code: Code
        if message.hasPrefix("Corruption") { code = .corruption }
        else if message.hasPrefix("IO error") { code = .io }
        else if message.hasPrefix("Invalid argument") || message.hasPrefix("Not implemented") { code = .invalidArgument }
        else { code = .other }
        return StorageError(code: code, message: message, file: file, line: line)
    }
}
