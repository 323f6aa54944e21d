"""(c) fan-out: one QoS 0 publisher at a fixed rate -> many QoS 0 subscribers on one topic."""
import time

from ..clients import Client, common
from ..machine import IFADDRS
from . import HI, LO, Scenario, family, loss_pct, per_million, register

family("fanout", [
    ("delivered_rate", "delivered rate", "msg/s", HI, "{:,.0f}"),
    ("loss_pct", "loss", "%", LO, "{:.2f}"),
    ("lat_p50", "latency p50", "ms", LO, "{:.2f}"),
    ("lat_p99", "latency p99", "ms", LO, "{:.2f}"),
    ("lat_p99_9", "latency p99.9", "ms", LO, "{:.2f}"),
    ("lat_max", "latency max", "ms", LO, "{:.2f}"),
    ("cpu_per_m", "broker CPU per million delivered", "s", LO, "{:.2f}"),
    ("rss_mib", "broker RSS under load", "MiB", LO, "{:.1f}"),
    ("errors", "client errors", "", LO, "{:.0f}"),
], ["delivered_rate", "loss_pct", "lat_p50", "lat_p99", "cpu_per_m", "rss_mib"])


def run_fanout(broker, wd, P):
    n = P["fanout_subs"]
    interval = 1000.0 / P["fanout_msg_rate"]
    sub = Client(wd, "fanout-sub", ["sub", *common(broker), "--ifaddr", IFADDRS, "-c", n,
                                    "-R", 5000, "-t", "bench/fanout", "-q", 0,
                                    "--duration", P["fanout_dur"] + 120])
    if sub.wait_ready(60) is None:
        raise RuntimeError("fan-out subscribers did not all connect: " + sub.stderr()[-500:])
    cpu0 = broker.cpu_s()
    pub = Client(wd, "fanout-pub", ["pub", *common(broker), "-c", 1, "-t", "bench/fanout",
                                    "-q", 0, "-s", 64, "-I", f"{interval:g}",
                                    "--duration", P["fanout_dur"]])
    time.sleep(P["fanout_dur"] - 2 if P["fanout_dur"] > 4 else P["fanout_dur"] / 2)
    rss = broker.rss_kib()
    p = pub.result(P["fanout_dur"] + 30)
    mark = len(sub.live_lines())
    sub.wait_quiet(mark, 5.0)
    sub.interrupt()
    s = sub.result(30)
    cpu1 = broker.cpu_s()
    expected = p["sent"] * n
    lat = s["latency_ms"]
    m = {
        "delivered_rate": s["received"] / p["duration_s"],
        "loss_pct": loss_pct(expected, s["received"]),
        "lat_p50": lat["p50"], "lat_p99": lat["p99"], "lat_p99_9": lat["p99_9"],
        "lat_max": lat["max"],
        "cpu_per_m": per_million(cpu1 - cpu0, s["received"]),
        "rss_mib": rss / 1024,
        "errors": p["errors_total"] + s["errors_total"] + s["connect_failed"],
    }
    return {"fanout": m}, [], [sub.argv, pub.argv]


@register
class FanOut(Scenario):
    letter = "c"
    name = "fanout"
    title = "(c) fan-out: 1 publisher -> {fanout_subs:,} subscribers, QoS 0"
    full = dict(fanout_subs=1000, fanout_msg_rate=100, fanout_dur=10.0)
    quick = dict(fanout_subs=100, fanout_msg_rate=100, fanout_dur=2.0)

    def run_part(self, part, broker, wd, P):
        return (*run_fanout(broker, wd, P), None)

    def bullet(self, P):
        return (f"- (c) {P['fanout_subs']:,} QoS 0 subscribers on one topic; one QoS 0 publisher at "
                f"{P['fanout_msg_rate']} msg/s, 64 B, for {P['fanout_dur']:g} s = "
                f"{P['fanout_msg_rate'] * P['fanout_subs']:,} deliveries/s offered. Delivered rate = "
                "messages received / publishing time (messages still arriving up to 5 s after the "
                "publisher stopped count; later ones are loss). At a fixed offered rate the delivered "
                "rate only drops with loss; a broker that cannot keep up shows it in latency.")
