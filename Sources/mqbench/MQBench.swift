import ArgumentParser
import EventLoop
import Foundation
import MQTTCodec

@main
struct MQBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mqbench",
        abstract: "MQTT load generator with emqtt-bench's flags (conn, sub, pub) and a car-fleet scenario.",
        discussion: """
            -h is the broker host (as in emqtt-bench); help is --help only. Clients are spread over \
            one event loop per core. Above --max-per-process clients (default 15000; the open-file \
            limit is 20000) mqbench runs worker processes and merges their reports. A live line per \
            second goes to stderr, the final report to stderr, and with --json as JSON on stdout.
            """,
        subcommands: [Conn.self, Sub.self, Pub.self, Fleet.self],
        helpNames: [.long])
}

// MARK: conn

struct Conn: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Connect clients and hold the connections (until --duration or Ctrl-C).", helpNames: [.long])

    @OptionGroup var common: ConnectionOptions

    func validate() throws { try common.validateCommon() }

    func run() throws {
        try launch(common, qos: 0) { c in
            basePlan(.conn, common, count: c.count, start: c.start, topics: [], qos: .atMostOnce)
        }
    }
}

// MARK: sub

struct Sub: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Subscribe clients and count what they receive (until --duration or Ctrl-C).",
        discussion: "Latency is measured from the send timestamp in each payload: its first 8 bytes (µs since the epoch, big-endian), or a leading {\"timestamp\":µs} (pub --json-payload).",
        helpNames: [.long])

    @OptionGroup var common: ConnectionOptions

    @Option(name: [.customShort("t"), .customLong("topic")],
            help: "Topic filter (repeatable); %i sequence number, %c client id, %u username.")
    var topic: [String]

    @Option(name: [.customShort("q"), .customLong("qos")], help: "Subscription QoS: 0, 1 or 2.")
    var qos: Int = 0

    func validate() throws {
        try common.validateCommon()
        guard (0...2).contains(qos) else { throw ValidationError("-q must be 0, 1 or 2") }
        guard !topic.isEmpty else { throw ValidationError("-t is required") }
    }

    func run() throws {
        try launch(common, qos: qos) { c in
            basePlan(.sub, common, count: c.count, start: c.start, topics: topic, qos: QoS(rawValue: UInt8(qos))!)
        }
    }
}

// MARK: pub

struct Pub: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish from clients at a fixed interval each (or as fast as the window allows with -I 0).",
        discussion: """
            -L is per client, as in emqtt-bench: "pub -c 5 -L 200" sends 1000 messages, then waits \
            for the acks of the last ones (QoS 1/2), disconnects and reports. Without -m the payload \
            is -s bytes whose first 8 are the send time (µs since the epoch, big-endian) for the \
            subscriber's latency.
            """,
        helpNames: [.long])

    @OptionGroup var common: ConnectionOptions

    @Option(name: [.customShort("t"), .customLong("topic")], help: "Topic; %i sequence number, %c client id, %u username.")
    var topic: String

    @Option(name: [.customShort("q"), .customLong("qos")], help: "QoS: 0, 1 or 2.")
    var qos: Int = 0

    @Flag(name: [.customShort("r"), .customLong("retain")], help: "Publish with the retain flag.")
    var retain = false

    @Option(name: [.customShort("I"), .customLong("interval_of_msg")],
            help: "Milliseconds between two publishes of one client (0: as fast as the inflight window and socket allow).")
    var intervalOfMsg: Double = 1000

    @Option(name: [.customShort("s"), .customLong("size")], help: "Payload size in bytes (ignored with -m).")
    var size: Int = 256

    @Option(name: [.customShort("m"), .customLong("message")], help: "Payload text (no timestamp: no latency).")
    var message: String?

    @Option(name: [.customShort("L"), .customLong("limit")], help: "Messages per client, then stop (0: no limit).")
    var limit: Int = 0

    @Option(name: [.customShort("F"), .customLong("inflight")], help: "QoS 1/2 messages in flight per client (0: 65535).")
    var inflight: Int = 1

    @Flag(name: .customLong("json-payload"),
          help: "JSON payload of -s bytes, {\"timestamp\":<send time, µs>,\"speed\":<n>,\"pad\":\"x…\"}, for rules that read fields.")
    var jsonPayload = false

    @Option(name: .customLong("spread"),
            help: "Spread the messages over N topics: %i in the topic takes the N numbers from -n on in turn instead of the client's number (0: off).")
    var spread: Int = 0

    @Flag(name: [.customShort("w"), .customLong("wait-before-publishing")],
          help: "Start publishing only when every client (of this process) is connected.")
    var wait = false

    func validate() throws {
        try common.validateCommon()
        guard (0...2).contains(qos) else { throw ValidationError("-q must be 0, 1 or 2") }
        guard intervalOfMsg >= 0, size >= 0, limit >= 0, inflight >= 0, spread >= 0 else {
            throw ValidationError("-I, -s, -L, -F and --spread must be >= 0")
        }
        guard size <= 256 * 1024 * 1024 else { throw ValidationError("-s too large") }
    }

    func run() throws {
        try launch(common, qos: qos) { c in
            var p = basePlan(.pub, common, count: c.count, start: c.start, topics: [topic], qos: QoS(rawValue: UInt8(qos))!)
            p.retain = retain
            p.publishInterval = intervalOfMsg
            p.payloadSize = size
            p.message = message.map { Array($0.utf8) }
            p.limit = limit
            p.inflight = inflight == 0 ? 65_535 : inflight
            p.waitForAll = wait
            p.topicSpread = spread
            p.jsonPayload = jsonPayload
            return p
        }
    }
}

