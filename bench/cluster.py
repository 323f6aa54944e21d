#!/usr/bin/env python3
"""What the cluster hop costs, and a model of a 10,000,000-car fleet on 50 nodes.

Part 1 (measured, release build, loopback): a real three-server NATS cluster with JetStream
(Tests/integration/natscluster.py) and two Turnpike nodes. 100 publishers send QoS 1 256-byte
messages to one QoS 1 subscriber, paced and flat out, three ways:
  single    one Turnpike without [cluster] (the baseline),
  same      publishers and subscriber on node0 of the cluster,
  cross     publishers on node1, subscriber on node0: every message crosses NATS.
Each run sends a bounded count and checks the subscriber got exactly that many. Figures:
delivered msg/s, latency p50/p99 (mqbench's send timestamp in the payload), broker CPU µs per
message (both nodes, utime+stime from /proc) and NATS CPU µs per message (all three servers).

Part 2 (a model, in-process, driven by part 1's figures): nodes needed for a fleet of connected
cars, inter-node traffic, and which resource runs out first. See `model()` for the assumptions.

  python3 bench/cluster.py [--quick] [--runs N]      (make bench-cluster)
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "Tests/integration"))
from natscluster import NatsCluster  # noqa: E402
from turnpike_bench import brokers  # noqa: E402
from turnpike_bench.clients import Client, common  # noqa: E402
from turnpike_bench.machine import log, proc_cpu_s  # noqa: E402

PUBS = 100
SIZE = 256
# One subscriber takes 100 publishers' messages: with the fan-in default (1,000 queued) a flat-out
# run drops past it, which would measure the queue bound, not the hop. Here nothing is dropped.
TOML = brokers.TURNPIKE_TOML.replace("max_queued_messages = 1000\n", "max_queued_messages = 1000000\n")


def Broker(kind, wd, extra_toml=""):
    return brokers.Broker(kind, wd, extra_toml=extra_toml, base_toml=TOML)


def cluster_toml(i, nats, prefix):
    urls = ", ".join(f'"{u}"' for u in nats.urls[i:] + nats.urls[:i])
    return f'\n[cluster]\nnode_name = "node{i}"\nnats = [{urls}]\nsubject_prefix = "{prefix}"\n'


def one_run(wd, sub_node, pub_node, nats, per_pub, rate, tag):
    topic = f"bench/hop/{tag}"
    sub = Client(wd, f"{tag}-sub", ["sub", *common(sub_node), "-c", 1, "-t", topic, "-q", 1, "--duration", 400])
    if sub.wait_ready(10) is None:
        raise RuntimeError("subscriber did not connect: " + sub.stderr()[-500:])
    time.sleep(0.5)                       # the interest crosses the NATS routes
    interval = 0 if rate == 0 else PUBS * 1000.0 / rate
    brokers = {sub_node.pid, pub_node.pid}
    nats_pids = [p.pid for p in nats.procs if p] if nats else []
    cpu0 = sum(proc_cpu_s(p) for p in brokers)
    ncpu0 = sum(proc_cpu_s(p) for p in nats_pids)
    pub = Client(wd, f"{tag}-pub", ["pub", *common(pub_node), "-c", PUBS, "-R", 5000, "-t", topic, "-q", 1,
                                      "-s", SIZE, "-I", f"{interval:.4g}", "-F", 20, "-L", per_pub, "-w", "--duration", 300])
    p = pub.result(300)
    expected = PUBS * per_pub
    mark = len(sub.live_lines())
    sub.wait_quiet(mark, 20.0)
    sub.interrupt()
    s = sub.result(30)
    cpu1 = sum(proc_cpu_s(p) for p in brokers)
    ncpu1 = sum(proc_cpu_s(p) for p in nats_pids)
    pub_s = pub.publishing_s(p)
    lat = s["latency_ms"]
    return {"received": s["received"], "expected": expected,
            "rate": s["received"] / pub_s if pub_s else None,
            "p50": lat["p50"], "p99": lat["p99"],
            "cpu_us": (cpu1 - cpu0) / max(1, s["received"]) * 1e6,
            "nats_cpu_us": (ncpu1 - ncpu0) / max(1, s["received"]) * 1e6 if nats_pids else None}


CONNS = 2000


def connect_run(wd, node, tag, prefix, clean=True):
    """CONNS clients connecting at 1,000/s (persistent sessions unless `clean`), then disconnecting:
    CONNECT→CONNACK p50/p99 as mqbench measures it."""
    extra = [] if clean else ["-C", "false", "-x", 3600]
    c = Client(wd, f"{tag}-conn", ["conn", *common(node), "-c", CONNS, "-R", 1000, "--prefix", prefix, *extra,
                                     "--duration", 6])
    r = c.result(60)
    ms = r["connect_ms"]
    return {"connected": r.get("connected", CONNS), "p50": ms["p50"], "p99": ms["p99"]}


def measure_connects(wd, nats, rep):
    """CONNECT latency: one node without [cluster]; a cluster node (a registry read and create per
    new client id); the same ids again on the same node (a read only); the same persistent ids on
    the other node (a read, a takeover request to the node that had them, a compare-and-set)."""
    out = {}
    (wd / f"cs{rep}").mkdir()
    single = Broker("turnpike", wd / f"cs{rep}").start()
    try:
        out["connect single"] = connect_run(wd, single, f"cs{rep}", f"c{rep}s")
    finally:
        single.stop()
    (wd / f"cn0-{rep}").mkdir()
    (wd / f"cn1-{rep}").mkdir()
    n0 = Broker("turnpike", wd / f"cn0-{rep}", extra_toml=cluster_toml(0, nats, f"k{rep}")).start()
    n1 = Broker("turnpike", wd / f"cn1-{rep}", extra_toml=cluster_toml(1, nats, f"k{rep}")).start()
    try:
        time.sleep(4)                        # the registry's buckets exist
        out["connect cluster, new ids"] = connect_run(wd, n0, f"cn{rep}a", f"c{rep}p", clean=False)
        out["connect cluster, same node again"] = connect_run(wd, n0, f"cn{rep}b", f"c{rep}p", clean=False)
        out["connect cluster, moved to the other node"] = connect_run(wd, n1, f"cn{rep}c", f"c{rep}p", clean=False)
    finally:
        n0.stop()
        n1.stop()
    return out


def measure(args):
    wd = Path(tempfile.mkdtemp(prefix="tp-bench-cluster-"))
    per_pub = 100 if args.quick else 500
    results = {}
    nats = NatsCluster(3).start()
    try:
        for rep in range(args.runs):
            (wd / f"single{rep}").mkdir()
            single = Broker("turnpike", wd / f"single{rep}").start()
            n0 = n1 = None
            try:
                for mode, rate in (("paced", 20_000), ("max", 0)):
                    results.setdefault(f"single {mode}", []).append(one_run(wd, single, single, None, per_pub, rate, f"s{rep}{mode}"))
                single.stop()
                single = None
                (wd / f"n0-{rep}").mkdir()
                (wd / f"n1-{rep}").mkdir()
                n0 = Broker("turnpike", wd / f"n0-{rep}", extra_toml=cluster_toml(0, nats, f"b{rep}")).start()
                n1 = Broker("turnpike", wd / f"n1-{rep}", extra_toml=cluster_toml(1, nats, f"b{rep}")).start()
                time.sleep(3)                 # heartbeats, JetStream set-up
                for mode, rate in (("paced", 20_000), ("max", 0)):
                    results.setdefault(f"same {mode}", []).append(one_run(wd, n0, n0, nats, per_pub, rate, f"a{rep}{mode}"))
                    results.setdefault(f"cross {mode}", []).append(one_run(wd, n0, n1, nats, per_pub, rate, f"x{rep}{mode}"))
            finally:
                for b in (single, n0, n1):
                    if b:
                        b.stop()
            for k, v in measure_connects(wd, nats, rep).items():
                results.setdefault(k, []).append(v)
            log(f"run {rep + 1} of {args.runs} done")
    finally:
        nats.stop()
    return results


def med(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def model(fig):
    """10,000,000 connected cars on N nodes of 2 cores and 24 GiB, each car sending one 256-byte
    telemetry message every 10 s (1,000,000 msg/s) to backend subscribers that are on other
    nodes (so every message crosses NATS once), and receiving one command a minute. Per-node
    figures from part 1 (CPU per message, local and with the hop) and from bench/results
    (0.62 KiB of RSS per idle connection, bench (a) 2026-12-02); a node runs
    its cores at 70 % at most. NATS: measured CPU per forwarded message, 3 servers."""
    cars, nodes = 10_000_000, 50
    msgs = cars / 10 + cars / 60
    per_node_msgs = msgs / nodes
    # A message published on one node and delivered on another costs `cross` in all (both nodes'
    # CPU summed); spread over the fleet, each node does that much work per message of its share.
    cpu_cross = fig["cross max"]["cpu_us"]
    cpu_local = fig["same max"]["cpu_us"]
    cores_needed = per_node_msgs * cpu_cross / 1e6 / 0.7
    mem_gib = cars / nodes * 0.62 / 1024 / 1024
    nats_cpu = (fig["cross max"]["nats_cpu_us"] or 0) * msgs / 1e6
    lines = [
        f"- Load: {cars:,} cars, {msgs:,.0f} msg/s ({cars / 10:,.0f} telemetry + {cars / 60:,.0f} commands), {nodes} nodes: {per_node_msgs:,.0f} msg/s and {cars // nodes:,} connections per node.",
        f"- CPU per node: {per_node_msgs:,.0f} msg/s × {cpu_cross:.1f} µs (a message with the hop: the publisher's node and the subscriber's together) = {per_node_msgs * cpu_cross / 1e6:.2f} cores; at 70 % that is {cores_needed:.2f} of each node's 2 cores"
        + (" — fits." if cores_needed <= 2 else f" — does not fit: {int(msgs * cpu_cross / 1e6 / 0.7 / 2) + 1} nodes needed."),
        f"- Memory per node: {cars // nodes:,} connections × 0.62 KiB = {mem_gib:.2f} GiB of 24 (sessions' queued messages come on top).",
        f"- Inter-node traffic: every telemetry message once over NATS: {cars / 10 * (SIZE + 150) / 1e6:,.0f} MB/s in the NATS cluster (256 B payload + ~150 B of subject and headers), {cars / 10 / nodes * (SIZE + 150) / 1e6:.1f} MB/s out of each node.",
        f"- NATS: {fig['cross max']['nats_cpu_us'] or 0:.1f} µs of NATS-server CPU per forwarded message (3 servers together, measured) × {msgs:,.0f}/s = {nats_cpu:,.0f} cores for the NATS cluster — "
        + ("the first thing to saturate: NATS needs its own machines (or more servers in the cluster; each forwards only what it has interest for)." if nats_cpu > 3 * 2 * 0.7 else "within three 2-core servers."),
        f"- The hop: {cpu_cross:.1f} µs of Turnpike CPU per message across two nodes against {cpu_local:.1f} µs on one node of the cluster ({fig['single max']['cpu_us']:.1f} µs without [cluster]): {cpu_cross - cpu_local:+.1f} µs for crossing, spread over two nodes.",
        f"- Where it saturates first: NATS ({nats_cpu:,.0f} cores at {msgs:,.0f} msg/s), then Turnpike CPU ({cores_needed:.2f} of 2 cores per node), then memory (far below): at 50 nodes the fleet fits; the per-node limit is about {int(2 * 0.7 / (cpu_cross / 1e6)):,} crossing msg/s.",
    ]
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--report", help="render the markdown again from a results .json (no runs)")
    args = ap.parse_args()
    results = json.loads(Path(args.report).read_text()) if args.report else measure(args)
    fig = {k: {m: med(v, m) for m in ("rate", "p50", "p99", "cpu_us", "nats_cpu_us", "connected")} for k, v in results.items()}
    exact = all(r["received"] == r["expected"] for v in results.values() for r in v if "expected" in r)
    out = ROOT / "bench/results" / f"{time.strftime('%Y-%m-%d')}-cluster.md"
    w = [f"# Cluster hop, {time.strftime('%Y-%m-%d %H:%M')}", "",
         f"{args.runs} run(s), medians; {PUBS} publishers × {100 if args.quick else 500} QoS 1 {SIZE} B messages, one QoS 1 subscriber (max_queued_messages 1,000,000, so nothing is dropped); "
         "paced = 20,000 msg/s offered, max = as fast as the windows allow. Release build, loopback, three NATS 2.9 servers. "
         f"Every run delivered exactly what was sent: {'yes' if exact else 'NO (see json)'}.", "",
         "| case | delivered msg/s | p50 ms | p99 ms | Turnpike CPU µs/msg (all nodes) | NATS CPU µs/msg |",
         "|---|---|---|---|---|---|"]
    for k in ("single paced", "same paced", "cross paced", "single max", "same max", "cross max"):
        f = fig[k]
        def c(v, fmt):
            return "–" if v is None else format(v, fmt)
        w.append(f"| {k} | {c(f['rate'], ',.0f')} | {c(f['p50'], '.1f')} | {c(f['p99'], '.1f')} | {c(f['cpu_us'], '.1f')} | {c(f['nats_cpu_us'], '.1f')} |")
    conn_keys = [k for k in ("connect single", "connect cluster, new ids", "connect cluster, same node again",
                             "connect cluster, moved to the other node") if k in fig]
    if conn_keys:
        w += ["", f"## CONNECT latency ({CONNS:,} clients at 1,000/s, CONNECT→CONNACK)", "",
              "| case | connected | p50 ms | p99 ms |", "|---|---|---|---|"]
        for k in conn_keys:
            f = fig[k]
            w.append(f"| {k.removeprefix('connect ')} | {f['connected']:,.0f} | {f['p50']:.2f} | {f['p99']:.2f} |")
        w += ["", "New ids: a registry read and a create (two JetStream round trips); the same node again: one "
              "read; moved: a read, the takeover request to the other node (which disconnects its session "
              "and sends it), and a compare-and-set."]
    w += ["", "## A 10,000,000-car fleet on 50 nodes (model)", "", *model(fig), ""]
    out.write_text("\n".join(w))
    (out.with_suffix(".json")).write_text(json.dumps(results, indent=1))
    print("\n".join(w))
    log(f"results in {out}")


if __name__ == "__main__":
    main()
