"""(b) fan-in: 100 publishers -> 1 subscriber on one topic, QoS 0/1 x 64 B/1 KiB. The offered
rate ramps (doubling, then a bisection) to the highest lossless delivered rate; QoS 1 then runs
once flat out (-I 0 -F 20) to show overload."""
import math
import time

from ..clients import Client, common
from ..machine import CpuSampler, log
from . import HI, INFO, LO, Scenario, family, loss_pct, per_million, register

FANIN_CASES = [(0, 64), (1, 64), (0, 1024), (1, 1024)]
FANIN_START = 10000          # msg/s offered at the first ramp step
FANIN_MAX = 640000
FANIN_PUBS = 100
FANIN_P99_MAX = 250.0   # ms; above it a step is building a backlog, not keeping up

family("fanin", [
    ("max_lossless", "highest lossless delivered rate", "msg/s", HI, "{:,.0f}"),
    ("lat_p50", "latency p50 at that rate", "ms", LO, "{:.2f}"),
    ("lat_p99", "latency p99 at that rate", "ms", LO, "{:.2f}"),
    ("lat_p99_9", "latency p99.9 at that rate", "ms", LO, "{:.2f}"),
    ("lat_max", "latency max at that rate", "ms", LO, "{:.2f}"),
    ("cpu_per_m", "broker CPU per million delivered", "s", LO, "{:.2f}"),
    ("cpu_cores", "broker CPU at that rate", "cores", INFO, "{:.2f}"),
    ("mqbench_cpu_per_m", "mqbench CPU per million delivered", "s", INFO, "{:.2f}"),
    ("mqbench_cores", "mqbench CPU at that rate", "cores", INFO, "{:.2f}"),
    ("all_cores", "broker + mqbench CPU at that rate", "cores", INFO, "{:.2f}"),
    ("ov_offered", "overload: offered (first failed step)", "msg/s", INFO, "{:,.0f}"),
    ("ov_ingest", "overload: publishers' rate (QoS 1: acked)", "msg/s", HI, "{:,.0f}"),
    ("ov_delivered", "overload: delivered rate", "msg/s", HI, "{:,.0f}"),
    ("ov_loss", "overload: loss", "%", LO, "{:.1f}"),
    ("ov_cpu_cores", "overload: broker CPU", "cores", INFO, "{:.2f}"),
    ("ov_mqbench_cores", "overload: mqbench CPU", "cores", INFO, "{:.2f}"),
    ("rss_mib", "broker RSS after the runs", "MiB", LO, "{:.1f}"),
    ("peak_rss_mib", "broker peak RSS", "MiB", LO, "{:.1f}"),
    ("errors", "client errors", "", LO, "{:.0f}"),
], ["max_lossless", "lat_p99", "cpu_per_m", "ov_delivered", "ov_loss", "peak_rss_mib"],
    match=lambda ck: ck.startswith("q"))


def fanin_step(broker, wd, qos, size, rate, dur, drain, tag):
    """One step: 1 subscriber, 100 publishers at `rate` msg/s in total (-I 0: as fast as the
    window allows). Returns the measured figures."""
    # A topic of its own: after an overloaded step the broker may still be reading the last
    # step's publishes out of socket buffers, and they must not reach this step's subscriber.
    topic = f"bench/fanin/{tag}"
    broker.wait_quiet()
    sub = Client(wd, f"{tag}-sub", ["sub", *common(broker), "-c", 1, "-t", topic, "-q", qos,
                                    "--duration", dur + 60])
    if sub.wait_ready(10) is None:
        raise RuntimeError("fan-in subscriber did not connect: " + sub.stderr()[-500:])
    interval = 0 if rate == 0 else FANIN_PUBS * 1000.0 / rate
    cpu0 = broker.cpu_s()
    sub_cpu0 = sub.cpu_s()
    pub = Client(wd, f"{tag}-pub", ["pub", *common(broker), "-c", FANIN_PUBS, "-R", 5000,
                                    "-t", topic, "-q", qos, "-s", size, "-I", f"{interval:.4g}",
                                    "-F", 20, "-w", "--duration", dur])
    sampler = CpuSampler({"broker": broker.pid, "pub": pub.proc.pid, "sub": sub.proc.pid}).start()
    p = pub.result(dur + 30)
    time.sleep(drain)
    sub.interrupt()
    s = sub.result(30)
    sampler.stop()
    cpu1 = broker.cpu_s()
    rss = broker.rss_kib()
    pub_s = pub.publishing_s(p)
    # The load generator's own CPU over the same window as the broker's: the publishers' process
    # from start to exit, the subscriber's from the publishers' start to its exit. Cores: what
    # each used while the publishers published (from the samples).
    mq_cpu = pub.cpu_s() + sub.cpu_s() - sub_cpu0
    t_pub0 = pub.started + (p["duration_s"] - pub_s)
    t_pub1 = pub.started + p["duration_s"]
    cores = sampler.cores(["broker"], t_pub0, t_pub1)
    mq_cores = sampler.cores(["pub", "sub"], t_pub0, t_pub1)
    lat = s["latency_ms"]
    return {
        "offered": rate, "sent": p["sent"], "acked": p["acked"], "received": s["received"],
        "sent_rate": p["sent"] / pub_s, "acked_rate": p["acked"] / pub_s,
        "delivered_rate": s["received"] / pub_s,
        "loss_pct": loss_pct(p["sent"], s["received"]),
        "p50": lat["p50"], "p99": lat["p99"], "p99_9": lat["p99_9"], "max": lat["max"],
        "cpu_s": cpu1 - cpu0, "cpu_per_m": per_million(cpu1 - cpu0, s["received"]),
        "cpu_cores": cores,
        "mqbench_cpu_s": mq_cpu, "mqbench_cpu_per_m": per_million(mq_cpu, s["received"]),
        "mqbench_cores": mq_cores,
        "rss_mib": rss / 1024,
        "errors": p["errors_total"] + s["errors_total"] + p["connect_failed"]
                  + s["connect_failed"],
        "argv": [sub.argv, pub.argv],
    }


