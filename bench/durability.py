#!/usr/bin/env python3
"""`make bench-durability`: what the durable store costs, in one run, side by side.

(1) QoS 1 publishes queued for 1,000 offline persistent sessions: 100 publishers (mqbench pub,
    QoS 1, 64 in flight each) send to cars/<n>/cmd, one per offline session, as fast as acks
    come back. Reported per broker configuration: acknowledged msg/s, broker CPU µs per message,
    p50/p99 ack latency (PUBLISH sent → PUBACK), bytes the broker wrote to disk per message
    (/proc/PID/io write_bytes), and every message checked to be queued (the sessions drain).
      Turnpike durability "sync" (default), "periodic" (1 s) and "none"; mosquitto 2.0 with
      `persistence true` (it writes a snapshot only every autosave_interval, 30 min by default,
      and at shutdown: nothing between).
(2) Restart time with 100,000 and 1,000,000 stored sessions (written by bench/storegen as the
    broker writes them): seconds from exec to accepting connections, the recovery time the
    broker logs, and RSS after recovery.

Writes bench/results/<date>-durability.md. Loopback only; every step is bounded in time.
"""
import argparse
import datetime
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from turnpike_bench.brokers import MOSQUITTO, TURNPIKE  # noqa: E402
from turnpike_bench.clients import MQBENCH  # noqa: E402
from turnpike_bench.machine import (BUILD, HOST, ROOT, free_port, proc_cpu_s, proc_status,  # noqa: E402
                                    proc_write_bytes)

STOREGEN = BUILD / "storegen"


def log(msg):
    print(f"[{datetime.datetime.now():%H:%M:%S}] {msg}", flush=True)


