import ArgumentParser
import MQTTCodec

/// Connection flags shared by every subcommand, named as in emqtt-bench.
struct ConnectionOptions: ParsableArguments {
    @Option(name: [.customShort("h"), .customLong("host")],
            help: "Broker host(s), comma-separated; clients are spread over them round-robin.")
    var host: String = "localhost"

    @Option(name: [.customShort("p"), .customLong("port")], help: "Broker port.")
    var port: Int = 1883

    @Option(name: [.customShort("V"), .customLong("version")], help: "MQTT version: 3 (3.1), 4 (3.1.1) or 5.")
    var version: Int = 5

    @Option(name: [.customShort("c"), .customLong("count")], help: "Number of clients.")
    var count: Int = 200

    @Option(name: [.customShort("i"), .customLong("interval")], help: "Milliseconds between two connects (ignored with -R).")
    var interval: Int = 10

    @Option(name: [.customShort("R"), .customLong("connrate")], help: "Connects per second (overrides -i; 0: use -i).")
    var connrate: Int = 0

    @Option(name: [.customShort("n"), .customLong("startnumber")], help: "First client sequence number (%i).")
    var startnumber: Int = 0

    @Option(name: .customLong("prefix"),
            help: "Client id prefix: ids are <prefix>_<command>_<seq>. Default: mqb<6 random hex digits>.")
    var prefix: String?

    @Option(name: [.customShort("u"), .customLong("username")], help: "Username (%i, %c allowed).")
    var username: String?

    @Option(name: [.customShort("P"), .customLong("password")], help: "Password.")
    var password: String?

    @Option(name: [.customShort("k"), .customLong("keepalive")], help: "Keepalive in seconds (0: off).")
    var keepalive: Int = 300

    @Option(name: [.customShort("C"), .customLong("clean")], help: "Clean session / clean start: true or false.")
    var clean: Bool = true

    @Option(name: [.customShort("x"), .customLong("session-expiry")], help: "Session expiry interval in seconds (MQTT 5).")
    var sessionExpiry: Int = 0

    @Option(name: .customLong("ifaddr"),
            help: "Local source address(es), comma-separated; clients are spread over them (more than 64k connections to one target).")
    var ifaddr: String?

    @Flag(name: [.customShort("S"), .customLong("ssl")], help: "TLS. The server certificate is verified only when --cacertfile is given.")
    var ssl = false

    @Option(name: .customLong("cacertfile"), help: "CA certificate for TLS.")
    var cacertfile: String?

    @Option(name: .customLong("certfile"), help: "Client certificate for TLS.")
    var certfile: String?

    @Option(name: .customLong("keyfile"), help: "Client key for TLS (default: the certfile).")
    var keyfile: String?

    @Option(name: .customLong("duration"), help: "Stop after this many seconds (disconnect cleanly) and report. 0: until done or Ctrl-C.")
    var duration: Double = 0

    @Flag(name: .customLong("json"), help: "Also print the final report as JSON on stdout.")
    var json = false

    @Option(name: .customLong("threads"), help: "Event loops (default: one per core).")
    var threads: Int?

    @Option(name: .customLong("connect-timeout"), help: "Seconds for TCP connect plus CONNACK.")
    var connectTimeout: Double = 10

    @Option(name: .customLong("max-per-process"),
            help: "Above this many clients mqbench runs worker processes (open-file limit).")
    var maxPerProcess: Int = 15_000

    @Option(name: .customLong("worker-index"), help: .hidden)
    var workerIndex: Int?

    @Option(name: .customLong("worker-count"), help: .hidden)
    var workerCount: Int?

    func validateCommon() throws {
        if ssl { return }  // reported by run() with its own exit code
        guard (3...5).contains(version) else { throw ValidationError("-V must be 3, 4 or 5") }
        guard count >= 0 else { throw ValidationError("-c must be >= 0") }
        guard (1...65535).contains(port) else { throw ValidationError("-p must be 1...65535") }
        guard (0...65535).contains(keepalive) else { throw ValidationError("-k must be 0...65535") }
        guard interval >= 0, connrate >= 0 else { throw ValidationError("-i and -R must be >= 0") }
        guard duration >= 0 else { throw ValidationError("--duration must be >= 0") }
        guard sessionExpiry >= 0 && sessionExpiry <= Int(UInt32.max) else { throw ValidationError("-x out of range") }
        guard maxPerProcess >= 1 && maxPerProcess <= 19_000 else { throw ValidationError("--max-per-process must be 1...19000") }
    }

    var protocolVersion: ProtocolVersion {
        switch version {
        case 3: .v3_1
        case 4: .v3_1_1
        default: .v5
        }
    }

    var hosts: [String] { host.split(separator: ",").map { String($0.trimmingCharacters()) }.filter { !$0.isEmpty } }
    var sourceAddresses: [String] {
        (ifaddr ?? "").split(separator: ",").map { String($0.trimmingCharacters()) }.filter { !$0.isEmpty }
    }
}

extension Substring {
    func trimmingCharacters() -> Substring {
        var s = self
        while let f = s.first, f == " " { s = s.dropFirst() }
        while let l = s.last, l == " " { s = s.dropLast() }
        return s
    }
}

/// Expands %i (sequence number), %c (client id) and %u (username) in a topic or name.
func expand(_ template: String, seq: Int, clientId: String, username: String?) -> String {
    guard template.contains("%") else { return template }
    var out = ""
    var it = template.makeIterator()
    while let ch = it.next() {
        guard ch == "%" else { out.append(ch); continue }
        guard let n = it.next() else { out.append("%"); break }
        switch n {
        case "i": out += String(seq)
        case "c": out += clientId
        case "u": out += username ?? ""
        case "%": out.append("%")
        default: out.append("%"); out.append(n)
        }
    }
    return out
}
