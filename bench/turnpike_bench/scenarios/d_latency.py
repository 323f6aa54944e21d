"""(d) latency at equal load: 100 QoS 1 publishers at 200 msg/s each -> one QoS 1 subscriber."""
import time

from ..clients import Client, common
from . import HI, LO, Scenario, family, loss_pct, per_million, register

family("latency", [
    ("lat_p50", "latency p50", "ms", LO, "{:.2f}"),
    ("lat_p90", "latency p90", "ms", LO, "{:.2f}"),
    ("lat_p99", "latency p99", "ms", LO, "{:.2f}"),
    ("lat_p99_9", "latency p99.9", "ms", LO, "{:.2f}"),
    ("lat_max", "latency max", "ms", LO, "{:.2f}"),
    ("delivered_rate", "delivered rate", "msg/s", HI, "{:,.0f}"),
    ("loss_pct", "loss", "%", LO, "{:.3f}"),
    ("cpu_per_m", "broker CPU per million delivered", "s", LO, "{:.2f}"),
    ("rss_mib", "broker RSS under load", "MiB", LO, "{:.1f}"),
    ("errors", "client errors", "", LO, "{:.0f}"),
], ["lat_p50", "lat_p99", "lat_p99_9", "lat_max", "cpu_per_m", "rss_mib"])


def run_latency(broker, wd, P):
    sub = Client(wd, "lat-sub", ["sub", *common(broker), "-c", 1, "-t", "bench/latency",
                                 "-q", 1, "--duration", P["lat_dur"] + 120])
    if sub.wait_ready(10) is None:
        raise RuntimeError("latency subscriber did not connect: " + sub.stderr()[-500:])
    cpu0 = broker.cpu_s()
    pub = Client(wd, "lat-pub", ["pub", *common(broker), "-c", 100, "-R", 5000,
                                 "-t", "bench/latency", "-q", 1, "-s", 256, "-I", 5, "-F", 20,
                                 "-w", "--duration", P["lat_dur"]])
    time.sleep(max(1.0, P["lat_dur"] - 2))
    rss = broker.rss_kib()
    p = pub.result(P["lat_dur"] + 30)
    mark = len(sub.live_lines())
    sub.wait_quiet(mark, 5.0)
    sub.interrupt()
    s = sub.result(30)
    cpu1 = broker.cpu_s()
    lat = s["latency_ms"]
    m = {
        "lat_p50": lat["p50"], "lat_p90": lat["p90"], "lat_p99": lat["p99"],
        "lat_p99_9": lat["p99_9"], "lat_max": lat["max"],
        "delivered_rate": s["received"] / pub.publishing_s(p),
        "loss_pct": loss_pct(p["sent"], s["received"]),
        "cpu_per_m": per_million(cpu1 - cpu0, s["received"]),
        "rss_mib": rss / 1024,
        "errors": p["errors_total"] + s["errors_total"] + p["connect_failed"],
    }
    return {"latency": m}, [], [sub.argv, pub.argv]


@register
class Latency(Scenario):
    letter = "d"
    name = "latency"
    title = "(d) latency: 20,000 msg/s QoS 1 fan-in, 256 B"
    full = dict(lat_dur=10.0)
    quick = dict(lat_dur=2.0)

    def run_part(self, part, broker, wd, P):
        return (*run_latency(broker, wd, P), None)

    def bullet(self, P):
        return (f"- (d) 100 QoS 1 publishers at 200 msg/s each (`-I 5 -F 20`), 256 B, one QoS 1 "
                f"subscriber, {P['lat_dur']:g} s.")
