import Broker
import CLibPQ
import Glibc
import Synchronization

/// `[bridges.postgres.<name>]`.
public struct PostgresSettings: Sendable {
    /// A libpq connection string: "host=127.0.0.1 port=5432 dbname=fleet user=turnpike" or
    /// "postgresql://turnpike@127.0.0.1/fleet".
    public var dsn: String
    /// Connections per bridge: 1 only for now (one connection, one transaction at a time).
    public var poolSize = 1

    public init(dsn: String) { self.dsn = dsn }

    /// Throws libpq's message when it cannot parse the DSN (checked at start-up; no connection).
    public func validate() throws {
        var err: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(dsn, &err) else {
            let message = err.map { String(cString: $0) } ?? "out of memory"
            if let err { PQfreemem(err) }
            throw PostgresError(description: message.trimmingTrailingNewlines)
        }
        PQconninfoFree(options)
    }
}

public struct PostgresError: Error, CustomStringConvertible {
    public var description: String
}

extension String {
    var trimmingTrailingNewlines: String {
        var s = Substring(self)
        while let l = s.last, l == "\n" || l == " " { s = s.dropLast() }
        return String(s)
    }
}

/// Rule records into PostgreSQL through libpq: one connection per bridge, one transaction per
/// request (BEGIN, one `PQexecParams` per record with its values as text parameters, COMMIT).
///
/// libpq's calls block: that is acceptable here because `send` runs on the bridge's own thread
/// (never on a reactor loop), and `inflight_window` is 1 for this kind of bridge, so `send` does
/// the whole request and `wait` only hands back what finished.
///
/// Outcomes: a connection that is down or lost, a serialization failure or any other error
/// that is not the record's fault → `.retriable` for the records not committed (the connection
/// is reset on the next send). SQLSTATE class 22 (data exception), 23 (integrity constraint) or
/// 42 (syntax error, undefined table or column) → `.permanent` for that record only: the
/// transaction is rolled back and run again without it, so nothing is committed twice and the
/// others are committed together.
final class PostgresDriver: SinkDriver, @unchecked Sendable {
    let maxBatch = 10_000
    private let settings: PostgresSettings
    private var conn: OpaquePointer?
    private var finished: [(id: UInt64, outcomes: [Outcome])] = []
    /// `wakeUp` writes a byte, `wait` polls the read end.
    private var wakePipe: [Int32] = [-1, -1]
    private let closed = Atomic<Bool>(false)

    init(settings: PostgresSettings) {
        self.settings = settings
        _ = pipe(&wakePipe)
        for fd in wakePipe { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
    }

    /// Connected, or why not: a new connection the first time, `PQreset` after a failure.
    private func connect() -> String? {
        if conn == nil {
            // connect_timeout = 10 s unless the DSN sets its own (later keywords win): an
            // unreachable host must not hold the bridge's thread for the kernel's TCP timeout.
            let keys = [strdup("connect_timeout"), strdup("dbname"), nil]
            let values = [strdup(Self.defaultConnectTimeout), strdup(settings.dsn), nil]
            defer { for p in keys + values { free(p) } }
            conn = keys.map { UnsafePointer($0) }.withUnsafeBufferPointer { k in
                values.map { UnsafePointer($0) }.withUnsafeBufferPointer { v in
                    PQconnectdbParams(k.baseAddress, v.baseAddress, 1)
                }
            }
        } else if PQstatus(conn) != CONNECTION_OK {
            PQreset(conn)
        }
        guard let conn else { return "out of memory" }
        if PQstatus(conn) != CONNECTION_OK { return "cannot connect: " + Self.message(conn) }
        return nil
    }

    static let defaultConnectTimeout = "10"

    private static func message(_ conn: OpaquePointer) -> String {
        String(cString: PQerrorMessage(conn)).trimmingTrailingNewlines
    }

    /// The result of one command: nil when it succeeded, else (SQLSTATE, message).
    private func exec(_ sql: String, _ parameters: [[UInt8]?] = []) -> (state: String, message: String)? {
        guard let conn else { return ("08003", "no connection") }
        let result: OpaquePointer?
        if parameters.isEmpty {
            result = PQexec(conn, sql)
        } else {
            // Text-format parameters: NUL-terminated copies (PostgreSQL text cannot hold NUL).
            var copies: [UnsafeMutablePointer<CChar>?] = parameters.map { p in
                guard let p else { return nil }
                let c = UnsafeMutablePointer<CChar>.allocate(capacity: p.count + 1)
                p.withUnsafeBytes { b in
                    if let base = b.baseAddress { memcpy(c, base, p.count) }
                }
                c[p.count] = 0
                return c
            }
            defer { for c in copies { c?.deallocate() } }
            result = copies.withUnsafeMutableBufferPointer { values in
                values.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: values.count) { v in
                    PQexecParams(conn, sql, Int32(parameters.count), nil, v, nil, nil, 0)
                }
            }
        }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        if status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK { return nil }
        if let result, let s = PQresultErrorField(result, Int32(UInt8(ascii: "C"))) {
            var text = Self.message(conn)
            if let m = PQresultErrorMessage(result) { text = String(cString: m).trimmingTrailingNewlines }
            return (String(cString: s), text.replacingPrefix("ERROR:  "))
        }
        return ("08006", Self.message(conn))
    }

