// sessionbench: a million persistent sessions in one process, on the broker's own code
// (Broker.SessionBenchmark: registry, Session, topic tree, Broker.publish, the store), no sockets.
//
//   swift build -c release --product sessionbench && .build/release/sessionbench [options]
//   make bench-sessions      # the same, report in bench/results/<date>-sessions.md
//
// For each N (default 10,000, 100,000 and 1,000,000) a fresh broker (threads 1, durability
// none) gets N car sessions: MQTT 5, clean start 0, session expiry 1 day, a 17-character VIN
// as client id, one QoS 1 subscription to cars/<vin>/cmd, then disconnected (offline, expiry
// timer armed); and 4 backend sessions, also offline:
//   backend-ingest-1, backend-ingest-2  $share/ingest/cars/+/telemetry  (QoS 1: one of the two gets each)
//   backend-analytics                   cars/+/telemetry                (QoS 1)
//   backend-alerts                      cars/+/event/#                  (QoS 1: in the tree, matches neither)
// It reports memory per car session (RSS and malloc'd bytes, per stage), the cost of a
// subscription, and the cost of routing one QoS 1 publish to cars/<random vin>/cmd (one
// delivery: that car) and to cars/<random vin>/telemetry (two deliveries: one ingest member and
// analytics): Broker.publish on the loop (fresh Message, match, enqueue on the offline
// session's queue), and the match alone, in --rounds rounds over every size (all brokers stay
// up) so that other load on the machine hits each size alike. Routing is checked flat:
// 1M/10k ≤ 1.5 (exit status 1 if not).
// Then (--store N, default 1,000,000) the same sessions are written through the broker's own
// store writes (durability sync) into a temporary data directory, the broker is shut down, and
// a new one is opened on it: restart time (open + recovery), memory after it, and routing
// again with the store (each delivery to an offline durable session is stored).
import Broker
import CSystemShims
import Logging
#if canImport(Glibc)
import Glibc
#endif

// MARK: Options

var sizes = [10_000, 100_000, 1_000_000]
var storeSessions = 1_000_000
var routeCount = 200_000
var batchSize = 250
var rounds = 5
var jsonPath: String?
var markdownPath: String?
do {
    var args = CommandLine.arguments.dropFirst()
    func value(_ name: String) -> String {
        guard let v = args.popFirst() else { print("sessionbench: \(name) needs a value"); exit(2) }
        return v
    }
    while let a = args.popFirst() {
        switch a {
        case "--sizes": sizes = value(a).split(separator: ",").map { Int(String($0.filter { $0 != "_" }))! }
        case "--store": storeSessions = Int(value(a))!
        case "--routes": routeCount = Int(value(a))!
        case "--batch": batchSize = Int(value(a))!
        case "--rounds": rounds = Int(value(a))!
        case "--json": jsonPath = value(a)
        case "--markdown": markdownPath = value(a)
        default:
            print("""
                usage: sessionbench [--sizes 10000,100000,1000000] [--store 1000000 (0: skip)] [--routes 200000]
                                    [--rounds 5] [--batch 250] [--json FILE] [--markdown FILE]
                """)
            exit(2)
        }
    }
}

extension String {
    func replacingOccurrences(of a: String, with b: String) -> String { split(separator: a, omittingEmptySubsequences: false).joined(separator: b) }
}

func log(_ s: String) {
    fputs(s + "\n", stderr)
}

// MARK: Memory and clocks

struct Memory {
    var rss: Int
    var malloced: Int

    static func now() -> Memory {
        var rss = 0
        if let f = fopen("/proc/self/statm", "r") {
            var size = 0, resident = 0
            withUnsafeMutablePointer(to: &size) { s in
                withUnsafeMutablePointer(to: &resident) { r in
                    _ = withVaList([s, r]) { vfscanf(f, "%ld %ld", $0) }
                }
            }
            fclose(f)
            rss = resident * Int(sysconf(Int32(_SC_PAGESIZE)))
        }
        return Memory(rss: rss, malloced: Int(cshim_malloc_in_use()))
    }

