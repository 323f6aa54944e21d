import Broker
import CLibPQ
import DequeModule
import Glibc
import Synchronization

/// `[bridges.postgres.<name>]`.
public struct PostgresSettings: Sendable {
    /// A libpq connection string: "host=127.0.0.1 port=5432 dbname=fleet user=turnpike" or
    /// "postgresql://turnpike@127.0.0.1/fleet".
    public var dsn: String
    /// Connections per bridge, each with one transaction (one request) in flight.
    public var poolSize = 4

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

/// Rule records into PostgreSQL through libpq: `pool_size` connections, each carrying one
/// request at a time as one transaction, all driven from the bridge's thread without blocking
/// on any of them (non-blocking sockets, `poll`).
///
/// A request goes out as one pipeline (libpq pipeline mode): per record a prepared INSERT
/// (`PQsendQueryPrepared`; each distinct SQL text is prepared once per connection, in the same
/// pipeline before its first use), then a sync point. The statements between two sync points
/// are one implicit transaction, committed at the sync: the whole request costs one round trip
/// and one commit.
///
/// Outcomes: a connection that is down or lost, a serialization failure or any other error
/// that is not the record's fault → `.retriable` for the records not committed (the connection
/// is made again on the next send). SQLSTATE class 22 (data exception), 23 (integrity
/// constraint) or 42 (syntax error, undefined table or column) → `.permanent` for that record
/// only: the failed transaction is rolled back by the server (a pipeline stops at the first
/// error) and the request is sent again without it, so nothing is committed twice and the
/// others are committed together. A statement that cannot be prepared (class 42) is permanent
/// for every record of the request that uses it.
final class PostgresDriver: SinkDriver, @unchecked Sendable {
    let maxBatch = 10_000
    private let settings: PostgresSettings
    private var connections: [PGConnection] = []
    private var finished: [(id: UInt64, outcomes: [Outcome])] = []
    /// `wakeUp` writes a byte, `wait` polls the read end.
    private var wakePipe: [Int32] = [-1, -1]
    private let closed = Atomic<Bool>(false)
    private var fds: [pollfd] = []

    init(settings: PostgresSettings) {
        self.settings = settings
        connections = (0..<max(1, settings.poolSize)).map { _ in PGConnection(dsn: settings.dsn) }
        _ = pipe(&wakePipe)
        for fd in wakePipe { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
    }

    static let defaultConnectTimeout = "10"

    /// The record's own fault (data, integrity, syntax or undefined object): never going to work.
    static func isPermanent(_ state: String) -> Bool {
        state.hasPrefix("22") || state.hasPrefix("23") || state.hasPrefix("42")
    }

    func send(_ records: [BridgeRecord], id: UInt64) {
        // The buffer's window is pool_size, so one connection is free.
        guard let c = connections.first(where: { !$0.isBusy }) else {
            finished.append((id, records.map { _ in .retriable("no free connection") }))
            return
        }
        if let done = c.start(records, id: id) { finished.append(done) }
    }

    func wait(timeoutMs: Int) -> [(id: UInt64, outcomes: [Outcome])] {
        fds.removeAll(keepingCapacity: true)
        fds.append(pollfd(fd: wakePipe[0], events: Int16(POLLIN), revents: 0))
        for c in connections where c.isBusy {
            fds.append(pollfd(fd: c.socket, events: Int16(POLLIN) | (c.wantsWrite ? Int16(POLLOUT) : 0), revents: 0))
        }
        _ = poll(&fds, nfds_t(fds.count), Int32(finished.isEmpty ? timeoutMs : 0))
        var buf = [UInt8](repeating: 0, count: 64)
        while read(wakePipe[0], &buf, buf.count) > 0 {}
        var i = 1
        for c in connections where c.isBusy {
            let revents = fds[i].revents
            i += 1
            guard revents != 0 else { continue }
            if let done = c.progress() { finished.append(done) }
        }
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
        for c in connections { c.close() }
        for fd in wakePipe where fd >= 0 { Glibc.close(fd) }
    }
}

/// One libpq connection in pipeline mode and the request it carries.
final class PGConnection {
    private let dsn: String
    private var conn: OpaquePointer?
    /// SQL text → the name it is prepared under on this connection (reset with the connection).
    private var prepared: [String: String] = [:]
    /// Prepares sent in the pass under way, not yet confirmed.
    private var preparing: [String: String] = [:]
    private var nextName = 0

