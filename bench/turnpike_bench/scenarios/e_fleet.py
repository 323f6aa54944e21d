"""(e) fleet: `mqbench fleet`, cars publishing telemetry at 1 msg/s QoS 1, a shared-subscription
backend of 4 that sends commands to 10 % of the cars; once with cars and backend in one mqbench
process, once with the backend in a process of its own (--role)."""
import http.client
import re
import time

from ..brokers import Broker
from ..clients import Client, common
from ..machine import HOST, IFADDRS, free_port
from . import HI, INFO, LO, Scenario, family, loss_pct, per_million, register

family("fleet", [
    ("telemetry_rate", "telemetry delivered rate", "msg/s", HI, "{:,.0f}"),
    ("telemetry_loss_pct", "telemetry not delivered by the end", "%", LO, "{:.3f}"),
    ("lat_p50", "telemetry latency p50", "ms", LO, "{:.2f}"),
    ("lat_p99", "telemetry latency p99", "ms", LO, "{:.2f}"),
    ("lat_p99_9", "telemetry latency p99.9", "ms", LO, "{:.2f}"),
    ("lat_max", "telemetry latency max", "ms", LO, "{:.2f}"),
    ("lat_max_connect", "telemetry latency max, sent during the connect phase", "ms", LO, "{:.2f}"),
    ("lat_max_steady", "telemetry latency max, sent after all connected (less the last second)", "ms", LO, "{:.2f}"),
    ("lat_max_stop", "telemetry latency max, sent in the last second (then every car stops at once)", "ms", LO, "{:.2f}"),
    ("cmd_rtt_p50", "command round trip p50", "ms", LO, "{:.2f}"),
    ("cmd_rtt_p99", "command round trip p99", "ms", LO, "{:.2f}"),
    ("cpu_per_m", "broker CPU per million delivered", "s", LO, "{:.2f}"),
    ("steady_cpu_pct", "broker CPU in steady state", "% of a core", LO, "{:.1f}"),
    ("rss_mib", "broker RSS under load", "MiB", LO, "{:.1f}"),
    ("broker_lag_connect_ms", "broker loop lag max, connect phase (Turnpike's /metrics)", "ms", INFO, "{:.0f}"),
    ("broker_lag_steady_ms", "broker loop lag max, after all connected", "ms", INFO, "{:.0f}"),
    ("broker_lag_stop_ms", "broker loop lag max, the cars stopping", "ms", INFO, "{:.0f}"),
    ("mqbench_lag_connect_ms", "mqbench loop lag max, connect phase", "ms", INFO, "{:.0f}"),
    ("mqbench_lag_steady_ms", "mqbench loop lag max, after all connected", "ms", INFO, "{:.0f}"),
    ("mqbench_lag_stop_ms", "mqbench loop lag max, the cars stopping", "ms", INFO, "{:.0f}"),
    ("errors", "client errors", "", LO, "{:.0f}"),
], ["lat_p99", "lat_max_connect", "lat_max_steady", "lat_max_stop", "cpu_per_m", "rss_mib"],
    match=lambda ck: ck in ("fleet", "fleet-split"))

LAG = re.compile(r'^turnpike_loop_longest_iteration_seconds\{loop="\d+"\} (\S+)$', re.M)


def broker_lag_ms(port):
    """Turnpike's longest loop iteration since the last scrape (any loop), in ms; None without
    an admin listener."""
    if port is None:
        return None
    try:
        c = http.client.HTTPConnection(HOST, port, timeout=5)
        c.request("GET", "/metrics")
        body = c.getresponse().read().decode()
        c.close()
    except OSError:
        return None
    vals = [float(v) * 1000 for v in LAG.findall(body)]
    return max(vals) if vals else None


def phase(t, t_all, t_stop):
    """connect (before the last car had its SUBACK), stop (the last second before the cars
    stopped, and after), or steady."""
    if t < t_all:
        return "connect"
    return "stop" if t >= t_stop - 1.0 else "steady"


def phase_max(series, t_all, t_stop, which):
    """Max latency (ms) of the messages sent in one phase, from mqbench's latency_series
    ([send ms rounded down to 100 ms, count, max µs]; a bucket belongs to the phase of its end)."""
    if not series or t_all is None or t_stop is None:
        return None
    vals = [mx for ms, n, mx in series if n and phase(ms / 1000 + 0.1, t_all, t_stop) == which]
    return max(vals) / 1000 if vals else None


def lag_phase_max(lags, t_all, t_stop, which):
    """mqbench's loop lag: entries are [second, ms over the second or so before it] (the last
    one read after the stop)."""
    if not lags or t_all is None or t_stop is None:
        return None
    def of(sec):     # the entry read in [sec, sec + 1) covers about the second before
        if sec - 0.5 < t_all:
            return "connect"
        return "stop" if sec + 1.0 >= t_stop else "steady"
    vals = [ms for sec, ms in lags if of(sec) == which]
    return max(vals) if vals else None