    static func - (a: Memory, b: Memory) -> Memory { Memory(rss: a.rss - b.rss, malloced: a.malloced - b.malloced) }
}

func settle() -> Memory {
    _ = cshim_malloc_trim()
    return Memory.now()
}

func seconds(_ ns: UInt64) -> Double { Double(ns) / 1e9 }

// MARK: Workload

/// 17-character VINs, distinct per index.
func vin(_ i: Int) -> String {
    var digits = String(i)
    digits = String(repeating: "0", count: max(0, 11 - digits.count)) + digits
    return "1TPKE4" + digits
}

struct Backend {
    let id: String
    let filter: String
}

let backends = [
    Backend(id: "backend-ingest-1", filter: "$share/ingest/cars/+/telemetry"),
    Backend(id: "backend-ingest-2", filter: "$share/ingest/cars/+/telemetry"),
    Backend(id: "backend-analytics", filter: "cars/+/telemetry"),
    Backend(id: "backend-alerts", filter: "cars/+/event/#"),
]
let backendIds = backends.map(\.id)
let expiry: UInt32 = 86_400
let chunk = 10_000
/// A command or a telemetry sample (~100 bytes, as a car would send); shared by every Message.
let payload = Array(#"{"ts":1700000000123,"speed":87.5,"rpm":3150,"pos":{"lat":48.137154,"lon":11.576124},"fuel":0.62}"#.utf8)

/// SplitMix64: the same random VINs every run.
struct Random {
    var state: UInt64
    mutating func next(below n: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Int(z % UInt64(n))
    }
}

struct Populated {
    var stages: [(String, Memory)] = []
    var subscribeNs: UInt64 = 0
    var connectS = 0.0, subscribeS = 0.0, disconnectS = 0.0
}

/// N car sessions and the 4 backends, created, subscribed and disconnected in chunks (one loop
/// task per chunk and step, so the loop runs its timers and store commits in between).
func populate(_ bench: SessionBenchmark, cars n: Int, measure: Bool) -> Populated {
    var p = Populated()
    var last = measure ? settle() : Memory.now()
    func stage(_ name: String) {
        guard measure else { return }
        let m = settle()
        p.stages.append((name, m - last))
        last = m
    }
    var t = SessionBenchmark.nanoseconds()
    for start in stride(from: 0, to: n, by: chunk) {
        bench.connect((start..<min(n, start + chunk)).map(vin), expiry: expiry)
    }
    p.connectS = seconds(SessionBenchmark.nanoseconds() - t)
    stage("session + registry entry")
    t = SessionBenchmark.nanoseconds()
    for start in stride(from: 0, to: n, by: chunk) {
        let ids = (start..<min(n, start + chunk)).map(vin)
        p.subscribeNs += bench.subscribe(ids, filters: ids.map { "cars/\($0)/cmd" }, qos: 1)
    }
    p.subscribeS = seconds(SessionBenchmark.nanoseconds() - t)
    stage("subscription (tree + session table)")
    t = SessionBenchmark.nanoseconds()
    for start in stride(from: 0, to: n, by: chunk) {
        bench.disconnect((start..<min(n, start + chunk)).map(vin))
    }
    p.disconnectS = seconds(SessionBenchmark.nanoseconds() - t)
    stage("offline (expiry timer)")
    bench.connect(backendIds, expiry: expiry)
    _ = bench.subscribe(backendIds, filters: backends.map(\.filter), qos: 1)
    bench.disconnect(backendIds)
    return p
}

struct RouteFigures {
    var medianNs: Double
    var meanNs: Double
    var p90Ns: Double
    var cpuMedianNs: Double
    var deliveriesPerPublish: Double
}

/// Batches of one kind of publish to one broker, gathered over the rounds.
struct Samples {
    var wall: [Double] = [], cpu: [Double] = []
    var deliveries = 0, published = 0
    var rng: Random

    init(seed: UInt64) { rng = Random(state: seed) }

    var figures: RouteFigures {
        func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }
        let sorted = wall.sorted()
        return RouteFigures(medianNs: median(wall), meanNs: wall.reduce(0, +) / Double(wall.count),
                            p90Ns: sorted[sorted.count * 9 / 10], cpuMedianNs: median(cpu),
                            deliveriesPerPublish: Double(deliveries) / Double(published))
    }
}

