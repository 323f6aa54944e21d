#!/usr/bin/env python3
"""`make bench-admin`: what the admin listener costs with 19,000 clients connected (issue 12).

With 19,000 idle MQTT clients on a release Turnpike (`mqbench conn`, two worker processes,
8 loopback source addresses, as scenario (a) of bench/run.py), the broker's CPU (utime+stime
from /proc/PID/stat, all threads) is measured over windows of --window seconds, alternately:

  idle      no HTTP request at all (the clients' keep-alive pings only);
  scrape    GET /metrics once a second, as a Prometheus scraper (one kept-alive connection);
  dashboard the dashboard page's requests every 2 s (stats, metrics, top clients, rules,
            bridges, dead letters, nodes), as one open browser tab.

The cost of a scraper is (scrape - idle) CPU, in % of one core; each window is repeated --runs
times, alternating, and the median is reported. Then `GET /api/v5/clients?limit=100` is timed
--requests times (client side, connection kept alive) with the clients connected, and a
filtered, ordered page (the dashboard's) half as often. Speed is never asserted by a test; this writes
bench/results/<date>-admin.md. Loopback only; every step is bounded in time.
"""
import argparse
import base64
import datetime
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from turnpike_bench import brokers, clients  # noqa: E402
from turnpike_bench.brokers import Broker  # noqa: E402
from turnpike_bench.clients import Client, common  # noqa: E402
from turnpike_bench.machine import HOST, IFADDRS, ROOT, free_port, log, wait_idle  # noqa: E402

KEY, SECRET = "bench", "bench-secret"
# mqbench pings at half the keepalive: with its default (300 s) all 19,000 clients ping at once
# 150 s in, ~0.2 s of broker CPU that landed in whichever window was running then. 1200 s keeps
# the pings out of the measurement (the run takes ~4 minutes).
KEEPALIVE = 1200
AUTH = "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
DASHBOARD_POLL = ["/api/v5/stats?aggregate=true", "/api/v5/metrics?aggregate=true",
                  "/api/v5/clients?conn_state=connected&order_by=msg&limit=10", "/api/v5/rules?limit=100",
                  "/api/v5/bridges", "/api/v5/dead_letters?limit=10", "/api/v5/nodes"]


class HTTP:
    """One kept-alive connection to the admin listener."""

    def __init__(self, port):
        self.c = http.client.HTTPConnection(HOST, port, timeout=10)

    def get(self, path):
        t0 = time.perf_counter()
        self.c.request("GET", path, headers={"Authorization": AUTH})
        r = self.c.getresponse()
        body = r.read()
        dt = time.perf_counter() - t0
        if r.status != 200:
            raise RuntimeError(f"GET {path}: {r.status} {body[:300]!r}")
        return dt, body

    def close(self):
        self.c.close()


def window(broker, seconds, requests_every=None, paths=()):
    """Broker CPU seconds over `seconds`, while `paths` are requested every `requests_every` s
    (none when None). Returns (cpu seconds, [request durations])."""
    stop = threading.Event()
    times = []
    http = HTTP(broker.admin_port) if requests_every else None

    def poll():
        nxt = time.monotonic()
        while not stop.is_set():
            for p in paths:
                times.append(http.get(p)[0])
            nxt += requests_every
            stop.wait(max(0.0, nxt - time.monotonic()))

    t = threading.Thread(target=poll) if http else None
    c0 = broker.cpu_s()
    t0 = time.monotonic()
    if t:
        t.start()
    time.sleep(seconds)
    stop.set()
    if t:
        t.join(15)
    c1 = broker.cpu_s()
    elapsed = time.monotonic() - t0
    if http:
        http.close()
    return (c1 - c0) / elapsed, times


def pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=19000)
    ap.add_argument("--window", type=float, default=20.0, help="seconds per CPU window (20)")
    ap.add_argument("--runs", type=int, default=3, help="windows of each kind, alternating (3)")
    ap.add_argument("--requests", type=int, default=100, help="timed GET /api/v5/clients?limit=100 (100)")
    ap.add_argument("--out", default=str(ROOT / "bench/results"))
    args = ap.parse_args()

    if not brokers.TURNPIKE.exists() or not clients.MQBENCH.exists():
        sys.exit(f"build release first: {brokers.TURNPIKE}, {clients.MQBENCH}")
    admin_port = free_port()
    admin_toml = f'\n[admin]\nport = {admin_port}\napi_key = "{KEY}"\napi_secret = "{SECRET}"\n'
    wd = Path(tempfile.mkdtemp(prefix="tp-bench-admin-"))
    waited, busy = wait_idle()
    log(f"machine idle after {waited:.0f} s ({busy:.2f} cores busy)")
    b = Broker("turnpike", wd, extra_toml=admin_toml).start()
    b.admin_port = admin_port
    results = {"clients": args.clients, "window_s": args.window, "runs": args.runs}
    notes = []
    try:
        c = Client(wd, "conn", ["conn", *common(b), "--ifaddr", IFADDRS, "-c", args.clients,
                                "-R", 20000, "-k", KEEPALIVE, "--duration", 900])
        connect_s, settled = c.wait_connects_settled(120)
        live = json.loads(HTTP(admin_port).get("/api/v5/stats?aggregate=true")[1])["live_connections.count"]
        log(f"{live} clients connected ({connect_s} s)")
        results["connected"] = live
        if live < args.clients:
            notes.append(f"only {live} of {args.clients} clients connected")
        b.wait_quiet(10)
        time.sleep(2)
        idle, scrape, dash = [], [], []
        scrape_times, dash_times = [], []
        for i in range(args.runs):
            cpu, _ = window(b, args.window)
            idle.append(cpu)
            cpu, t = window(b, args.window, 1.0, ["/metrics"])
            scrape.append(cpu)
            scrape_times += t
            cpu, t = window(b, args.window, 2.0, DASHBOARD_POLL)
            dash.append(cpu)
            dash_times += t
            log(f"run {i + 1}: idle {idle[-1] * 100:.2f} %, scraping {scrape[-1] * 100:.2f} %, "
                      f"dashboard {dash[-1] * 100:.2f} % of a core")
        http = HTTP(admin_port)
        _, body = http.get("/metrics")
        results["metrics_bytes"] = len(body)
        lat = []
        for _ in range(args.requests):
            dt, body = http.get("/api/v5/clients?limit=100")
            lat.append(dt)
            time.sleep(0.05)
        page = json.loads(body)
        assert len(page["data"]) == 100 and page["meta"]["count"] >= live, page["meta"]
        # With a filter every session is read on its loop (the unfiltered page asks only for
        # its 100): the dashboard's kind of request.
        filtered = []
        for _ in range(args.requests // 2):
            filtered.append(http.get("/api/v5/clients?conn_state=connected&order_by=msg&limit=100")[0])
            time.sleep(0.05)
        one = [http.get("/metrics")[0] for _ in range(20)]
        http.close()
        results.update({
            "idle_cpu_pct": [x * 100 for x in idle], "scrape_cpu_pct": [x * 100 for x in scrape],
            "dashboard_cpu_pct": [x * 100 for x in dash],
            "scrape_cost_pct": statistics.median(s - i for s, i in zip(scrape, idle)) * 100,
            "dashboard_cost_pct": statistics.median(d - i for d, i in zip(dash, idle)) * 100,
            "scrape_ms": {"p50": pct(scrape_times, 50) * 1e3, "p99": pct(scrape_times, 99) * 1e3,
                          "max": max(scrape_times) * 1e3},
            "scrape_alone_ms": {"p50": pct(one, 50) * 1e3, "max": max(one) * 1e3},
            "dashboard_request_ms": {"p50": pct(dash_times, 50) * 1e3, "max": max(dash_times) * 1e3},
            "clients_ms": {"p50": pct(lat, 50) * 1e3, "p90": pct(lat, 90) * 1e3, "p99": pct(lat, 99) * 1e3,
                           "max": max(lat) * 1e3},
            "clients_filtered_ms": {"p50": pct(filtered, 50) * 1e3, "p99": pct(filtered, 99) * 1e3,
                                    "max": max(filtered) * 1e3},
            "rss_mib": b.rss_kib() / 1024,
        })
        c.interrupt()
        c.result(60)
    finally:
        crashed, note = b.stop()
        if note:
            notes.append(note)
    write(results, notes, args, b.command)


def write(r, notes, args, command):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    day = datetime.date.today().isoformat()
    path = out / f"{day}-admin.md"
    n = 2
    while path.exists():
        path = out / f"{day}-{n}-admin.md"
        n += 1
    f = lambda xs: ", ".join(f"{x:.2f}" for x in xs)
    verdict = lambda ok: "yes" if ok else "**no**"
    lines = [
        f"# Admin listener at {r['connected']:,} connections ({day})", "",
        f"`bench/admin.py` (`make bench-admin`), release build, `{' '.join(str(x) for x in command)}`; "
        f"{r['connected']:,} idle clients from `mqbench conn -c {r['clients']} -R 20000 -k {KEEPALIVE}` (2 worker processes, "
        f"8 loopback source addresses). Broker CPU from /proc/PID/stat over {r['window_s']:.0f} s windows, "
        f"{r['runs']} of each kind, alternating; the machine's 2 cores are shared with the clients (and other people's builds).",
        "",
        "| figure | value | target | met |", "| --- | --- | --- | --- |",
        f"| broker CPU, no requests | {f(r['idle_cpu_pct'])} % of a core | | |",
        f"| broker CPU, `GET /metrics` every second | {f(r['scrape_cpu_pct'])} % of a core | | |",
        f"| **cost of the scraper** (median of scrape − idle) | **{r['scrape_cost_pct']:.2f} % of a core** | < 1 % | {verdict(r['scrape_cost_pct'] < 1)} |",
        f"| one `/metrics` scrape (client side) | p50 {r['scrape_ms']['p50']:.1f} ms, p99 {r['scrape_ms']['p99']:.1f} ms; {r['metrics_bytes']:,} bytes | | |",
        f"| **`GET /api/v5/clients?limit=100`** ({args.requests} requests) | **p50 {r['clients_ms']['p50']:.1f} ms, p90 {r['clients_ms']['p90']:.1f} ms, p99 {r['clients_ms']['p99']:.1f} ms, max {r['clients_ms']['max']:.1f} ms** | < 50 ms | {verdict(r['clients_ms']['p99'] < 50)} |",
        f"| `GET /api/v5/clients?conn_state=connected&order_by=msg&limit=100` (every session read on its loop) | p50 {r['clients_filtered_ms']['p50']:.1f} ms, p99 {r['clients_filtered_ms']['p99']:.1f} ms, max {r['clients_filtered_ms']['max']:.1f} ms | | |",
        f"| broker CPU, one dashboard tab (7 requests every 2 s) | {f(r['dashboard_cpu_pct'])} % of a core; cost {r['dashboard_cost_pct']:.2f} % | | |",
        f"| dashboard request (client side) | p50 {r['dashboard_request_ms']['p50']:.1f} ms, max {r['dashboard_request_ms']['max']:.1f} ms | | |",
        f"| broker RSS with the clients connected | {r['rss_mib']:.0f} MiB | | |",
        "",
    ]
    if notes:
        lines += ["Notes:", ""] + [f"- {x}" for x in notes] + [""]
    lines += ["Raw figures:", "", "```json", json.dumps(r, indent=1), "```", ""]
    path.write_text("\n".join(lines))
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