    /// What the server will answer next, in pipeline order.
    private enum Expected { case prepare(String), record(Int), sync }
    private var expected = Deque<Expected>()
    /// The head of `expected` has had its result (its NULL terminator is next).
    private var headAnswered = false

    private struct Request {
        var id: UInt64
        var records: [BridgeRecord]
        var outcomes: [Outcome?]
        /// The first error of the pass under way: (what failed, SQLSTATE, message).
        var failure: (Expected, String, String)?
    }
    private var request: Request?
    var isBusy: Bool { request != nil }
    private(set) var wantsWrite = false
    var socket: Int32 { conn.map { PQsocket($0) } ?? -1 }

    // Reused per record: the parameters, NUL-terminated, one after the other.
    private var scratch: [CChar] = []
    private var offsets: [Int] = []
    private var pointers: [UnsafePointer<CChar>?] = []

    init(dsn: String) { self.dsn = dsn }

    private static func message(_ conn: OpaquePointer?) -> String {
        guard let conn else { return "out of memory" }
        return String(cString: PQerrorMessage(conn)).trimmingTrailingNewlines
    }

    /// Connected in pipeline mode, or why not: a new connection after any failure.
    private func connect() -> String? {
        if let c = conn, PQstatus(c) == CONNECTION_OK, PQpipelineStatus(c) == PQ_PIPELINE_ON { return nil }
        if let c = conn { PQfinish(c) }
        prepared.removeAll()
        // connect_timeout = 10 s unless the DSN sets its own (later keywords win): an
        // unreachable host must not hold the bridge's thread for the kernel's TCP timeout.
        let keys = [strdup("connect_timeout"), strdup("dbname"), nil]
        let values = [strdup(PostgresDriver.defaultConnectTimeout), strdup(dsn), nil]
        defer { for p in keys + values { free(p) } }
        conn = keys.map { UnsafePointer($0) }.withUnsafeBufferPointer { k in
            values.map { UnsafePointer($0) }.withUnsafeBufferPointer { v in
                PQconnectdbParams(k.baseAddress, v.baseAddress, 1)
            }
        }
        guard let c = conn else { return "out of memory" }
        if PQstatus(c) != CONNECTION_OK { return "cannot connect: " + Self.message(c) }
        if PQsetnonblocking(c, 1) != 0 || PQenterPipelineMode(c) != 1 {
            return "cannot enter pipeline mode: " + Self.message(c)
        }
        return nil
    }

    /// Starts a request; returns its outcomes when it is over at once (no connection).
    func start(_ records: [BridgeRecord], id: UInt64) -> (id: UInt64, outcomes: [Outcome])? {
        request = Request(id: id, records: records, outcomes: Array(repeating: nil, count: records.count))
        if let why = connect() { return end(rest: .retriable(why)) }
        return sendPass()
    }

    /// One pipeline over the records not yet decided, ending in a sync point.
    private func sendPass() -> (id: UInt64, outcomes: [Outcome])? {
        guard let c = conn, var r = request else { return nil }
        r.failure = nil
        request = r
        expected.removeAll(keepingCapacity: true)
        headAnswered = false
        preparing.removeAll(keepingCapacity: true)
        for i in r.records.indices where r.outcomes[i] == nil {
            let record = r.records[i]
            let sql = record.target
            var name = prepared[sql] ?? preparing[sql]
            if name == nil {
                nextName += 1
                let n = "turnpike_\(nextName)"
                guard PQsendPrepare(c, n, sql, 0, nil) == 1 else { return lost() }
                expected.append(.prepare(sql))
                preparing[sql] = n
                name = n
            }
            guard bind(record.parameters, { PQsendQueryPrepared(c, name!, Int32(record.parameters.count), $0, nil, nil, 0) }) == 1 else {
                return lost()
            }
            expected.append(.record(i))
        }
        guard PQpipelineSync(c) == 1 else { return lost() }
        expected.append(.sync)
        return flush()
    }