/// `count` publishes in batches of `batchSize` to random cars, `suffix` after the VIN (after two
/// warm-up batches); queues drained (untimed) after each batch. `matchOnly`: the topic-tree
/// match alone.
func routing(_ bench: SessionBenchmark, cars n: Int, suffix: String, matchOnly: Bool, count: Int, into s: inout Samples) {
    let batches = max(1, count / batchSize)
    for b in -2..<batches {
        // Topics made fresh for each batch, as a decoded PUBLISH's topic would be.
        let cars = (0..<batchSize).map { _ in vin(s.rng.next(below: n)) }
        let topics = cars.map { "cars/\($0)/\(suffix)" }
        let r = matchOnly ? bench.match(topics) : bench.route(topics, payload: payload, qos: 1)
        if !matchOnly { bench.drain(cars + backendIds) }
        guard b >= 0 else { continue }
        s.wall.append(Double(r.nanoseconds) / Double(batchSize))
        s.cpu.append(Double(r.cpuNanoseconds) / Double(batchSize))
        s.deliveries += r.count
        s.published += batchSize
    }
    precondition(bench.queuedMessages == 0, "queues not drained")
}

struct Routes {
    var cmd: RouteFigures
    var telemetry: RouteFigures
    var matchCmd: RouteFigures?
    var matchTelemetry: RouteFigures?
}

/// The four kinds of publish on one broker, for one round.
struct RouteSamples {
    var cmd = Samples(seed: 1), telemetry = Samples(seed: 2), matchCmd = Samples(seed: 3), matchTelemetry = Samples(seed: 4)

    mutating func round(_ bench: SessionBenchmark, cars n: Int, count: Int, withMatch: Bool) {
        routing(bench, cars: n, suffix: "cmd", matchOnly: false, count: count, into: &cmd)
        routing(bench, cars: n, suffix: "telemetry", matchOnly: false, count: count, into: &telemetry)
        if withMatch {
            routing(bench, cars: n, suffix: "cmd", matchOnly: true, count: count, into: &matchCmd)
            routing(bench, cars: n, suffix: "telemetry", matchOnly: true, count: count, into: &matchTelemetry)
        }
    }

    var routes: Routes {
        Routes(cmd: cmd.figures, telemetry: telemetry.figures,
               matchCmd: matchCmd.published > 0 ? matchCmd.figures : nil,
               matchTelemetry: matchTelemetry.published > 0 ? matchTelemetry.figures : nil)
    }
}

func makeBroker(dataDirectory: String?) throws -> Broker {
    var config = BrokerConfiguration()
    config.listeners = []
    config.threads = 1
    config.sysInterval = 0
    if let dataDirectory {
        config.dataDirectory = dataDirectory
        config.storage.durability = .sync
    } else {
        config.storage.durability = .none
    }
    var logger = Logger(label: "sessionbench")
    logger.logLevel = .warning
    return try Broker(configuration: config, logger: logger)
}

// MARK: In memory, for each N

struct SizeResult {
    var sessions: Int
    var rssPerSession: Double
    var mallocPerSession: Double
    var stages: [String: Double]
    var stageOrder: [String]
    var subscribeNs: Double
    var connectS: Double, subscribeS: Double, disconnectS: Double
    var routes: Routes
}