def step_passes(st):
    """Lossless and keeping up: the publishers sent at least 90 % of the offered rate, the
    subscriber got at least 99.9 % of what was sent, and its p99 latency stayed bounded."""
    return (st["sent_rate"] >= 0.90 * st["offered"] and st["loss_pct"] is not None
            and st["loss_pct"] <= 0.1 and st["p99"] <= FANIN_P99_MAX and st["errors"] == 0)


def run_fanin(broker, wd, P, qos, size):
    steps = []
    n = [0]

    def step(rate):
        n[0] += 1
        st = fanin_step(broker, wd, qos, size, rate, P["fanin_step"], P["fanin_drain"],
                        f"fanin-q{qos}-{size}-{n[0]}")
        st["pass"] = step_passes(st)
        steps.append(st)
        log(f"    {broker.kind} fan-in q{qos} {size} B offered {rate}/s: sent "
            f"{st['sent_rate']:.0f}/s delivered {st['delivered_rate']:.0f}/s loss "
            f"{st['loss_pct']:.2f}% p99 {st['p99']:.1f} ms -> {'pass' if st['pass'] else 'FAIL'}")
        return st

    good, bad = None, None
    rate = FANIN_START
    while rate <= FANIN_MAX:
        st = step(rate)
        if st["pass"]:
            good = st
            rate *= 2
        else:
            bad = st
            break
    if good is None:                       # even the first step failed: go down
        rate = FANIN_START // 2
        while rate >= 1000 and good is None:
            st = step(rate)
            if st["pass"]:
                good = st
            else:
                bad = st
                rate //= 2
    for _ in range(P["fanin_bisect"] if good and bad else 0):
        mid = int(round(math.sqrt(good["offered"] * bad["offered"]) / 1000.0) * 1000)
        if mid in (good["offered"], bad["offered"]):
            break
        st = step(mid)
        if st["pass"]:
            good = st
        else:
            bad = st if st["offered"] < bad["offered"] else bad

    m = {}
    if good:
        m.update({"max_lossless": good["delivered_rate"], "lat_p50": good["p50"],
                  "lat_p99": good["p99"], "lat_p99_9": good["p99_9"], "lat_max": good["max"],
                  "cpu_per_m": good["cpu_per_m"], "cpu_cores": good["cpu_cores"],
                  "mqbench_cpu_per_m": good["mqbench_cpu_per_m"],
                  "mqbench_cores": good["mqbench_cores"],
                  "all_cores": (good["cpu_cores"] + good["mqbench_cores"]
                                if good["cpu_cores"] is not None and good["mqbench_cores"] is not None
                                else None)})
    # Overload: QoS 1 as fast as the publishers' windows allow (-I 0 -F 20); QoS 0 has no
    # window, -I 0 would only measure how fast mqbench fills socket buffers, so QoS 0's
    # overload figure is the first ramp step that failed.
    if qos == 1:
        n[0] += 1
        ov = fanin_step(broker, wd, qos, size, 0, P["fanin_overload"], P["fanin_drain"],
                        f"fanin-q{qos}-{size}-{n[0]}-max")
        log(f"    {broker.kind} fan-in q1 {size} B -I 0 -F 20: acked {ov['acked_rate']:.0f}/s "
            f"delivered {ov['delivered_rate']:.0f}/s loss {ov['loss_pct']:.1f}%")
        steps.append(ov)
        m.update({"ov_offered": None, "ov_ingest": ov["acked_rate"],
                  "ov_delivered": ov["delivered_rate"], "ov_loss": ov["loss_pct"],
                  "ov_cpu_cores": ov["cpu_cores"], "ov_mqbench_cores": ov["mqbench_cores"]})
    elif bad:
        m.update({"ov_offered": bad["offered"], "ov_ingest": bad["sent_rate"],
                  "ov_delivered": bad["delivered_rate"], "ov_loss": bad["loss_pct"],
                  "ov_cpu_cores": bad["cpu_cores"], "ov_mqbench_cores": bad["mqbench_cores"]})
    m["rss_mib"] = broker.rss_kib() / 1024
    m["peak_rss_mib"] = broker.hwm_kib() / 1024
    m["errors"] = sum(s["errors"] for s in steps)
    argv = [a for s in steps[:1] for a in s["argv"]]
    if qos == 1:
        argv += steps[-1]["argv"][1:]
    for s in steps:
        s.pop("argv", None)
    return {f"q{qos}-{size}": m}, [], argv, steps