    /// Calls `body` with the parameters as C strings (NULL for SQL NULL), without allocating
    /// once the scratch buffers have grown (libpq copies the values into its output buffer).
    private func bind(_ parameters: [[UInt8]?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> Int32) -> Int32 {
        scratch.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        for p in parameters {
            guard let p else { offsets.append(-1); continue }
            offsets.append(scratch.count)
            // Text-format parameters: PostgreSQL text cannot hold NUL, so a value ends at one.
            p.withUnsafeBytes { b in scratch.append(contentsOf: b.bindMemory(to: CChar.self)) }
            scratch.append(0)
        }
        return scratch.withUnsafeBufferPointer { base in
            pointers.removeAll(keepingCapacity: true)
            for o in offsets { pointers.append(o < 0 ? nil : base.baseAddress! + o) }
            return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
        }
    }

    private func flush() -> (id: UInt64, outcomes: [Outcome])? {
        guard let c = conn else { return nil }
        switch PQflush(c) {
        case 0: wantsWrite = false
        case 1: wantsWrite = true
        default: return lost()
        }
        return nil
    }

    /// The socket is readable or writable: sends what is buffered, reads what arrived, and
    /// returns the request's outcomes once it is over.
    func progress() -> (id: UInt64, outcomes: [Outcome])? {
        guard let c = conn, request != nil else { return nil }
        if wantsWrite, let done = flush() { return done }
        guard PQconsumeInput(c) == 1 else { return lost() }
        while !expected.isEmpty && PQisBusy(c) == 0 {
            guard let res = PQgetResult(c) else {
                // The end of one command's results.
                if headAnswered { expected.removeFirst(); headAnswered = false; continue }
                break
            }
            defer { PQclear(res) }
            let status = PQresultStatus(res)
            if status == PGRES_PIPELINE_SYNC {
                expected.removeFirst()          // the sync point: no NULL follows it
                headAnswered = false
                if let done = passEnded() { return done }
                continue
            }
            headAnswered = true
            let head = expected.first
            if status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK {
                if case .prepare(let sql)? = head, let n = preparing[sql] { prepared[sql] = n }
                continue
            }
            // Only the first error of a pass counts; the commands after it did not run.
            guard status != PGRES_PIPELINE_ABORTED, request?.failure == nil, let head else { continue }
            let state = PQresultErrorField(res, Int32(UInt8(ascii: "C"))).map { String(cString: $0) } ?? "08006"
            var text = Self.message(c)
            if let m = PQresultErrorMessage(res) { text = String(cString: m).trimmingTrailingNewlines }
            request?.failure = (head, state, text.replacingPrefix("ERROR:  "))
        }
        if PQstatus(c) != CONNECTION_OK { return lost() }
        return nil
    }

    /// A sync point came back: the pass committed, or what its first error decides.
    private func passEnded() -> (id: UInt64, outcomes: [Outcome])? {
        guard var r = request else { return nil }
        guard let (what, state, message) = r.failure else { return end(rest: .delivered) }
        let why = "SQLSTATE \(state): \(message)"
        guard PostgresDriver.isPermanent(state) else { return end(rest: .retriable(why)) }
        switch what {
        case .record(let i):
            r.outcomes[i] = .permanent(why)
        case .prepare(let sql):
            for i in r.records.indices where r.outcomes[i] == nil && r.records[i].target == sql {
                r.outcomes[i] = .permanent(why)
            }
        case .sync:
            return end(rest: .retriable(why))
        }
        request = r
        if r.outcomes.allSatisfy({ $0 != nil }) { return end(rest: .delivered) }
        return sendPass()      // the rest again, without the refused records
    }

    /// The connection failed: every record not decided is retried; the next send reconnects.
    private func lost() -> (id: UInt64, outcomes: [Outcome])? {
        let why = Self.message(conn)
        if let c = conn { PQfinish(c) }
        conn = nil
        wantsWrite = false
        expected.removeAll()
        return end(rest: .retriable(why.isEmpty ? "connection lost" : why))
    }

    private func end(rest: Outcome) -> (id: UInt64, outcomes: [Outcome])? {
        guard let r = request else { return nil }
        request = nil
        return (r.id, r.outcomes.map { $0 ?? rest })
    }

    func close() {
        if let c = conn { PQfinish(c) }
        conn = nil
    }
}

extension String {
    func replacingPrefix(_ p: String) -> String { hasPrefix(p) ? String(dropFirst(p.count)) : self }
}
