import Foundation
import Histogram

/// Percentiles of one histogram, in milliseconds.
struct Percentiles: Codable {
    var count: UInt64
    var mean: Double
    var p50: Double
    var p90: Double
    var p99: Double
    var p99_9: Double
    var max: Double

    init(_ h: LatencyHistogram) {
        count = h.totalCount
        func ms(_ v: UInt64) -> Double { (Double(v) / 1000).rounded(toPlaces: 3) }
        if count == 0 {
            mean = 0; p50 = 0; p90 = 0; p99 = 0; p99_9 = 0; max = 0
            return
        }
        mean = (h.mean / 1000).rounded(toPlaces: 3)
        p50 = ms(h.valueAtPercentile(50))
        p90 = ms(h.valueAtPercentile(90))
        p99 = ms(h.valueAtPercentile(99))
        p99_9 = ms(h.valueAtPercentile(99.9))
        max = ms(h.max)
    }
}

extension Double {
    func rounded(toPlaces n: Int) -> Double {
        let f = Foundation.pow(10.0, Double(n))
        return (self * f).rounded() / f
    }
}

/// Histogram contents for merging worker reports: [value µs, count] per recorded bucket.
typealias HistogramData = [[UInt64]]

func histogramData(_ h: LatencyHistogram) -> HistogramData {
    h.recordedValues().map { [$0.value, UInt64($0.count)] }
}

func histogram(from d: HistogramData) -> LatencyHistogram {
    var h = makeHistogram()
    for pair in d where pair.count == 2 { _ = h.record(Swift.min(pair[0], h.highestTrackableValue), count: pair[1]) }
    return h
}

/// The final report; also the JSON a worker hands to its parent.
struct Report: Codable {
    struct Rates: Codable {
        var sent_per_s: Double
        var acked_per_s: Double
        var received_per_s: Double
    }
    struct Fleet: Codable {
        var cars: Int
        var backend: Int
        var telemetry_sent: Int
        var telemetry_received: Int
        var commands_sent: Int
        var commands_received: Int
        var commands_round_tripped: Int
        var command_latency_ms: Percentiles
        var command_round_trip_ms: Percentiles
    }

    var command: String
    var clients: Int
    var connected: Int
    var connect_failed: Int
    var subscribed: Int
    var duration_s: Double
    var sent: Int
    var acked: Int
    var publish_failed: Int
    var received: Int
    /// sent - acked for QoS 1/2 publishers (0 when every message was acknowledged).
    var unacked: Int
    var rates: Rates
    var latency_ms: Percentiles
    /// pub at QoS 1/2: PUBLISH sent until its PUBACK (QoS 1) or PUBCOMP (QoS 2) arrived.
    var ack_ms: Percentiles?
    var connect_ms: Percentiles
    var errors: [String: Int]
    var errors_total: Int
    var fleet: Fleet?
    var workers: Int
    /// Message latency by send time: [ms since the epoch, rounded down to 100 ms, count, max µs]
    /// (sub, fleet).
    var latency_series: [[UInt64]]?
    /// mqbench's own event-loop lag: [epoch second, longest iteration of any loop in ms over the
    /// second before], one per live line; and its maximum.
    var loop_lag_ms: [[UInt64]]?
    var loop_lag_max_ms: UInt64?
    /// When every client of the run was connected (and subscribed, for sub and fleet), s since
    /// the epoch; nil when some never were.
    var all_connected_at: Double?
    /// When the clients stopped publishing (--duration reached or a signal), s since the epoch.
    var stopped_at: Double?
    /// Raw histogram buckets (latency, connect, command, command_rtt) so reports can be merged.
    var histograms: [String: HistogramData]

    static func build(command: String, clients: Int, totals: Totals, duration: Double, qos: Int,
                      histograms: [String: LatencyHistogram], errors: [String: Int],
                      fleet: (cars: Int, backend: Int)?, workers: Int,
                      latencySeries: [[UInt64]] = [], loopLag: [[UInt64]] = [],
                      allConnectedAt: Double? = nil, stoppedAt: Double? = nil) -> Report {
        let d = Swift.max(duration, 0.001)
        let empty = makeHistogram()
        var r = Report(
            command: command, clients: clients, connected: totals.connectOK, connect_failed: totals.connectFailed,
            subscribed: totals.subscribed, duration_s: duration.rounded(toPlaces: 3), sent: totals.sent,
            acked: totals.acked, publish_failed: totals.publishFailed, received: totals.received,
            unacked: qos > 0 ? Swift.max(0, totals.sent - totals.acked - totals.publishFailed) : 0,
            rates: Rates(sent_per_s: (Double(totals.sent) / d).rounded(toPlaces: 1),
                         acked_per_s: (Double(totals.acked) / d).rounded(toPlaces: 1),
                         received_per_s: (Double(totals.received) / d).rounded(toPlaces: 1)),
            latency_ms: Percentiles(histograms["latency"] ?? empty),
            ack_ms: histograms["ack"].map { Percentiles($0) },
            connect_ms: Percentiles(histograms["connect"] ?? empty),
            errors: errors, errors_total: errors.values.reduce(0, +), fleet: nil, workers: workers,
            latency_series: latencySeries.isEmpty ? nil : latencySeries,
            loop_lag_ms: loopLag.isEmpty ? nil : loopLag,
            loop_lag_max_ms: loopLag.isEmpty ? nil : loopLag.map { $0[1] }.max(),
            all_connected_at: allConnectedAt, stopped_at: stoppedAt,
            histograms: histograms.mapValues(histogramData))
        if let f = fleet {
            r.fleet = Fleet(cars: f.cars, backend: f.backend, telemetry_sent: totals.sent,
                            telemetry_received: totals.received, commands_sent: totals.commandsSent,
                            commands_received: totals.commandsReceived,
                            commands_round_tripped: totals.commandsRoundTripped,
                            command_latency_ms: Percentiles(histograms["command"] ?? empty),
                            command_round_trip_ms: Percentiles(histograms["command_rtt"] ?? empty))
        }
        return r
    }