var results: [SizeResult] = []
var live: [(n: Int, broker: Broker, bench: SessionBenchmark, populated: Populated, total: Memory)] = []
for n in sizes {
    log("\(n) sessions (in memory):")
    let before = settle()
    let broker = try makeBroker(dataDirectory: nil)
    try broker.start()
    let bench = SessionBenchmark(broker: broker)
    let p = populate(bench, cars: n, measure: true)
    let counts = bench.counts
    precondition(counts.sessions == n + backends.count && counts.subscriptions == n + backends.count, "\(counts)")
    let total = settle() - before
    log("  created in \(p.connectS + p.subscribeS + p.disconnectS) s; \(total.rss / n) B RSS, \(total.malloced / n) B malloc'd per session")
    live.append((n, broker, bench, p, total))
}
// Routing in rounds over all sizes (every broker stays up meanwhile), so that what else runs on
// the machine spreads over every size alike.
var samples = [RouteSamples](repeating: RouteSamples(), count: live.count)
for r in 0..<rounds {
    log("routing, round \(r + 1) of \(rounds): \(routeCount / rounds) publishes of each kind per size")
    for (i, l) in live.enumerated() {
        samples[i].round(l.bench, cars: l.n, count: routeCount / rounds, withMatch: true)
    }
}
for (i, l) in live.enumerated() {
    let routes = samples[i].routes
    log("  \(l.n): cmd \(routes.cmd.medianNs) ns, telemetry \(routes.telemetry.medianNs) ns (median per publish)")
    var stages: [String: Double] = [:]
    for (name, m) in l.populated.stages { stages[name] = Double(m.malloced) / Double(l.n) }
    let p = l.populated
    results.append(SizeResult(sessions: l.n, rssPerSession: Double(l.total.rss) / Double(l.n),
                              mallocPerSession: Double(l.total.malloced) / Double(l.n),
                              stages: stages, stageOrder: p.stages.map(\.0),
                              subscribeNs: Double(p.subscribeNs) / Double(l.n),
                              connectS: p.connectS, subscribeS: p.subscribeS, disconnectS: p.disconnectS, routes: routes))
}
for l in live { l.broker.shutdown() }
live.removeAll()

// MARK: With the store

struct StoreResult {
    var sessions: Int
    var writeS: Double
    var storeMiB: Double
    var openS: Double
    var startS: Double
    var caughtUpS: Double
    var recoveryLoggedMs: Int
    var recoveredSessions: Int
    var rssPerSession: Double
    var mallocPerSession: Double
    var routes: Routes
}