def run_fleet(broker, wd, P, split):
    cars = P["fleet_cars"]
    dur = P["fleet_dur"]
    admin = getattr(broker, "admin_port", None)
    notes = []
    cars_argv = ["fleet", *common(broker), "--ifaddr", IFADDRS, "-c", cars, "-R", 5000,
                 "--rate", 1, "-q", 1, "--backend", 4, "--duration", dur]
    be = None
    if split:
        # The backend first, in a process of its own; it stops when the cars stop.
        be = Client(wd, "fleet-backend", ["fleet", *common(broker), "-c", cars, "-q", 1,
                                          "--backend", 4, "--role", "backend",
                                          "--duration", dur + 60])
        if be.wait_ready(10) is None:
            raise RuntimeError("fleet backend did not connect: " + be.stderr()[-500:])
    broker_lag_ms(admin)                                   # a new lag period from here
    cpu0 = broker.cpu_s()
    f = Client(wd, "fleet-cars" if split else "fleet", cars_argv + (["--role", "cars"] if split else []))
    ready = f.wait_ready(60)
    if not ready:
        notes.append("not every car connected")
    lag_connect = broker_lag_ms(admin)
    cpu_ready = broker.cpu_s()
    t_ready = time.time()
    time.sleep(max(0.5, dur - (time.time() - f.started) - 2))
    cpu_steady = broker.cpu_s()
    t_steady = time.time()
    rss = broker.rss_kib()
    lag_steady = broker_lag_ms(admin)
    if be:
        time.sleep(max(0.0, f.started + dur - time.time()))
        be.interrupt()
    r = f.result(dur + 60)
    rb = be.result(30) if be else r
    lag_stop = broker_lag_ms(admin)
    cpu1 = broker.cpu_s()
    fl, fb = r["fleet"], rb["fleet"]
    sent = fl["telemetry_sent"]
    received = fb["telemetry_received"]
    delivered = received + fl["commands_received"] + fb["commands_round_tripped"]
    lat = rb["latency_ms"]
    t_all = r.get("all_connected_at")
    t_stop = r.get("stopped_at")
    series = rb.get("latency_series")
    lags = [x for rep in ([r, rb] if be else [r]) for x in (rep.get("loop_lag_ms") or [])]
    m = {
        "telemetry_rate": received / r["duration_s"],
        "telemetry_loss_pct": loss_pct(sent, received),
        "lat_p50": lat["p50"], "lat_p99": lat["p99"], "lat_p99_9": lat["p99_9"],
        "lat_max": lat["max"],
        "lat_max_connect": phase_max(series, t_all, t_stop, "connect"),
        "lat_max_steady": phase_max(series, t_all, t_stop, "steady"),
        "lat_max_stop": phase_max(series, t_all, t_stop, "stop"),
        "cmd_rtt_p50": fb["command_round_trip_ms"]["p50"],
        "cmd_rtt_p99": fb["command_round_trip_ms"]["p99"],
        "cpu_per_m": per_million(cpu1 - cpu0, delivered),
        "steady_cpu_pct": (cpu_steady - cpu_ready) / (t_steady - t_ready) * 100,
        "rss_mib": rss / 1024,
        "broker_lag_connect_ms": lag_connect,
        "broker_lag_steady_ms": lag_steady,
        "broker_lag_stop_ms": lag_stop,
        "mqbench_lag_connect_ms": lag_phase_max(lags, t_all, t_stop, "connect"),
        "mqbench_lag_steady_ms": lag_phase_max(lags, t_all, t_stop, "steady"),
        "mqbench_lag_stop_ms": lag_phase_max(lags, t_all, t_stop, "stop"),
        "errors": r["errors_total"] + r["connect_failed"]
                  + ((rb["errors_total"] + rb["connect_failed"]) if be else 0),
        # For a closer look (the JSON only): per 100 ms of send time [ms, count, max µs], when
        # the last car connected, when they stopped.
        "latency_series": series, "all_connected_at": t_all, "stopped_at": t_stop,
    }
    return {"fleet-split" if split else "fleet": m}, notes, ([be.argv] if be else []) + [f.argv]


@register
class Fleet(Scenario):
    letter = "e"
    name = "fleet"
    title = "(e) fleet: {fleet_cars:,} cars, 1 msg/s QoS 1, shared backend of 4"
    full = dict(fleet_cars=10000, fleet_dur=25.0)
    quick = dict(fleet_cars=1000, fleet_dur=6.0)
    case_labels = {"fleet": "cars and backend in one mqbench process",
                   "fleet-split": "backend in an mqbench process of its own"}

    def parts(self):
        return [("fleet", False), ("fleet", True)]

    def broker(self, kind, wd, part):
        # Turnpike gets its admin listener, read twice a run for its loop lag.
        if kind != "turnpike":
            return Broker(kind, wd)
        port = free_port()
        b = Broker(kind, wd, extra_toml=f"\n[admin]\nport = {port}\n")
        b.admin_port = port
        return b

    def run_part(self, part, broker, wd, P):
        return (*run_fleet(broker, wd, P, part[1]), None)

    def bullet(self, P):
        return (f"- (e) `mqbench fleet` with {P['fleet_cars']:,} cars (connected at 5,000/s), telemetry "
                "at 1 msg/s each, QoS 1, 4 backend clients sharing `$share/backend/cars/+/telemetry`, "
                f"10 % of the cars getting commands; {P['fleet_dur']:g} s including the connect phase. "
                "It runs twice on fresh brokers: cars and backend in one mqbench process (as before "
                "2026-12-02), and the backend in a process of its own (`--role backend`, started first, "
                "stopped when the cars stop; the cars `--role cars`), so that its reads do not wait for "
                "the cars' connects and publishes on the same loops. "
                "CPU per million counts every delivery (telemetry, commands, command acks) over the "
                "whole run; steady-state CPU is sampled after all cars connected. \"Not delivered by the "
                "end\" is telemetry sent but not received when the run stopped (in flight at the stop "
                "included). The maximum latency is split by send time (100 ms buckets): before the last car "
                "had its SUBACK (the connect phase), the last second before the cars stop (mqbench then "
                "disconnects all of them at once, and what was in flight arrives while the broker closes "
                "10,000 connections), and the steady state between. Loop lag is the longest "
                "event-loop iteration per phase: mqbench's own (both processes), and Turnpike's from "
                "`turnpike_loop_longest_iteration_seconds` (an admin listener on loopback, scraped when "
                "the cars start, when all are connected, 2 s before the stop and after it; mosquitto has "
                "no such figure).")
