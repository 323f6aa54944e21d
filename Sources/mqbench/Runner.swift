import CSystemShims
import EventLoop
import Foundation
import MQTTCodec
import Synchronization

/// Set by the signal thread (SIGINT, SIGTERM, SIGHUP): stop, disconnect, report.
let stopRequested = Atomic<Bool>(false)
/// Worker processes to pass a signal on to (parent only).
let childPIDs = Mutex<[pid_t]>([])

/// Blocks the stop signals in every thread and takes them on one thread of their own.
func installSignalThread() {
    cshim_block_signals()
    let t = Thread {
        while true {
            let sig = cshim_wait_signal()
            stopRequested.store(true, ordering: .sequentiallyConsistent)
            for pid in childPIDs.withLock({ $0 }) { kill(pid, sig) }
        }
    }
    t.start()
}

func printErr(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

/// Runs one process's share of clients on one loop per core and returns its report.
final class Runner {
    let plan: Plan
    let connectRate: Double      // connects per second (0: use interval)
    let connectInterval: Double  // ms between connects
    let duration: Double
    let threads: Int
    let label: String
    let live: Bool

    init(plan: Plan, connectRate: Double, connectInterval: Double, duration: Double, threads: Int, label: String, live: Bool = true) {
        self.plan = plan; self.connectRate = connectRate; self.connectInterval = connectInterval
        self.duration = duration; self.threads = threads; self.label = label; self.live = live
    }

    func run() throws -> Report {
        let group = try EventLoopGroup(threads: threads)
        let slots = plan.command == .fleet ? CommandSlots(count: plan.fleetTotalCars) : nil
        let agents = group.loops.map { LoopAgent(loop: $0, plan: plan, slots: slots) }
        let stats = agents.map(\.stats)
        group.start()

        let t0 = monotonicMicroseconds()
        func elapsed() -> Double { Double(monotonicMicroseconds() &- t0) / 1_000_000 }
        var issued = 0
        var publishingStarted = false
        var announcedReady = false
        var nextLive = 1.0
        var last = Totals()
        var lastT = 0.0
        var allConnectedAt: Double?       // wall clock, s since the epoch
        var lagSeries: [UInt64: UInt64] = [:]   // wall second -> longest loop iteration (ms) before it

        while true {
            let now = elapsed()
            let totals = Totals(stats)
            if stopRequested.load(ordering: .relaxed) { break }
            if duration > 0 && now >= duration { break }
            if issued == plan.count {
                if plan.command == .pub && plan.limit > 0 && totals.finished >= plan.count { break }
                if totals.started == plan.count && totals.open == 0 { break }
                if plan.count == 0 { break }
            }
            // Connect pacing: everything due by now, in one batch per loop.
            if issued < plan.count {
                let due: Int
                if connectRate > 0 {
                    due = Int(now * connectRate) + 1
                } else if connectInterval > 0 {
                    due = Int(now * 1000 / connectInterval) + 1
                } else {
                    due = plan.count
                }
                let upTo = min(plan.count, due)
                if upTo > issued {
                    var batches = [[Int]](repeating: [], count: agents.count)
                    for i in issued..<upTo { batches[i % agents.count].append(i) }
                    for (k, batch) in batches.enumerated() where !batch.isEmpty {
                        let agent = agents[k]
                        agent.loop.execute { for i in batch { agent.startClient(index: i) } }
                    }
                    issued = upTo
                }
            }
            if plan.waitForAll && !publishingStarted && issued == plan.count
                && totals.connectOK + totals.connectFailed >= plan.count {
                publishingStarted = true
                if live { printErr("\(label): \(totals.connectOK) of \(plan.count) clients connected, publishing") }
                for a in agents { a.loop.execute { a.startAllPublishers() } }
            }
            let subscribes = plan.command == .sub || plan.command == .fleet
            if !announcedReady && totals.connectOK == plan.count
                && (!subscribes || totals.subscribed == plan.count) {
                announcedReady = true
                allConnectedAt = Double(wallClockMicroseconds()) / 1_000_000
                if live {
                    printErr("\(label): all \(plan.count) clients connected"
                        + (subscribes ? " and subscribed" : "") + " in \(String(format: "%.3f", now)) s")
                }
            }
            if now >= nextLive {
                // This process's own event-loop lag over the last second: when mqbench's loops
                // are late, so are its timestamps and its reads (it shares the cores).
                let lag = agents.map { $0.loop.takeLongestIteration() }.max() ?? 0
                lagSeries[wallClockMicroseconds() / 1_000_000] = lag
                if live { printErr(liveLine(now, totals, last, now - lastT) + " lag \(lag)ms") }
                last = totals
                lastT = now
                nextLive = floor(now) + 1
            }
            usleep(issued < plan.count ? 2_000 : 10_000)
        }
        let runTime = elapsed()
        let stoppedAt = Double(wallClockMicroseconds()) / 1_000_000

        // Drain: no new publishes; each client disconnects once its window is empty.
        for a in agents { a.loop.execute { a.beginStop() } }
        let drainEnd = elapsed() + 5
        while Totals(stats).open > 0 && elapsed() < drainEnd { usleep(5_000) }
        for a in agents { a.loop.execute { a.forceClose() } }
        let closeEnd = elapsed() + 2
        while Totals(stats).open > 0 && elapsed() < closeEnd { usleep(5_000) }
        // The loops' lag while the clients stopped (after the last live line).
        let stopLag = agents.map { $0.loop.takeLongestIteration() }.max() ?? 0
        let stopSecond = wallClockMicroseconds() / 1_000_000
        lagSeries[stopSecond] = max(lagSeries[stopSecond] ?? 0, stopLag)
        group.stopAndJoin()

        // The loops are joined: their state can be read here.
        var hist: [String: LatencyHistogram] = [
            "latency": makeHistogram(), "connect": makeHistogram(),
        ]
        if plan.command == .fleet {
            hist["command"] = makeHistogram()
            hist["command_rtt"] = makeHistogram()
        }
        if plan.command == .pub && plan.qos != .atMostOnce { hist["ack"] = makeHistogram() }
        var errors: [String: Int] = [:]
        var series: [UInt64: SecondStats] = [:]
        for a in agents {
            for (sec, st) in a.latencySeries {
                var m = series[sec, default: SecondStats()]
                m.count += st.count
                m.max = max(m.max, st.max)
                series[sec] = m
            }
            hist["latency"]!.add(a.latency)
            hist["connect"]!.add(a.connectLatency)
            if hist["ack"] != nil { hist["ack"]!.add(a.ackLatency) }
            if plan.command == .fleet {
                hist["command"]!.add(a.commandLatency)
                hist["command_rtt"]!.add(a.commandRTT)
            }
            for (k, v) in a.failures { errors[k, default: 0] += v }
        }
        return Report.build(command: plan.command.rawValue, clients: plan.count, totals: Totals(stats),
                            duration: runTime, qos: Int(plan.qos.rawValue), histograms: hist, errors: errors,
                            fleet: plan.command == .fleet ? (plan.cars, plan.backends) : nil, workers: 1,
                            latencySeries: series.keys.sorted().map { [$0 * 100, series[$0]!.count, series[$0]!.max] },
                            loopLag: lagSeries.keys.sorted().map { [$0, lagSeries[$0]!] },
                            allConnectedAt: allConnectedAt, stoppedAt: stoppedAt)
    }

    private func liveLine(_ now: Double, _ t: Totals, _ last: Totals, _ dt: Double) -> String {
        let d = max(dt, 0.001)
        let pubRate = Int((Double(t.sent - last.sent) / d).rounded())
        let recvRate = Int((Double(t.received - last.received) / d).rounded())
        var s = "\(label) \(Int(now.rounded()))s connected \(t.connected)/\(plan.count) pub/s \(pubRate) recv/s \(recvRate)"
        if plan.qos != .atMostOnce && plan.command != .sub { s += " acked/s \(Int((Double(t.acked - last.acked) / d).rounded()))" }
        if plan.command == .fleet { s += " cmds \(t.commandsSent)/\(t.commandsReceived)/\(t.commandsRoundTripped)" }
        s += " errors \(t.errors)"
        return s
    }
}

/// Splits `total` over `n` workers: worker `k` gets `count` items starting at `offset`.
func slice(_ total: Int, _ k: Int, _ n: Int) -> (count: Int, offset: Int) {
    let base = total / n, extra = total % n
    let count = base + (k < extra ? 1 : 0)
    let offset = k * base + min(k, extra)
    return (count, offset)
}

/// Runs `n` copies of this executable, each on its slice, and merges their JSON reports.
func runWorkers(n: Int, prefix: String, qos: Int, json: Bool) throws -> Report {
    let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    var args = Array(CommandLine.arguments.dropFirst()).filter { $0 != "--json" }
    if !args.contains("--prefix") { args += ["--prefix", prefix] }
    var procs: [(Process, Pipe)] = []
    final class Outputs: @unchecked Sendable { var data: [Data]; init(_ n: Int) { data = [Data](repeating: Data(), count: n) } }
    let outputs = Outputs(n)
    let lock = NSLock()
    var readers: [Thread] = []
    for k in 0..<n {
        let p = Process()
        p.executableURL = exe
        p.arguments = args + ["--worker-index", String(k), "--worker-count", String(n), "--json"]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.standardError
        try p.run()
        childPIDs.withLock { $0.append(p.processIdentifier) }
        let reader = Thread {
            let d = pipe.fileHandleForReading.readDataToEndOfFile()
            lock.lock(); outputs.data[k] = d; lock.unlock()
        }
        reader.start()
        readers.append(reader)
        procs.append((p, pipe))
    }
    for (p, _) in procs { p.waitUntilExit() }
    // Let the readers see end-of-file.
    var waited = 0
    while waited < 500 {
        let done = lock.withLock { outputs.data.allSatisfy { !$0.isEmpty } }
        if done { break }
        usleep(10_000); waited += 1
    }
    var reports: [Report] = []
    for (k, d) in lock.withLock({ outputs.data }).enumerated() {
        guard let r = try? JSONDecoder().decode(Report.self, from: d) else {
            printErr("mqbench: worker \(k) produced no report (exit \(procs[k].0.terminationStatus))")
            continue
        }
        reports.append(r)
    }
    guard let merged = Report.merge(reports, qos: qos) else { throw ExitCodeError.failed }
    return merged
}

enum ExitCodeError: Error { case failed }