func directorySize(_ path: String) -> Int {
    guard let d = opendir(path) else { return 0 }
    defer { closedir(d) }
    var total = 0
    while let e = readdir(d) {
        let name = withUnsafePointer(to: e.pointee.d_name) { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
        if name == "." || name == ".." { continue }
        var st = stat()
        let full = path + "/" + name
        guard lstat(full, &st) == 0 else { continue }
        if (st.st_mode & S_IFMT) == S_IFDIR { total += directorySize(full) } else { total += Int(st.st_size) }
    }
    return total
}

func removeTree(_ path: String) {
    if let d = opendir(path) {
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
            if name == "." || name == ".." { continue }
            let full = path + "/" + name
            var st = stat()
            if lstat(full, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR { removeTree(full) } else { unlink(full) }
        }
        closedir(d)
    }
    rmdir(path)
}

var storeResult: StoreResult?
if storeSessions > 0 {
    let n = storeSessions
    var template = Array("/tmp/sessionbench-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { print("sessionbench: mkdtemp failed"); exit(1) }
    let dir = String(cString: made)
    log("\(n) sessions with the store (\(dir)):")
    var t = SessionBenchmark.nanoseconds()
    do {
        let broker = try makeBroker(dataDirectory: dir)
        try broker.start()
        let bench = SessionBenchmark(broker: broker)
        _ = populate(bench, cars: n, measure: false)
        _ = bench.counts
        broker.shutdown() // the store drains what the loop handed it, then closes
    }
    let writeS = seconds(SessionBenchmark.nanoseconds() - t)
    let storeMiB = Double(directorySize(dir + "/store")) / 1_048_576
    log("  written in \(writeS) s, \(storeMiB) MiB on disk; restarting …")
    let before = settle()
    t = SessionBenchmark.nanoseconds()
    let broker = try makeBroker(dataDirectory: dir)
    let opened = SessionBenchmark.nanoseconds()
    try broker.start()
    let started = SessionBenchmark.nanoseconds()
    let bench = SessionBenchmark(broker: broker)
    let counts = bench.counts // queued behind the recovered sessions' timer tasks: the loop has caught up
    let caughtUp = SessionBenchmark.nanoseconds()
    precondition(counts.sessions == n + backends.count && counts.subscriptions == n + backends.count, "\(counts)")
    let after = settle() - before
    log("  restart: open \(seconds(opened - t)) s, start \(seconds(started - t)) s, loop caught up \(seconds(caughtUp - t)) s")
    var stored = RouteSamples()
    for _ in 0..<rounds { stored.round(bench, cars: n, count: routeCount / rounds, withMatch: false) }
    let routes = stored.routes
    log("  cmd \(routes.cmd.medianNs) ns, telemetry \(routes.telemetry.medianNs) ns (median per publish, stored)")
    storeResult = StoreResult(sessions: n, writeS: writeS, storeMiB: storeMiB, openS: seconds(opened - t),
                              startS: seconds(started - t), caughtUpS: seconds(caughtUp - t),
                              recoveryLoggedMs: Int(broker.recovered.milliseconds), recoveredSessions: broker.recovered.sessions,
                              rssPerSession: Double(after.rss) / Double(n), mallocPerSession: Double(after.malloced) / Double(n),
                              routes: routes)
    broker.shutdown()
    removeTree(dir)
}

// MARK: Report

/// The raw figures as JSON, by reflection (no Foundation in this process).
func json(_ value: Any, indent: String = "") -> String {
    let inner = indent + " "
    switch value {
    case let d as Double: return d.isFinite ? "\(d)" : "null"
    case let i as Int: return "\(i)"
    case let s as String: return "\"" + s.replacingOccurrences(of: "\"", with: "\\\"") + "\""
    case let d as [String: Double]:
        return "{" + d.keys.sorted().map { "\n\(inner)\(json($0)): \(json(d[$0]!))" }.joined(separator: ",") + "\n\(indent)}"
    default: break
    }
    let m = Mirror(reflecting: value)
    switch m.displayStyle {
    case .optional: return m.children.first.map { json($0.value, indent: indent) } ?? "null"
    case .collection: return "[" + m.children.map { "\n\(inner)" + json($0.value, indent: inner) }.joined(separator: ",") + "\n\(indent)]"
    default:
        return "{" + m.children.map { "\n\(inner)\(json($0.label ?? "?")): " + json($0.value, indent: inner) }.joined(separator: ",") + "\n\(indent)}"
    }
}

func f(_ x: Double, _ digits: Int = 0) -> String {
    var s = String(Int((x * pow(10, Double(digits))).rounded()))
    if digits > 0 {
        while s.count <= digits { s = "0" + s }
        s.insert(".", at: s.index(s.endIndex, offsetBy: -digits))
    }
    // thousands separators on the integer part
    let parts = s.split(separator: ".", omittingEmptySubsequences: false)
    var whole = String(parts[0]), out = ""
    let negative = whole.hasPrefix("-")
    if negative { whole.removeFirst() }
    for (i, ch) in whole.reversed().enumerated() {
        if i > 0 && i % 3 == 0 { out.append(",") }
        out.append(ch)
    }
    return (negative ? "-" : "") + String(out.reversed()) + (parts.count > 1 ? "." + parts[1] : "")
}

/// The first line of `path` starting with `prefix`, after the prefix and a colon.
func procField(_ path: String, _ prefix: String) -> String? {
    guard let f = fopen(path, "r") else { return nil }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 4096)
    while fgets(&line, Int32(line.count), f) != nil {
        let l = String(cString: line)
        if l.hasPrefix(prefix), let colon = l.firstIndex(of: ":") {
            return String(l[l.index(after: colon)...].drop { $0 == " " || $0 == "\t" }.dropLast())
        }
    }
    return nil
}

func today() -> String {
    var t = time(nil)
    var tm = tm()
    gmtime_r(&t, &tm)
    func two(_ x: Int32) -> String { x < 10 ? "0\(x)" : "\(x)" }
    return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))"
}