    /// Sums worker reports: counts add, histograms merge, duration is the longest.
    static func merge(_ parts: [Report], qos: Int) -> Report? {
        guard let first = parts.first else { return nil }
        var totals = Totals()
        var errors: [String: Int] = [:]
        var hist: [String: LatencyHistogram] = [:]
        var duration = 0.0
        var clients = 0
        var cars = 0, backend = 0
        var series: [UInt64: (UInt64, UInt64)] = [:]
        var lag: [UInt64: UInt64] = [:]
        var allConnected: Double? = 0
        var stopped: Double?
        for p in parts {
            for e in p.latency_series ?? [] where e.count == 3 {
                let m = series[e[0]] ?? (0, 0)
                series[e[0]] = (m.0 + e[1], Swift.max(m.1, e[2]))
            }
            for e in p.loop_lag_ms ?? [] where e.count == 2 { lag[e[0]] = Swift.max(lag[e[0]] ?? 0, e[1]) }
            if let a = p.all_connected_at, let b = allConnected { allConnected = Swift.max(a, b) } else { allConnected = nil }
            if let a = p.stopped_at { stopped = Swift.min(a, stopped ?? a) }
            clients += p.clients
            totals.connectOK += p.connected
            totals.connectFailed += p.connect_failed
            totals.subscribed += p.subscribed
            totals.sent += p.sent
            totals.acked += p.acked
            totals.publishFailed += p.publish_failed
            totals.received += p.received
            if let f = p.fleet {
                cars += f.cars; backend += f.backend
                totals.commandsSent += f.commands_sent
                totals.commandsReceived += f.commands_received
                totals.commandsRoundTripped += f.commands_round_tripped
            }
            duration = Swift.max(duration, p.duration_s)
            for (k, v) in p.errors { errors[k, default: 0] += v }
            for (k, d) in p.histograms {
                var h = hist[k] ?? makeHistogram()
                h.add(histogram(from: d))
                hist[k] = h
            }
        }
        return build(command: first.command, clients: clients, totals: totals, duration: duration, qos: qos,
                     histograms: hist, errors: errors, fleet: first.fleet == nil ? nil : (cars, backend),
                     workers: parts.count,
                     latencySeries: series.keys.sorted().map { [$0, series[$0]!.0, series[$0]!.1] },
                     loopLag: lag.keys.sorted().map { [$0, lag[$0]!] }, allConnectedAt: allConnected,
                     stoppedAt: stopped)
    }

    func jsonString() -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        guard let data = try? enc.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    func text() -> String {
        func p(_ x: Percentiles) -> String {
            x.count == 0 ? "-" : "p50 \(x.p50)  p90 \(x.p90)  p99 \(x.p99)  p99.9 \(x.p99_9)  max \(x.max)  (n=\(x.count))"
        }
        var s = "mqbench \(command): \(clients) clients, \(duration_s) s"
        if workers > 1 { s += " (\(workers) worker processes)" }
        s += "\n  connected    \(connected)  failed \(connect_failed)"
        if subscribed > 0 { s += "  subscribed \(subscribed)" }
        s += "\n  connect ms   \(p(connect_ms))"
        if let f = fleet {
            s += "\n  cars \(f.cars), backend \(f.backend)"
            s += "\n  telemetry    sent \(f.telemetry_sent) (\(rates.sent_per_s)/s)  received \(f.telemetry_received) (\(rates.received_per_s)/s)"
            s += "\n  telemetry ms \(p(latency_ms))"
            s += "\n  commands     sent \(f.commands_sent)  received by cars \(f.commands_received)  round-tripped \(f.commands_round_tripped)"
            s += "\n  command ms   \(p(f.command_latency_ms))"
            s += "\n  command rtt  \(p(f.command_round_trip_ms))"
        } else {
            s += "\n  sent         \(sent) (\(rates.sent_per_s)/s)  acked \(acked)  failed acks \(publish_failed)  unacked \(unacked)"
            s += "\n  received     \(received) (\(rates.received_per_s)/s)"
            s += "\n  latency ms   \(p(latency_ms))"
            if let a = ack_ms { s += "\n  ack ms       \(p(a))" }
        }
        if let l = loop_lag_max_ms { s += "\n  loop lag     max \(l) ms (mqbench's own loops)" }
        if errors.isEmpty {
            s += "\n  errors       none"
        } else {
            s += "\n  errors       \(errors_total): " + errors.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        }
        return s
    }
}