def fanin_intro(P):
    """The "why a ramp" block of the results file (for (b) and (f))."""
    nb = P["fanin_bisect"]
    bisect_text = {0: "no bisection", 1: "one bisection"}.get(nb, f"{nb} bisections")
    return [
        "### Fan-in (b): why a ramp and not one `-I 0` run",
        "",
        "MQTT has no end-to-end flow control: a broker acknowledges a publisher when it has the "
        "message, not when the subscriber has it. With 100 publishers and one subscriber the "
        "subscriber's queue is the bottleneck, and both brokers drop past "
        "`max_queued_messages` (1000 per client) — so \"as fast as it goes\" is not lossless even "
        "at QoS 1 with `-I 0 -F 20` (the broker acks the publishers within its own window; the "
        "subscriber's window is 20). At QoS 0 with `-I 0` the publishers have no window at all: "
        "they fill the kernel's socket buffers faster than any broker reads them, so the run "
        "measures buffer sizes and how the 2 cores are shared with mqbench (seconds of latency, "
        "most messages never read before the end), not the broker.",
        "",
        f"So (b) ramps the offered rate (100 publishers at a fixed interval each, `-I`): "
        f"{FANIN_START:,} msg/s, doubling while the step passes, then "
        f"{bisect_text} "
        f"between the last pass and the first failure (geometric mean), each step "
        f"{P['fanin_step']:g} s of publishing plus {P['fanin_drain']:g} s for the last messages to "
        "arrive, on a topic of its own, once the broker is idle again after the last step. A step passes when the publishers achieved ≥ 90 % of the offered rate and the "
        f"subscriber received ≥ 99.9 % of what was sent with a p99 latency under "
        f"{FANIN_P99_MAX:g} ms (above that the broker is building a backlog, not keeping up). Rates are over the "
        "publishing time (the step less the clients' connect phase, which TLS handshakes make "
        "long); the 10 % margin covers timer jitter in 100 publishers, and a broker that cannot "
        "keep up at QoS 1 slows its publishers far more than that. **Highest lossless delivered rate** is "
        "the subscriber's rate at the highest passing step (so its resolution is the step size, "
        "about ×1.4); latency and CPU are from that step, i.e. at each broker's own limit, not at "
        "equal load — (d) compares latency at equal load. **Overload** shows what happens past "
        "the limit: for QoS 1 one run at `-I 0 -F 20` (publishers as fast as their 20-message "
        "windows allow; \"publishers' rate\" is then the broker's acknowledged ingest rate); for "
        "QoS 0 the first failing ramp step (offered rate in the table). Loss there is "
        "(sent − received)/sent.",
        "",
        "The load generator runs on the same 2 cores, so each table also shows **mqbench's own "
        "CPU** (utime+stime of the publishers' and the subscriber's processes over the step) per "
        "million delivered, and both as cores used while the publishers published (/proc sampled "
        "every 100 ms). When broker and mqbench together use about 2 cores, the machine, not the "
        "broker, is what stopped the ramp.",
        "",
    ]


RAMP_NOTE = ("# ramp steps vary -I (100 publishers: -I = 100000 / offered msg/s); "
             "QoS 1 overload runs use -I 0")


@register
class FanIn(Scenario):
    letter = "b"
    name = "fanin"
    title = "(b) fan-in: 100 publishers -> 1 subscriber"
    full = dict(fanin_step=3.0, fanin_drain=1.5, fanin_bisect=1, fanin_overload=5.0)
    quick = dict(fanin_step=1.5, fanin_drain=1.0, fanin_bisect=0, fanin_overload=2.0)
    case_labels = {"q0-64": "QoS 0, 64 B", "q1-64": "QoS 1, 64 B", "q0-1024": "QoS 0, 1 KiB",
                   "q1-1024": "QoS 1, 1 KiB"}
    intro_for = ("b", "f")
    commands_note = RAMP_NOTE

    def parts(self):
        return [("fanin", q, s) for q, s in FANIN_CASES]

    def run_part(self, part, broker, wd, P):
        c, n, a, steps = run_fanin(broker, wd, P, *part[1:])
        return c, n, a, {"case": f"q{part[1]}-{part[2]}", "steps": steps}

    def intro(self, P, order):
        return fanin_intro(P)