var md: [String] = []
var uts = utsname()
uname(&uts)
let kernel = withUnsafePointer(to: uts.release) { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
let rev = getenv("BENCH_REV").map { String(cString: $0) } ?? "(BENCH_REV not set)"
md.append("# 1,000,000 sessions — \(today())")
md.append("")
md.append("Turnpike \(rev), `bench/sessionbench` (release build), one process, no sockets. Machine: \(procField("/proc/cpuinfo", "model name") ?? "?"), \(sysconf(Int32(_SC_NPROCESSORS_ONLN))) cores, \(procField("/proc/meminfo", "MemTotal") ?? "?") RAM, Linux \(kernel).")
md.append("Command: `" + CommandLine.arguments.map { $0.hasPrefix("/") || $0.hasPrefix(".") ? String($0.split(separator: "/").last ?? "") : $0 }.joined(separator: " ") + "`; \(routeCount) publishes of each kind per size, in \(rounds) rounds over every size, batches of \(batchSize).")
md.append("")
md.append("Each size is a fresh broker (threads 1, durability none) holding N car sessions — MQTT 5, clean start 0, session expiry 1 day, a 17-character VIN as client id, one QoS 1 subscription to `cars/<vin>/cmd`, disconnected (offline, expiry timer armed) — and 4 offline backend sessions: `backend-ingest-1` and `-2` on `$share/ingest/cars/+/telemetry`, `backend-analytics` on `cars/+/telemetry`, `backend-alerts` on `cars/+/event/#`, all QoS 1. **Route** = `Broker.publish` on the broker's loop for one QoS 1 publish (~100-byte payload): a fresh shared `Message`, the topic-tree match, one delivery per matched session enqueued on that offline session's queue (all sessions on the loop: no mailbox hop; no socket write), the rule engine asked (no rules). A publish to `cars/<random vin>/cmd` has 1 delivery (the car), one to `cars/<random vin>/telemetry` has 2 (one ingest member, analytics). Queues are emptied untimed after each batch. **Match** = `TopicTree.match` alone. Memory is per car session: RSS and glibc's allocated bytes (mallinfo2, after malloc_trim) before and after creating them.")
md.append("")
md.append("| sessions | RSS / session (B) | malloc'd / session (B) | subscribe (ns) | subscribes/s | route cmd (ns) | route telemetry (ns) | match cmd (ns) | match telemetry (ns) |")
md.append("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for r in results {
    md.append("| \(f(Double(r.sessions))) | \(f(r.rssPerSession)) | \(f(r.mallocPerSession)) | \(f(r.subscribeNs)) | \(f(1e9 / r.subscribeNs)) | \(f(r.routes.cmd.medianNs)) | \(f(r.routes.telemetry.medianNs)) | \(f(r.routes.matchCmd!.medianNs)) | \(f(r.routes.matchTelemetry!.medianNs)) |")
}
md.append("")
md.append("Routing, median ns per publish over batches of \(batchSize) (wall clock; in brackets the loop thread's CPU time, and p90 of the batches):")
md.append("")
md.append("| sessions | route cmd | route telemetry | match cmd | match telemetry | deliveries per cmd / telemetry publish |")
md.append("| ---: | ---: | ---: | ---: | ---: | ---: |")
func cell(_ r: RouteFigures) -> String { "\(f(r.medianNs)) (cpu \(f(r.cpuMedianNs)), p90 \(f(r.p90Ns)))" }
for r in results {
    md.append("| \(f(Double(r.sessions))) | \(cell(r.routes.cmd)) | \(cell(r.routes.telemetry)) | \(cell(r.routes.matchCmd!)) | \(cell(r.routes.matchTelemetry!)) | \(f(r.routes.cmd.deliveriesPerPublish, 2)) / \(f(r.routes.telemetry.deliveriesPerPublish, 2)) |")
}
var flat = true
if let small = results.first, let big = results.last, big.sessions > small.sessions {
    md.append("")
    let pairs: [(String, Double, Double)] = [
        ("route cmd", small.routes.cmd.medianNs, big.routes.cmd.medianNs),
        ("route telemetry", small.routes.telemetry.medianNs, big.routes.telemetry.medianNs),
        ("route cmd (cpu)", small.routes.cmd.cpuMedianNs, big.routes.cmd.cpuMedianNs),
        ("route telemetry (cpu)", small.routes.telemetry.cpuMedianNs, big.routes.telemetry.cpuMedianNs),
    ]
    var line = "Routing cost \(f(Double(big.sessions))) / \(f(Double(small.sessions))) sessions:"
    for (name, a, b) in pairs {
        line += " \(name) \(f(b / a, 2))×;"
        if !name.hasSuffix("(cpu)") && b / a > 1.5 { flat = false }
    }
    line += flat ? " within 1.5×: **yes**" : " within 1.5×: **NO**"
    md.append(line)
}
md.append("")
md.append("Memory per car session by stage (malloc'd bytes, mallinfo2 after malloc_trim):")
md.append("")
if let first = results.first {
    md.append("| sessions | " + first.stageOrder.joined(separator: " | ") + " | total malloc'd | total RSS |")
    md.append("| ---: |" + String(repeating: " ---: |", count: first.stageOrder.count + 2))
    for r in results {
        md.append("| \(f(Double(r.sessions))) | " + r.stageOrder.map { f(r.stages[$0]!) }.joined(separator: " | ") + " | \(f(r.mallocPerSession)) | \(f(r.rssPerSession)) |")
    }
    md.append("")
    md.append("Time to create them (connect / subscribe / disconnect, s): " + results.map { "\(f(Double($0.sessions))): \(f($0.connectS, 2)) / \(f($0.subscribeS, 2)) / \(f($0.disconnectS, 2))" }.joined(separator: "; "))
}
if let s = storeResult {
    md.append("")
    md.append("With the store (durability sync): the same \(f(Double(s.sessions))) car sessions + 4 backends created through the broker's own store writes (session record at connect, after SUBSCRIBE and at disconnect, committed by the loop's batches), the broker shut down, then a new one opened on the data directory: **open** = `Broker.init` (RocksDB open), **open + recovery** = until `start()` returns (every session, subscription and timer back), **loop caught up** = until the loop has also run the recovered sessions' timer set-up. Then routing again on the recovered broker, now storing each delivery to an offline durable session (`persistDelivery` into the loop's batch; the commit runs after each batch, off the timed stretch).")
    md.append("")
    md.append("| written (s) | store on disk (MiB) | open (s) | open + recovery (s) | loop caught up (s) | recovery logged (ms) | RSS / session (B) | malloc'd / session (B) | route cmd, stored (ns) | route telemetry, stored (ns) |")
    md.append("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    md.append("| \(f(s.writeS, 1)) | \(f(s.storeMiB, 1)) | \(f(s.openS, 2)) | \(f(s.startS, 2)) | \(f(s.caughtUpS, 2)) | \(f(Double(s.recoveryLoggedMs))) | \(f(s.rssPerSession)) | \(f(s.mallocPerSession)) | \(cell(s.routes.cmd)) | \(cell(s.routes.telemetry)) |")
}
let report = md.joined(separator: "\n") + "\n"
print(report, terminator: "")
if let markdownPath, let file = fopen(markdownPath, "w") { fputs(report, file); fclose(file) }
if let jsonPath, let file = fopen(jsonPath, "w") {
    struct All { var sizes: [SizeResult]; var store: StoreResult? }
    fputs(json(All(sizes: results, store: storeResult)) + "\n", file)
    fclose(file)
}
exit(flat ? 0 : 1)