class Proc:
    def __init__(self, cmd, workdir, name):
        self.log = open(Path(workdir) / f"{name}.log", "w")
        self.logpath = Path(workdir) / f"{name}.log"
        self.started = time.monotonic()
        self.p = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  start_new_session=True)

    def wait_port(self, port, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.p.poll() is not None:
                raise RuntimeError(f"exited: {self.logpath.read_text()[-2000:]}")
            try:
                with socket.create_connection((HOST, port), timeout=0.2):
                    return time.monotonic() - self.started
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("not listening")

    def cpu_s(self):
        return proc_cpu_s(self.p.pid)

    def write_bytes(self):
        return proc_write_bytes(self.p.pid)

    def rss_kib(self):
        return proc_status(self.p.pid, "VmRSS")

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


def start_broker(kind, workdir, port):
    data = Path(workdir) / "data"
    if kind.startswith("turnpike"):
        durability = kind.split("-", 1)[1]
        cfg = Path(workdir) / "turnpike.toml"
        cfg.write_text(f"""[server]
sys_interval = 0
[limits]
max_inflight = 20
max_queued_messages = 1000
[storage]
durability = "{durability}"
commit_interval_ms = {1000 if durability == "periodic" else 0}
""")
        cmd = [str(TURNPIKE), "serve", "--config", str(cfg), "--bind", HOST, "--port", str(port),
               "--threads", "2", "--data", str(data), "--log-level", "warning"]
    else:
        cfg = Path(workdir) / "mosquitto.conf"
        data.mkdir(exist_ok=True)
        cfg.write_text(f"""listener {port} {HOST}
allow_anonymous true
persistence true
persistence_location {data}/
max_inflight_messages 20
max_queued_messages 1000
sys_interval 0
set_tcp_nodelay true
log_type error
""")
        cmd = [MOSQUITTO, "-c", str(cfg)]
    b = Proc(cmd, workdir, kind)
    b.wait_port(port)
    return b


def mqbench(args, workdir, name, timeout):
    out = Path(workdir) / f"{name}.json"
    r = subprocess.run([str(MQBENCH), *map(str, args), "--json"], stdout=open(out, "w"),
                       stderr=subprocess.PIPE, text=True, timeout=timeout)
    text = out.read_text().strip().splitlines()
    if r.returncode != 0 or not text:
        raise RuntimeError(f"mqbench {args[0]} failed ({r.returncode}): {r.stderr[-1500:]}")
    return json.loads(text[-1])


def queued_case(kind, sessions, per_session, publishers, interval_ms=0):
    wd = tempfile.mkdtemp(prefix=f"tp-dur-{kind}-")
    try:
        port = free_port()
        b = start_broker(kind, wd, port)
        # The offline persistent sessions: subscribe once, then leave (clean session 0).
        mqbench(["sub", "-h", HOST, "-p", port, "-c", sessions, "-R", 2000, "-t", "cars/%i/cmd", "-q", 1,
                 "-C", "false", "-V", 4, "--prefix", "car", "--duration", 2], wd, "subscribe", 120)
        time.sleep(0.5)
        total = sessions * per_session
        cpu0, io0 = b.cpu_s(), b.write_bytes()
        # Publisher k sends to cars/<k + 100 j>/cmd … : every session gets per_session messages.
        rep = mqbench(["pub", "-h", HOST, "-p", port, "-c", publishers, "-t", "cars/%i/cmd", "-q", 1,
                       "-F", 64, "-s", 64, "-I", interval_ms, "-L", total // publishers, "-V", 4, "--prefix", "backend",
                       "--spread", sessions], wd, "publish", 600)
        cpu1, io1 = b.cpu_s(), b.write_bytes()
        acked = rep["acked"]
        secs = rep["duration_s"]
        # Every acknowledged message is queued: the sessions come back and drain.
        drained = mqbench(["sub", "-h", HOST, "-p", port, "-c", sessions, "-R", 2000, "-t", "cars/%i/cmd", "-q", 1,
                           "-C", "false", "-V", 4, "--prefix", "car", "--duration", 6], wd, "drain", 120)
        b.stop()
        return {"acked": acked, "msg_per_s": acked / secs if secs else 0,
                "cpu_us_per_msg": (cpu1 - cpu0) * 1e6 / max(1, acked),
                "ack_p50_ms": (rep.get("ack_ms") or {}).get("p50"), "ack_p99_ms": (rep.get("ack_ms") or {}).get("p99"),
                "bytes_written_per_msg": (io1 - io0) / max(1, acked), "drained": drained["received"],
                "failed": rep["publish_failed"]}
    finally:
        shutil.rmtree(wd, ignore_errors=True)


def restart_case(n):
    wd = tempfile.mkdtemp(prefix=f"tp-restart-{n}-")
    try:
        t0 = time.monotonic()
        subprocess.run([str(STOREGEN), str(n), f"{wd}/data"], check=True, timeout=600)
        gen_s = time.monotonic() - t0
        size = sum(f.stat().st_size for f in Path(f"{wd}/data/store").iterdir() if f.is_file())
        port = free_port()
        cfg = Path(wd) / "turnpike.toml"
        cfg.write_text("[server]\nsys_interval = 0\n")
        b = Proc([str(TURNPIKE), "serve", "--config", str(cfg), "--bind", HOST, "--port", str(port),
                  "--threads", "2", "--data", f"{wd}/data"], wd, "restart")
        ready_s = b.wait_port(port, timeout=600)
        rss = b.rss_kib()
        b.stop()
        m = re.search(r"storage: recovered (\d+) sessions.* in (\d+) ms", b.logpath.read_text())
        return {"sessions": int(m.group(1)) if m else None, "recovery_ms": int(m.group(2)) if m else None,
                "ready_s": ready_s, "rss_mib": rss / 1024, "store_mib": size / 2**20, "write_s": gen_s}
    finally:
        shutil.rmtree(wd, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    sessions, per_session, publishers = (1000, 100, 100) if not args.quick else (200, 20, 20)
    restarts = [100_000, 1_000_000] if not args.quick else [10_000]
    kinds = ["turnpike-sync", "turnpike-periodic", "turnpike-none", "mosquitto"]
    results = {k: [] for k in kinds}
    paced = {k: [] for k in kinds}
    # Paced: each publisher one message every 2 ms, 50,000 msg/s offered in all.
    interval = 2
    for r in range(args.runs):
        for k in kinds:
            log(f"run {r + 1}/{args.runs}: {k}")
            res = queued_case(k, sessions, per_session, publishers)
            log(f"  as fast as acknowledged: {res}")
            results[k].append(res)
            res = queued_case(k, sessions, per_session, publishers, interval_ms=interval)
            log(f"  paced at {publishers * 1000 // interval:,} msg/s: {res}")
            paced[k].append(res)
    restart = {}
    for n in restarts:
        log(f"restart with {n:,} stored sessions")
        restart[n] = [restart_case(n) for _ in range(args.runs)]
        log(f"  {restart[n]}")

    def med(rows, key):
        vals = sorted(x[key] for x in rows if x.get(key) is not None)
        return vals[len(vals) // 2] if vals else None

    def fmt(v, nd=1):
        return "–" if v is None else (f"{v:,.{nd}f}" if isinstance(v, float) else f"{v:,}")

    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    mosq = subprocess.run([MOSQUITTO, "-h"], capture_output=True, text=True).stdout.splitlines()[0:1]
    today = datetime.date.today().isoformat()
    out = [f"# Durability cost — {today}", "",
           f"Turnpike {rev} vs {mosq[0] if mosq else 'mosquitto'}, 2 cores, loopback, release builds, "
           f"{args.runs} run(s), medians. Command: `bench/durability.py{' --quick' if args.quick else ''} --runs {args.runs}`.", "",
           f"## QoS 1 publishes queued for {sessions:,} offline persistent sessions", "",
           f"{publishers} publishers, 64 in flight each, 64 B payloads, {sessions * per_session:,} messages, one per "
           f"session per round, as fast as acknowledgements come back (closed loop: {publishers * 64:,} messages in "
           "flight, so the ack latency is mostly waiting in that queue); every broker then has its sessions drain "
           "what was queued, and the count is checked.", "",
           "| broker | acked msg/s | broker CPU µs/msg | ack p50 / p99 (ms) | bytes written per msg | queued = drained |",
           "| --- | --- | --- | --- | --- | --- |"]
    for k in kinds:
        rows = results[k]
        out.append(f"| {k} | {fmt(med(rows, 'msg_per_s'), 0)} | {fmt(med(rows, 'cpu_us_per_msg'))} | "
                   f"{fmt(med(rows, 'ack_p50_ms'), 2)} / {fmt(med(rows, 'ack_p99_ms'), 2)} | "
                   f"{fmt(med(rows, 'bytes_written_per_msg'), 0)} | "
                   f"{'yes' if all(x['drained'] == x['acked'] for x in rows) else 'NO: ' + str([(x['acked'], x['drained']) for x in rows])} |")
    reached = med([x for k in kinds for x in paced[k]], "msg_per_s") or 0
    out += ["", f"The same, paced: each publisher is asked for one message every {interval} ms "
                f"({publishers * 1000 // interval:,} msg/s in all; mqbench's pacing reached {reached:,.0f} msg/s with "
                "every broker alike, so that is the load), so that the ack latency is mostly the broker's:", "",
            "| broker | acked msg/s | broker CPU µs/msg | ack p50 / p99 (ms) | bytes written per msg | queued = drained |",
            "| --- | --- | --- | --- | --- | --- |"]
    for k in kinds:
        rows = paced[k]
        out.append(f"| {k} | {fmt(med(rows, 'msg_per_s'), 0)} | {fmt(med(rows, 'cpu_us_per_msg'))} | "
                   f"{fmt(med(rows, 'ack_p50_ms'), 2)} / {fmt(med(rows, 'ack_p99_ms'), 2)} | "
                   f"{fmt(med(rows, 'bytes_written_per_msg'), 0)} | "
                   f"{'yes' if all(x['drained'] == x['acked'] for x in rows) else 'NO'} |")
    sync, mq = results["turnpike-sync"], results["mosquitto"]
    if med(mq, "msg_per_s"):
        out += ["", f"Turnpike sync / mosquitto (persistence true): msg/s {med(sync, 'msg_per_s') / med(mq, 'msg_per_s'):.2f}, "
                    f"CPU per message {med(sync, 'cpu_us_per_msg') / med(mq, 'cpu_us_per_msg'):.2f}. mosquitto writes nothing "
                    "until its autosave (30 min) or shutdown: its figures are those of a broker that would lose every one "
                    "of these messages in a crash."]
    out += ["", "## Restart with stored sessions (Turnpike)", "",
            "| stored sessions | store on disk (MiB) | recovery (logged, ms) | exec → accepting (s) | RSS after recovery (MiB) |",
            "| --- | --- | --- | --- | --- |"]
    for n, rows in restart.items():
        out.append(f"| {n:,} | {fmt(med(rows, 'store_mib'))} | {fmt(med(rows, 'recovery_ms'))} | "
                   f"{fmt(med(rows, 'ready_s'), 2)} | {fmt(med(rows, 'rss_mib'))} |")
    out += ["", "Raw figures:", "", "```json", json.dumps({"queued": results, "paced": paced, "restart": {str(k): v for k, v in restart.items()}}, indent=1), "```"]
    path = ROOT / "bench/results" / f"{today}-durability{'-quick' if args.quick else ''}.md"
    path.write_text("\n".join(out) + "\n")
    log(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