// MARK: fleet

struct Fleet: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A car fleet: cars publish telemetry, a backend consumes it and sends commands back.",
        discussion: """
            -c cars (client ids car-<n>, VINs TPK<n on 14 digits>) each subscribe to cars/<vin>/cmd, \
            then publish telemetry JSON (timestamp µs, vin, speed, pos.lat/lon, heading, battery, \
            odometer) on cars/<vin>/telemetry at --rate messages per second. --backend clients \
            (backend-<n>) subscribe to $share/backend/cars/+/telemetry and $share/backend/cars/+/cmd/ack. \
            For the cars selected by --command-share (a stable hash of the VIN), the backend answers \
            telemetry with a command on cars/<vin>/cmd, at most one in flight per car; the car \
            acknowledges on cars/<vin>/cmd/ack with the command's timestamp. Reported: telemetry \
            sent/received and latency, commands sent, received by cars (one-way latency) and \
            round-tripped (backend -> car -> backend). Runs until --duration or Ctrl-C. \
            --role splits the fleet over two processes, so that the backend's reads do not share \
            loops with the cars: `--role backend` runs the backend only (-c still says how many \
            cars there are), `--role cars` the cars only; start the backend first. Telemetry \
            latency and round trips are then in the backend's report, commands received in the \
            cars'.
            """,
        helpNames: [.long])

    @OptionGroup var common: ConnectionOptions

    @Option(name: [.customShort("q"), .customLong("qos")], help: "QoS of telemetry, commands and subscriptions.")
    var qos: Int = 1

    @Option(name: .customLong("rate"), help: "Telemetry messages per second per car.")
    var rate: Double = 1

    @Option(name: .customLong("backend"), help: "Backend clients sharing the telemetry subscription.")
    var backend: Int = 2

    @Option(name: .customLong("command-share"), help: "Share of cars (0...1) that receive commands.")
    var commandShare: Double = 0.1

    @Option(name: [.customShort("F"), .customLong("inflight")], help: "QoS 1/2 messages in flight per client (0: 65535).")
    var inflight: Int = 100

    @Option(name: .customLong("role"), help: "Clients of this process: all (cars and backend), cars, or backend.")
    var role: String = "all"

    func validate() throws {
        try common.validateCommon()
        guard (0...2).contains(qos) else { throw ValidationError("-q must be 0, 1 or 2") }
        guard ["all", "cars", "backend"].contains(role) else { throw ValidationError("--role must be all, cars or backend") }
        guard rate > 0, rate <= 10_000 else { throw ValidationError("--rate must be in (0, 10000]") }
        guard backend >= 1 else { throw ValidationError("--backend must be >= 1") }
        guard (0...1).contains(commandShare) else { throw ValidationError("--command-share must be 0...1") }
    }

    func run() throws {
        let totalCars = common.count
        let n = common.workerCount ?? 1
        let k = common.workerIndex ?? 0
        let b = slice(backend, k, n)
        let withCars = role != "backend", withBackend = role != "cars"
        let backends = withBackend ? max(1, b.count) : 0
        let total = (withCars ? totalCars : 0) + (withBackend ? backend : 0)
        try launch(common, qos: qos, totalClients: total, fleetPrefix: true) { c in
            let cars = withCars ? c.count : 0
            var p = basePlan(.fleet, common, count: cars + backends, start: c.start, topics: [], qos: QoS(rawValue: UInt8(qos))!)
            p.cars = cars
            p.backends = backends
            p.backendStart = b.offset
            p.commandShare = commandShare
            p.publishInterval = 1000 / rate
            p.inflight = inflight == 0 ? 65_535 : inflight
            p.fleetFirstSeq = common.startnumber
            p.fleetTotalCars = totalCars
            return p
        }
    }
}