    /// The record's own fault (data, integrity, syntax or undefined object): never going to work.
    private static func isPermanent(_ state: String) -> Bool {
        state.hasPrefix("22") || state.hasPrefix("23") || state.hasPrefix("42")
    }

    func send(_ records: [BridgeRecord], id: UInt64) {
        finished.append((id, run(records)))
    }

    private func run(_ records: [BridgeRecord]) -> [Outcome] {
        var outcomes = [Outcome?](repeating: nil, count: records.count)
        func rest(_ o: Outcome) -> [Outcome] { outcomes.map { $0 ?? o } }
        if let why = connect() { return rest(.retriable(why)) }
        // Each pass is one transaction over the records not yet refused; a refused record is
        // taken out and the pass rolled back and run again.
        pass: while true {
            if let e = exec("BEGIN") { return rest(.retriable(e.message)) }
            for (i, r) in records.enumerated() where outcomes[i] == nil {
                guard let e = exec(r.target, r.parameters) else { continue }
                _ = exec("ROLLBACK")
                if Self.isPermanent(e.state) {
                    outcomes[i] = .permanent("SQLSTATE \(e.state): \(e.message)")
                    continue pass
                }
                return rest(.retriable("SQLSTATE \(e.state): \(e.message)"))
            }
            if let e = exec("COMMIT") {
                // A lost connection during COMMIT leaves it unknown whether it committed; it is
                // retried (the only case where a record may be written twice).
                return rest(.retriable("COMMIT: SQLSTATE \(e.state): \(e.message)"))
            }
            return rest(.delivered)
        }
    }

    func wait(timeoutMs: Int) -> [(id: UInt64, outcomes: [Outcome])] {
        if finished.isEmpty && timeoutMs > 0 {
            var p = pollfd(fd: wakePipe[0], events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, Int32(timeoutMs))
        }
        var buf = [UInt8](repeating: 0, count: 64)
        while read(wakePipe[0], &buf, buf.count) > 0 {}
        defer { finished.removeAll(keepingCapacity: true) }
        return finished
    }

    func wakeUp() {
        guard !closed.load(ordering: .acquiring) else { return }
        var b: UInt8 = 1
        _ = write(wakePipe[1], &b, 1)
    }

    deinit { close() }

    func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if let conn { PQfinish(conn) }
        conn = nil
        for fd in wakePipe where fd >= 0 { Glibc.close(fd) }
    }
}

extension String {
    func replacingPrefix(_ p: String) -> String { hasPrefix(p) ? String(dropFirst(p.count)) : self }
}
