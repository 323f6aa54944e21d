"""(e) fleet: `mqbench fleet`, cars publishing telemetry at 1 msg/s QoS 1, a shared-subscription
backend of 4 that sends commands to 10 % of the cars."""
import time

from ..clients import Client, common
from ..machine import IFADDRS
from . import HI, LO, Scenario, family, loss_pct, per_million, register

family("fleet", [
    ("telemetry_rate", "telemetry delivered rate", "msg/s", HI, "{:,.0f}"),
    ("telemetry_loss_pct", "telemetry not delivered by the end", "%", LO, "{:.3f}"),
    ("lat_p50", "telemetry latency p50", "ms", LO, "{:.2f}"),
    ("lat_p99", "telemetry latency p99", "ms", LO, "{:.2f}"),
    ("lat_p99_9", "telemetry latency p99.9", "ms", LO, "{:.2f}"),
    ("lat_max", "telemetry latency max", "ms", LO, "{:.2f}"),
    ("cmd_rtt_p50", "command round trip p50", "ms", LO, "{:.2f}"),
    ("cmd_rtt_p99", "command round trip p99", "ms", LO, "{:.2f}"),
    ("cpu_per_m", "broker CPU per million delivered", "s", LO, "{:.2f}"),
    ("steady_cpu_pct", "broker CPU in steady state", "% of a core", LO, "{:.1f}"),
    ("rss_mib", "broker RSS under load", "MiB", LO, "{:.1f}"),
    ("errors", "client errors", "", LO, "{:.0f}"),
], ["telemetry_rate", "lat_p50", "lat_p99", "cmd_rtt_p99", "cpu_per_m", "rss_mib"])


def run_fleet(broker, wd, P):
    cars = P["fleet_cars"]
    dur = P["fleet_dur"]
    cpu0 = broker.cpu_s()
    f = Client(wd, "fleet", ["fleet", *common(broker), "--ifaddr", IFADDRS, "-c", cars,
                             "-R", 5000, "--rate", 1, "-q", 1, "--backend", 4,
                             "--duration", dur])
    ready = f.wait_ready(60)
    notes = [] if ready else ["not every car connected"]
    cpu_ready = broker.cpu_s()
    t_ready = time.time()
    time.sleep(max(0.5, dur - (time.time() - f.started) - 2))
    cpu_steady = broker.cpu_s()
    t_steady = time.time()
    rss = broker.rss_kib()
    r = f.result(dur + 60)
    cpu1 = broker.cpu_s()
    fl = r["fleet"]
    delivered = fl["telemetry_received"] + fl["commands_received"] + fl["commands_round_tripped"]
    lat = r["latency_ms"]
    m = {
        "telemetry_rate": fl["telemetry_received"] / r["duration_s"],
        "telemetry_loss_pct": loss_pct(fl["telemetry_sent"], fl["telemetry_received"]),
        "lat_p50": lat["p50"], "lat_p99": lat["p99"], "lat_p99_9": lat["p99_9"],
        "lat_max": lat["max"],
        "cmd_rtt_p50": fl["command_round_trip_ms"]["p50"],
        "cmd_rtt_p99": fl["command_round_trip_ms"]["p99"],
        "cpu_per_m": per_million(cpu1 - cpu0, delivered),
        "steady_cpu_pct": (cpu_steady - cpu_ready) / (t_steady - t_ready) * 100,
        "rss_mib": rss / 1024,
        "errors": r["errors_total"] + r["connect_failed"],
    }
    return {"fleet": m}, notes, [f.argv]


@register
class Fleet(Scenario):
    letter = "e"
    name = "fleet"
    title = "(e) fleet: {fleet_cars:,} cars, 1 msg/s QoS 1, shared backend of 4"
    full = dict(fleet_cars=10000, fleet_dur=25.0)
    quick = dict(fleet_cars=1000, fleet_dur=6.0)

    def run_part(self, part, broker, wd, P):
        return (*run_fleet(broker, wd, P), None)

    def bullet(self, P):
        return (f"- (e) `mqbench fleet` with {P['fleet_cars']:,} cars (connected at 5,000/s), telemetry "
                "at 1 msg/s each, QoS 1, 4 backend clients sharing `$share/backend/cars/+/telemetry`, "
                f"10 % of the cars getting commands; {P['fleet_dur']:g} s including the connect phase. "
                "CPU per million counts every delivery (telemetry, commands, command acks) over the "
                "whole run; steady-state CPU is sampled after all cars connected. \"Not delivered by the "
                "end\" is telemetry sent but not received when the run stopped (in flight at the stop "
                "included).")