// MARK: Shared launch

/// This process's share of the clients.
struct Share { var count: Int; var start: Int }

var generatedPrefix: String = {
    var g = SystemRandomNumberGenerator()
    let hex = Array("0123456789abcdef")
    return "mqb" + String((0..<6).map { _ in hex[Int(g.next() % 16)] })
}()

func basePlan(_ command: Plan.Command, _ o: ConnectionOptions, count: Int, start: Int, topics: [String], qos: QoS) -> Plan {
    let hosts = o.hosts.map { Socket.numericAddress($0) ?? $0 }
    return Plan(
        command: command, hosts: hosts.isEmpty ? ["127.0.0.1"] : hosts, port: o.port, sources: o.sourceAddresses,
        version: o.protocolVersion, prefix: o.prefix ?? (command == .fleet ? "" : generatedPrefix),
        username: o.username, password: o.password, keepAlive: UInt16(o.keepalive), clean: o.clean,
        sessionExpiry: UInt32(o.sessionExpiry), connectTimeoutMs: UInt64(o.connectTimeout * 1000),
        count: count, startNumber: start, topics: topics, qos: qos, retain: false, publishInterval: 1000,
        payloadSize: 256, message: nil, limit: 0, inflight: 1, waitForAll: false)
}

/// Either runs the clients here, or (too many for one process) runs worker processes and
/// merges their reports. Prints the report; exits 2 when the TLS files do not load.
func launch(_ o: ConnectionOptions, qos: Int, totalClients: Int? = nil, fleetPrefix: Bool = false,
            plan build: (Share) -> Plan) throws {
    var tls: TLSContext?
    if o.ssl {
        // As emqtt-bench: the server certificate is verified only when --cacertfile is given.
        var c = TLSConfiguration()
        c.caFile = o.cacertfile
        c.verifyPeer = o.cacertfile != nil
        c.certificateChainFile = o.certfile
        c.privateKeyFile = o.keyfile
        do {
            tls = try TLSContext(client: c)
        } catch {
            printErr("mqbench: TLS: \(error)")
            throw ExitCode(2)
        }
    }
    installSignalThread()
    let total = totalClients ?? o.count
    let report: Report
    if o.workerIndex == nil && total > o.maxPerProcess {
        let n = (total + o.maxPerProcess - 1) / o.maxPerProcess
        printErr("mqbench: \(total) clients: running \(n) worker processes")
        report = try runWorkers(n: n, prefix: generatedPrefix, qos: qos, json: o.json)
    } else {
        let k = o.workerIndex ?? 0, n = o.workerCount ?? 1
        let s = slice(o.count, k, n)
        var plan = build(Share(count: s.count, start: o.startnumber + s.offset))
        plan.tls = tls
        let label = n > 1 ? "[w\(k)] mqbench \(plan.command.rawValue)" : "mqbench \(plan.command.rawValue)"
        let runner = Runner(plan: plan,
                            connectRate: o.connrate > 0 ? max(1, Double(o.connrate) / Double(n)) : 0,
                            connectInterval: Double(o.interval * n),
                            duration: o.duration, threads: o.threads ?? EventLoopGroup.coreCount, label: label)
        report = try runner.run()
    }
    if o.workerIndex == nil { printErr(report.text()) }
    if o.json { print(report.jsonString()) }
}
