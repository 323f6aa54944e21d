#!/usr/bin/env python3
"""Turnpike against mosquitto on loopback: runs each scenario against both brokers, alternately,
and writes bench/results/<date>.md (tables: median and min-max over the runs, Turnpike/mosquitto
ratio), <date>-<scenario>.png charts and <date>.json (every run's raw figures).

Scenarios (see bench/README.md):
  a  idle connections: connect rate, broker RSS per connection
  b  fan-in, 100 publishers -> 1 subscriber, QoS 0/1, 64 B / 1 KiB: highest lossless rate, overload
  c  fan-out, 1 publisher -> 1,000 subscribers, QoS 0, fixed rate
  d  latency at a fixed 20,000 msg/s QoS 1 fan-in, 256 B
  e  fleet: 10,000 cars at 1 msg/s QoS 1, shared-subscription backend of 4
  f  (a) and (b) over TLS: idle TLS connections (handshake cost, RSS per TLS connection) and
     the fan-in ramp with every client on TLS (certificates from certs/make-dev-certs.sh)
  g  bridges: 1,000 cars, QoS 1, 256 B, one rule -> a Kafka / PostgreSQL bridge (real servers),
     records landed per second checked by count, CPU per message, publish->sink latency, with
     and without ack = 'after_sink'; mosquitto (no such bridge) runs the load with a plain
     subscriber as the "broker without a sink" reference (bench/bridges.py)

Needs: .build/release/{turnpike,mqbench} (swift build -c release), mosquitto, matplotlib for the
charts (bench/run.sh sets all of that up). Brokers run one at a time, each on a fresh port.
"""
import argparse
import datetime
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bridges

ROOT = Path(__file__).resolve().parent.parent
# TURNPIKE_BIN / MQBENCH_BIN benchmark other builds (e.g. a clean export of a commit);
# BENCH_TURNPIKE_REV then names what was built, for the results file.
MQBENCH = Path(os.environ.get("MQBENCH_BIN", ROOT / ".build/release/mqbench"))
TURNPIKE = Path(os.environ.get("TURNPIKE_BIN", ROOT / ".build/release/turnpike"))
CLK_TCK = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"
# Source addresses for the scenarios with thousands of clients: one address's even ephemeral
# ports (~14k, which connect() prefers) run out at 19,000 clients and connects stall for seconds.
IFADDRS = ",".join(f"127.0.0.{i}" for i in range(1, 9))
BROKERS = ("turnpike", "mosquitto")
LABEL = {"turnpike": "Turnpike", "mosquitto": "mosquitto"}
COLOR = {"turnpike": "#1f6fb4", "mosquitto": "#e08a1e"}

TURNPIKE_TOML = """\
[server]
sys_interval = 0

[limits]
max_inflight = 20
max_queued_messages = 1000
max_packet_size = 1048576
max_connections = 0
"""

# set_tcp_nodelay: Turnpike sets TCP_NODELAY on every accepted socket; mosquitto does not unless
# told, and Nagle's algorithm would add delay to mosquitto's small writes.
MOSQUITTO_SETTINGS = """\
allow_anonymous true
persistence false
max_inflight_messages 20
max_queued_messages 1000
max_packet_size 1048576
sys_interval 0
set_tcp_nodelay true
log_type error
max_connections -1
"""
MOSQUITTO_CONF = "listener {port} 127.0.0.1\n" + MOSQUITTO_SETTINGS

# (f): the same settings, but the clients' listener is TLS (a plain one stays for the
# harness's own liveness check only). Certificates: certs/make-dev-certs.sh (RSA 2048, TLS 1.3
# negotiated by both). `user root`: started as root, mosquitto would otherwise drop to a user
# that cannot read the key in the harness's private temporary directory.
TURNPIKE_TLS_LISTENERS = """
[[listeners]]
bind = "127.0.0.1"
port = {plain}

[[listeners]]
bind = "127.0.0.1"
port = {port}
certfile = "{certs}/server.crt"
keyfile = "{certs}/server.key"
"""

MOSQUITTO_TLS_CONF = "per_listener_settings false\nuser root\n" + MOSQUITTO_SETTINGS + """\
listener {plain} 127.0.0.1
listener {port} 127.0.0.1
certfile {certs}/server.crt
keyfile {certs}/server.key
"""

FULL = dict(
    idle_conns=19000, conn_rate=20000, idle_hold=5.0,
    fanin_step=3.0, fanin_drain=1.5, fanin_bisect=1, fanin_overload=5.0,
    fanout_subs=1000, fanout_msg_rate=100, fanout_dur=10.0,
    lat_dur=10.0,
    fleet_cars=10000, fleet_dur=25.0,
)
QUICK = dict(
    idle_conns=2000, conn_rate=20000, idle_hold=2.0,
    fanin_step=1.5, fanin_drain=1.0, fanin_bisect=0, fanin_overload=2.0,
    fanout_subs=100, fanout_msg_rate=100, fanout_dur=2.0,
    lat_dur=2.0,
    fleet_cars=1000, fleet_dur=6.0,
)

FOREIGN_MAX = 0.15     # cores used by other processes, on average over a run, before it is redone
FANIN_CASES = [(0, 64), (1, 64), (0, 1024), (1, 1024)]
FANIN_START = 10000          # msg/s offered at the first ramp step
FANIN_MAX = 640000
FANIN_PUBS = 100


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Processes

def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_idle(limit=180, threshold=0.3):
    """Waits (at most `limit` s) until the machine is idle: other people's builds and tests
    share these 2 cores. Returns (seconds waited, cores busy at the last look)."""
    t0 = time.time()
    busy = machine_busy(1.0)
    while busy > threshold and time.time() - t0 < limit:
        busy = machine_busy(2.0)
    waited = time.time() - t0 - 1.0
    return (waited if waited > 0.5 else 0.0), busy


def busy_s():
    """Non-idle CPU seconds of the whole machine since boot."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / CLK_TCK


def own_cpu_s():
    """CPU seconds of this process and of every child it has waited for (brokers, mqbench
    and mqbench's workers)."""
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def machine_busy(seconds):
    """Non-idle CPU of the whole machine over `seconds`, in cores (0..nproc)."""
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + v[4]
        return sum(v) - idle
    a = snap()
    time.sleep(seconds)
    return (snap() - a) / CLK_TCK / seconds


class Broker:
    def __init__(self, kind, workdir, tls=None, extra_toml=""):
        """tls: the directory of make-dev-certs.sh's files, for a TLS listener; extra_toml:
        more of Turnpike's configuration (rules, bridges)."""
        self.kind = kind
        self.tls = tls
        self.extra_toml = extra_toml
        self.workdir = Path(workdir)
        self.proc = None
        self.port = None
        self.command = None
        self.background_cores = None

    def start(self):
        self.port = free_port()
        plain = free_port() if self.tls else self.port
        if self.kind == "turnpike":
            cfg = self.workdir / "turnpike.toml"
            cmd = [str(TURNPIKE), "serve", "--config", str(cfg), "--log-level", "warning",
                   "--threads", "2", "--data", str(self.workdir / "data")]
            if self.tls:
                cfg.write_text(TURNPIKE_TOML + TURNPIKE_TLS_LISTENERS.format(
                    plain=plain, port=self.port, certs=self.tls))
            else:
                cfg.write_text(TURNPIKE_TOML + self.extra_toml)
                cmd[4:4] = ["--bind", HOST, "--port", str(self.port)]
        else:
            cfg = self.workdir / "mosquitto.conf"
            if self.tls:
                cfg.write_text(MOSQUITTO_TLS_CONF.format(plain=plain, port=self.port,
                                                         certs=self.tls))
            else:
                cfg.write_text(MOSQUITTO_CONF.format(port=self.port))
            cmd = [MOSQUITTO, "-c", str(cfg)]
        self.command = cmd
        self.logpath = self.workdir / f"{self.kind}-{self.port}.log"
        self._log = open(self.logpath, "w")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited at start ({self.proc.returncode}): "
                                   + self.logpath.read_text()[-2000:])
            try:
                with socket.create_connection((HOST, plain), timeout=0.5):
                    break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError(f"{self.kind} does not listen on {self.port}")
                time.sleep(0.05)
        # Settle, and see whether something else is loading the machine meanwhile.
        self.background_cores = machine_busy(0.5)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def cpu_s(self):
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK   # utime, stime (fields 14, 15)

    def status(self, key):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def rss_kib(self):
        return self.status("VmRSS")

    def hwm_kib(self):
        return self.status("VmHWM")

    def wait_quiet(self, limit=5.0):
        """Waits until the broker uses (almost) no CPU: done with what the last step left."""
        deadline = time.time() + limit
        last = self.cpu_s()
        while time.time() < deadline:
            time.sleep(0.2)
            now = self.cpu_s()
            if now - last < 0.02:
                return
            last = now

    def fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def nofile_limit(self):
        with open(f"/proc/{self.pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
        return None

    def stop(self):
        """Stops the broker; returns (crashed, note)."""
        crashed = False
        note = ""
        if self.proc.poll() is not None:
            crashed = True
            note = f"{self.kind} had exited by itself with status {self.proc.returncode}"
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                note = f"{self.kind} ignored SIGTERM for 15 s; killed"
            if self.proc.returncode not in (0, -signal.SIGTERM, 128 + signal.SIGTERM) and not note:
                crashed = True
                note = f"{self.kind} exited with status {self.proc.returncode} on SIGTERM"
        self._log.close()
        return crashed, note

    def log_summary(self):
        """Lines of the broker's log, grouped by their text without numbers and client ids."""
        groups = {}
        for line in self.logpath.read_text(errors="replace").splitlines():
            text = re.sub(r"^\S+ ", "", line)                     # timestamp
            text = re.sub(r"mqb[0-9a-f]{6}_\w+", "<client>", text)
            text = re.sub(r"\d+", "N", text)
            groups[text] = groups.get(text, 0) + 1
        return groups


class Client:
    """One mqbench process; its report (--json) goes to a file, its live lines to another."""
    READY = re.compile(r"mqbench \w+: all (\d+) clients connected(?: and subscribed)? in ([\d.]+) s")
    WORKERS = re.compile(r"running (\d+) worker processes")
    LIVE = re.compile(r"mqbench \w+ (\d+)s connected \S+ pub/s (\d+) recv/s (\d+) errors (\d+)")

    def __init__(self, workdir, name, args):
        self.argv = [str(MQBENCH)] + [str(a) for a in args] + ["--json"]
        self.out = Path(workdir) / f"{name}.json"
        self.err = Path(workdir) / f"{name}.err"
        self.started = time.time()
        self.proc = subprocess.Popen(self.argv, stdout=open(self.out, "w"),
                                     stderr=open(self.err, "w"), stdin=subprocess.DEVNULL,
                                     start_new_session=True)

    def stderr(self):
        try:
            return self.err.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_ready(self, timeout):
        """Seconds each process (main or worker) took to connect all its clients, or None."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.stderr()
            m = self.WORKERS.search(text)
            expected = int(m.group(1)) if m else 1
            ready = [float(t) for _, t in self.READY.findall(text)]
            if len(ready) >= expected and (m or ready):
                return ready
            if self.proc.poll() is not None:
                return None
            time.sleep(0.02)
        return None

    def publishing_s(self, report):
        """Seconds the clients published: with -w, the run less the connect phase (which a
        TLS handshake per client makes long enough to matter at a few seconds per step)."""
        ready = [float(t) for _, t in self.READY.findall(self.stderr())]
        return report["duration_s"] - (max(ready) if ready else 0.0)

    CONN = re.compile(r"(?:\[w(\d+)\] )?mqbench conn (\d+)s connected (\d+)/(\d+) pub/s \d+ "
                      r"recv/s \d+ errors (\d+)")

    def connect_progress(self):
        """Per process (main or worker): [(second, connected, of, errors)] from the live lines."""
        per = {}
        for w, sec, conn, total, err in self.CONN.findall(self.stderr()):
            per.setdefault(w or "0", []).append((int(sec), int(conn), int(total), int(err)))
        return per

    def wait_connects_settled(self, timeout):
        """Until every client connected or failed (or `timeout`). Returns (seconds until all
        connected, or None), and whether it settled."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            ready = self.wait_ready(0.5)
            if ready is not None:
                return max(ready), True
            text = self.stderr()
            m = self.WORKERS.search(text)
            expected = int(m.group(1)) if m else 1
            per = self.connect_progress()
            if len(per) >= expected and all(v[-1][1] + v[-1][3] >= v[-1][2] for v in per.values()):
                return None, True
            if self.proc.poll() is not None:
                return None, False
        return None, False

    def last_connect_s(self):
        """When the last client that connected did so: per process, the first live line that
        shows its final connected count (1 s resolution); the latest of those."""
        times = []
        for lines in self.connect_progress().values():
            final = max(c for _, c, _, _ in lines)
            times.append(next(sec for sec, c, _, _ in lines if c == final))
        return max(times) if times else None

    def live_lines(self):
        return [tuple(int(x) for x in m) for m in self.LIVE.findall(self.stderr())]

    def wait_quiet(self, since_line, max_wait):
        """After the publishers stopped: waits until a live line reports nothing received for
        a whole second (or max_wait passes)."""
        deadline = time.time() + max_wait
        while time.time() < deadline:
            lines = self.live_lines()
            if len(lines) > since_line + 1 and lines[-1][2] == 0:
                return
            time.sleep(0.05)

    def interrupt(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def result(self, timeout):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.interrupt()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        text = self.out.read_text().strip()
        if not text:
            raise RuntimeError(f"no report from {' '.join(self.argv)} (status "
                               f"{self.proc.returncode}): {self.stderr()[-1500:]}")
        report = json.loads(text.splitlines()[-1])
        report.pop("histograms", None)
        return report


def common(broker):
    if broker.tls:     # the clients verify the server, as a car would
        return ["-h", HOST, "-p", broker.port, "-S", "--cacertfile", f"{broker.tls}/ca.crt"]
    return ["-h", HOST, "-p", broker.port]


# ---------------------------------------------------------------------------------------------
# Scenarios. Each run_* takes a started broker and returns {case: {metric: value}} plus notes.

def per_million(cpu, delivered):
    return cpu / delivered * 1e6 if delivered else None


def loss_pct(sent, received):
    return 100.0 * (sent - received) / sent if sent else None


def run_idle(broker, wd, P):
    n = P["idle_conns"]
    limit = broker.nofile_limit()
    notes = []
    if limit is not None and limit < n + 100:
        notes.append(f"broker open-file limit {limit} < {n} connections")
    rss0, cpu0 = broker.rss_kib(), broker.cpu_s()
    # Over TLS the offered rate is ~20x what a broker can sign on 2 cores: with mqbench's 10 s
    # connect timeout half the clients would give up in the queue, and the figure would be the
    # timeout's, not the broker's. Clients wait up to 150 s instead, so the connect rate is the
    # broker's sustained handshake rate through the whole storm.
    tls_wait = ["--connect-timeout", 150] if broker.tls else []
    limit_s = 170 if broker.tls else 90
    c = Client(wd, "conn", ["conn", *common(broker), "--ifaddr", IFADDRS, "-c", n,
                            "-R", P["conn_rate"], *tls_wait, "--duration", 400])
    connect_s, settled = c.wait_connects_settled(limit_s)
    cpu_conn = broker.cpu_s()
    if connect_s is None:
        # Some failed: the rate is of those that connected, up to the last of them.
        connect_s = c.last_connect_s()
        notes.append("not every client connected" + ("" if settled else f" within {limit_s} s")
                     + " (failures below; connect rate = connected clients / time until the "
                       "last of them connected, to the second)")
    time.sleep(P["idle_hold"])
    cpu_h0 = broker.cpu_s()
    time.sleep(2.0)
    cpu_h1 = broker.cpu_s()
    rss1, fds = broker.rss_kib(), broker.fds()
    c.interrupt()
    r = c.result(60)
    time.sleep(2.5)     # housekeeping after a mass disconnect (Turnpike trims its heap within 1 s)
    rss2 = broker.rss_kib()
    connected = r["connected"]
    if r["errors"]:
        notes.append("client errors by reason: " + ", ".join(f"{k} {v}" for k, v in
                                                             sorted(r["errors"].items())))
    if fds < connected:
        notes.append(f"broker had {fds} open files for {connected} connections")
    m = {
        "connect_rate": connected / connect_s if connect_s else None,
        "connected": connected,
        "rss_per_conn_kib": (rss1 - rss0) / connected if connected else None,
        "rss_mib": rss1 / 1024,
        "rss_idle_mib": rss0 / 1024,
        "rss_after_mib": rss2 / 1024,
        "cpu_ms_per_1k_conn": (cpu_conn - cpu0) / connected * 1e6 if connected else None,
        "idle_cpu_pct": (cpu_h1 - cpu_h0) / 2.0 * 100,
        "connect_p99_ms": r["connect_ms"]["p99"],
        "failed": n - connected,
    }
    return {"idle": m}, notes, [c.argv]


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
    pub = Client(wd, f"{tag}-pub", ["pub", *common(broker), "-c", FANIN_PUBS, "-R", 5000,
                                    "-t", topic, "-q", qos, "-s", size, "-I", f"{interval:.4g}",
                                    "-F", 20, "-w", "--duration", dur])
    p = pub.result(dur + 30)
    time.sleep(drain)
    sub.interrupt()
    s = sub.result(30)
    cpu1 = broker.cpu_s()
    rss = broker.rss_kib()
    pub_s = pub.publishing_s(p)
    lat = s["latency_ms"]
    return {
        "offered": rate, "sent": p["sent"], "acked": p["acked"], "received": s["received"],
        "sent_rate": p["sent"] / pub_s, "acked_rate": p["acked"] / pub_s,
        "delivered_rate": s["received"] / pub_s,
        "loss_pct": loss_pct(p["sent"], s["received"]),
        "p50": lat["p50"], "p99": lat["p99"], "p99_9": lat["p99_9"], "max": lat["max"],
        "cpu_s": cpu1 - cpu0, "cpu_per_m": per_million(cpu1 - cpu0, s["received"]),
        "rss_mib": rss / 1024,
        "errors": p["errors_total"] + s["errors_total"] + p["connect_failed"]
                  + s["connect_failed"],
        "argv": [sub.argv, pub.argv],
    }


FANIN_P99_MAX = 250.0   # ms; above it a step is building a backlog, not keeping up


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
                  "cpu_per_m": good["cpu_per_m"]})
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
                  "ov_delivered": ov["delivered_rate"], "ov_loss": ov["loss_pct"]})
    elif bad:
        m.update({"ov_offered": bad["offered"], "ov_ingest": bad["sent_rate"],
                  "ov_delivered": bad["delivered_rate"], "ov_loss": bad["loss_pct"]})
    m["rss_mib"] = broker.rss_kib() / 1024
    m["peak_rss_mib"] = broker.hwm_kib() / 1024
    m["errors"] = sum(s["errors"] for s in steps)
    argv = [a for s in steps[:1] for a in s["argv"]]
    if qos == 1:
        argv += steps[-1]["argv"][1:]
    for s in steps:
        s.pop("argv", None)
    return {f"q{qos}-{size}": m}, [], argv, steps


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


# ---------------------------------------------------------------------------------------------
# Metric descriptions: key -> (label, unit, better, format)

HI, LO, INFO = "higher", "lower", None
METRICS = {
    "idle": [
        ("connect_rate", "connect rate", "conn/s", HI, "{:,.0f}"),
        ("rss_per_conn_kib", "RSS per connection", "KiB", LO, "{:.2f}"),
        ("rss_mib", "broker RSS with all connected", "MiB", LO, "{:.1f}"),
        ("rss_idle_mib", "broker RSS before (no client)", "MiB", LO, "{:.1f}"),
        ("rss_after_mib", "broker RSS after all disconnected", "MiB", LO, "{:.1f}"),
        ("cpu_ms_per_1k_conn", "broker CPU per 1,000 connects", "ms", LO, "{:.1f}"),
        ("idle_cpu_pct", "broker CPU while idle", "% of a core", LO, "{:.2f}"),
        ("connect_p99_ms", "connect p99 (TCP + CONNACK)", "ms", LO, "{:.1f}"),
        ("connected", "clients connected", "", HI, "{:,.0f}"),
        ("failed", "clients that never connected", "", LO, "{:,.0f}"),
    ],
    "fanin": [
        ("max_lossless", "highest lossless delivered rate", "msg/s", HI, "{:,.0f}"),
        ("lat_p50", "latency p50 at that rate", "ms", LO, "{:.2f}"),
        ("lat_p99", "latency p99 at that rate", "ms", LO, "{:.2f}"),
        ("lat_p99_9", "latency p99.9 at that rate", "ms", LO, "{:.2f}"),
        ("lat_max", "latency max at that rate", "ms", LO, "{:.2f}"),
        ("cpu_per_m", "broker CPU per million delivered", "s", LO, "{:.2f}"),
        ("ov_offered", "overload: offered (first failed step)", "msg/s", INFO, "{:,.0f}"),
        ("ov_ingest", "overload: publishers' rate (QoS 1: acked)", "msg/s", HI, "{:,.0f}"),
        ("ov_delivered", "overload: delivered rate", "msg/s", HI, "{:,.0f}"),
        ("ov_loss", "overload: loss", "%", LO, "{:.1f}"),
        ("rss_mib", "broker RSS after the runs", "MiB", LO, "{:.1f}"),
        ("peak_rss_mib", "broker peak RSS", "MiB", LO, "{:.1f}"),
        ("errors", "client errors", "", LO, "{:.0f}"),
    ],
    "fanout": [
        ("delivered_rate", "delivered rate", "msg/s", HI, "{:,.0f}"),
        ("loss_pct", "loss", "%", LO, "{:.2f}"),
        ("lat_p50", "latency p50", "ms", LO, "{:.2f}"),
        ("lat_p99", "latency p99", "ms", LO, "{:.2f}"),
        ("lat_p99_9", "latency p99.9", "ms", LO, "{:.2f}"),
        ("lat_max", "latency max", "ms", LO, "{:.2f}"),
        ("cpu_per_m", "broker CPU per million delivered", "s", LO, "{:.2f}"),
        ("rss_mib", "broker RSS under load", "MiB", LO, "{:.1f}"),
        ("errors", "client errors", "", LO, "{:.0f}"),
    ],
    "latency": [
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
    ],
    "fleet": [
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
    ],
}
# Metrics drawn in the charts (the table has them all).
CHART_METRICS = {
    "idle": ["connect_rate", "rss_per_conn_kib", "rss_mib", "cpu_ms_per_1k_conn",
             "connect_p99_ms", "rss_after_mib"],
    "fanin": ["max_lossless", "lat_p99", "cpu_per_m", "ov_delivered", "ov_loss", "peak_rss_mib"],
    "fanout": ["delivered_rate", "loss_pct", "lat_p50", "lat_p99", "cpu_per_m", "rss_mib"],
    "latency": ["lat_p50", "lat_p99", "lat_p99_9", "lat_max", "cpu_per_m", "rss_mib"],
    "fleet": ["telemetry_rate", "lat_p50", "lat_p99", "cmd_rtt_p99", "cpu_per_m", "rss_mib"],
}

SCENARIOS = {
    "a": ("idle", "(a) {idle_conns:,} idle connections"),
    "b": ("fanin", "(b) fan-in: 100 publishers -> 1 subscriber"),
    "c": ("fanout", "(c) fan-out: 1 publisher -> {fanout_subs:,} subscribers, QoS 0"),
    "d": ("latency", "(d) latency: 20,000 msg/s QoS 1 fan-in, 256 B"),
    "e": ("fleet", "(e) fleet: {fleet_cars:,} cars, 1 msg/s QoS 1, shared backend of 4"),
    "f": ("tls", "(f) TLS: (a) and (b) with every client on TLS"),
    "g": ("bridges", "(g) bridges: 1,000 cars, QoS 1, 256 B -> one rule -> Kafka / PostgreSQL"),
}
# The metric families (tables, charts) a scenario's cases fall into: its own, but two for (f).
def families(name):
    return ["idle", "fanin"] if name == "tls" else [name]


FAMILY_TITLE = {"idle": "{idle_conns:,} idle connections over TLS",
                "fanin": "fan-in over TLS: 100 publishers -> 1 subscriber"}


def family_of(case):
    return "fanin" if case.startswith("q") else case


def chart_key(letter, family):
    return letter if len(families(SCENARIOS[letter][0])) == 1 else f"{letter}-{family}"


def cases_of(per_rep):
    """Every case key of a scenario's runs, in first-seen order."""
    keys = []
    for rep in per_rep:
        for br in BROKERS:
            for ck in rep[br]["cases"]:
                if ck not in keys:
                    keys.append(ck)
    return keys


def title_of(letter, P):
    return SCENARIOS[letter][1].format(**P)
CASE_LABEL = {"q0-64": "QoS 0, 64 B", "q1-64": "QoS 1, 64 B", "q0-1024": "QoS 0, 1 KiB",
              "q1-1024": "QoS 1, 1 KiB"}


# ---------------------------------------------------------------------------------------------
# Driver

def run_scenario(letter, kind, wd, P):
    name = SCENARIOS[letter][0]
    if name == "bridges":
        return bridges.run_scenario(sys.modules[__name__], kind, wd, P)
    cases, notes, argv, extra = {}, [], [], []
    brokers_cmd = None
    crash_notes = []
    logs = {}
    bg = []
    if name == "fanin":
        specs = [("fanin", q, s) for q, s in FANIN_CASES]
    elif name == "tls":
        specs = [("idle",)] + [("fanin", q, s) for q, s in FANIN_CASES]
    else:
        specs = [(name,)]
    for spec in specs:
        part = spec[0]
        b = Broker(kind, wd, tls=CERTS if name == "tls" else None).start()
        bg.append(b.background_cores)
        brokers_cmd = b.command
        try:
            if part == "idle":
                c, n, a = run_idle(b, wd, P)
            elif part == "fanin":
                c, n, a, steps = run_fanin(b, wd, P, *spec[1:])
                extra.append({"case": f"q{spec[1]}-{spec[2]}", "steps": steps})
            elif part == "fanout":
                c, n, a = run_fanout(b, wd, P)
            elif part == "latency":
                c, n, a = run_latency(b, wd, P)
            else:
                c, n, a = run_fleet(b, wd, P)
            cases.update(c)
            notes += n
            argv += a
        except Exception as e:  # a failed run is reported, not fatal
            notes.append(f"run failed: {e}")
            log(f"  {kind} {name}: run failed: {e}")
        finally:
            crashed, note = b.stop()
            if note:
                notes.append(note)
            if crashed:
                crash_notes.append(note)
            for k, v in b.log_summary().items():
                logs[k] = logs.get(k, 0) + v
    return {"cases": cases, "notes": notes, "argv": argv, "broker_cmd": brokers_cmd,
            "crashed": crash_notes, "log": logs, "background_cores": max(bg), "steps": extra}


WORK_ROOT = None   # the temporary directory of this run, shown as $WORKDIR
CERTS = None       # make-dev-certs.sh's files for (f), in WORK_ROOT


BIN_DISPLAY = {}   # copies of the binaries -> the paths they were copied from


def templ(argv):
    s = " ".join(str(a) for a in argv)
    for copy, orig in BIN_DISPLAY.items():
        s = s.replace(copy, orig)
    s = s.replace(str(ROOT) + "/", "")
    if WORK_ROOT:
        s = re.sub(re.escape(str(WORK_ROOT)) + r"/[^/ ]+", "$WORKDIR", s)
    s = re.sub(r"-p \d+", "-p $PORT", s)
    s = re.sub(r"--port \d+", "--port $PORT", s)
    return s


def summarise(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def fmt(f, v):
    if v is None:
        return "–"
    return f.format(v)


def ratio_text(t, m, better):
    if t is None or m is None:
        return "–"
    if m == 0:
        return "equal (0)" if t == 0 else "–"
    r = t / m
    if better is None:
        return f"{r:.2f}"
    if abs(r - 1) < 0.03:
        who = "about equal"
    elif (r > 1) == (better == HI):
        who = "Turnpike better"
    else:
        who = "mosquitto better"
    return f"{r:.2f} ({who})"


def machine_info():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass

    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                                  timeout=10).stdout.strip()
        except Exception:
            return "?"
    rev = out(["git", "rev-parse", "--short", "HEAD"])
    dirty = out(["git", "status", "--porcelain", "--untracked-files=no", "--", "Sources"])
    mosq = subprocess.run([MOSQUITTO, "-h"], capture_output=True, text=True).stdout.splitlines()
    rev = rev + (" (with uncommitted changes in Sources/)" if dirty else "")
    if os.environ.get("BENCH_TURNPIKE_REV"):
        rev = os.environ["BENCH_TURNPIKE_REV"]
    elif "TURNPIKE_BIN" in os.environ:
        rev = f"{TURNPIKE} (TURNPIKE_BIN; work tree at {rev})"
    return {
        "nproc": os.cpu_count(), "cpu": cpu, "mem": mem, "kernel": platform.release(),
        "turnpike_rev": rev,
        "mosquitto": mosq[0] if mosq else "?",
        "python": platform.python_version(),
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
        "port_range": Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split(),
    }


def cell(f, v):
    if v is None:
        return "–"
    if v["min"] == v["max"]:
        return fmt(f, v["median"])
    return f"{fmt(f, v['median'])} ({fmt(f, v['min'])}–{fmt(f, v['max'])})"


def comparison_table(w, per_rep, family, ck):
    """Turnpike against mosquitto for one case: median (min–max) and the ratio of medians."""
    w("| metric | Turnpike | mosquitto | ratio T/m | better |")
    w("| --- | --- | --- | --- | --- |")
    for key, label, unit, better, f in METRICS[family]:
        s = {br: summarise([rep[br]["cases"].get(ck, {}).get(key) for rep in per_rep])
             for br in BROKERS}
        if all(v is None for v in s.values()):
            continue
        rt = ratio_text(s["turnpike"]["median"] if s["turnpike"] else None,
                        s["mosquitto"]["median"] if s["mosquitto"] else None, better)
        rt_only = rt.split(" (")[0]
        who = rt.split(" (")[1].rstrip(")") if " (" in rt else ""
        direction = {HI: "higher", LO: "lower", None: ""}[better]
        u = f" ({unit})" if unit else ""
        w(f"| {label}{u} | {cell(f, s['turnpike'])} | {cell(f, s['mosquitto'])} | {rt_only} | "
          f"{direction + ' is better' if direction else ''}"
          f"{': ' + who if who else ''} |")
    w("")


# What TLS costs each broker: the same metric over TLS (f) against plain TCP (a, b) in the
# same results, medians of each.
TLS_COST = {
    "idle": [("connect_rate", "connect rate"), ("cpu_ms_per_1k_conn", "CPU per 1,000 connects"),
             ("rss_per_conn_kib", "RSS per connection")],
    "fanin": [("max_lossless", "highest lossless rate"), ("cpu_per_m", "CPU per million"),
              ("lat_p99", "p99 latency at that rate")],
}
PLAIN_OF = {"idle": "a", "fanin": "b"}

TLS_TEXT = (
    "The connection scenario (a) and the fan-in ramp (b), unchanged, with every client on TLS: "
    "each broker gets a second listener with the development certificates "
    "(`certs/make-dev-certs.sh`: RSA 2048 server key signed by a dev CA; both brokers "
    "negotiate TLS 1.3 with TLS_AES_256_GCM_SHA384 through OpenSSL 3) and mqbench connects with "
    "`-S --cacertfile ca.crt`, so every client verifies the server's chain and name as a car "
    "would. Every connect is a full handshake (mqbench does not resume sessions). CPU per 1,000 "
    "connects is then mostly the server's RSA signature (~1 ms, `openssl speed rsa2048`). The "
    "connection part is a reconnect storm: {idle_conns:,} clients offered at {conn_rate:,}/s, "
    "far past what 2 cores can sign, so the clients wait up to 150 s for their CONNACK "
    "(`--connect-timeout 150`; with mqbench's default 10 s about half of them give up in the "
    "queue) and the connect rate is each broker's sustained handshake rate through the storm.")


BRIDGES_TEXT = (
    "1,000 cars (`mqbench pub -c 1000 -q 1 -s 256 --json-payload`: JSON telemetry with the send "
    "time in µs) on `cars/<n>/telemetry`, one rule (`SELECT clientid AS vin, payload.timestamp AS "
    "ts, payload.speed AS speed … INTO kafka.bench (topic = …)` or `INTO postgres.bench "
    "(statement = 'INSERT … VALUES (${vin}, ${ts}, ${speed})')`) to a real sink on loopback: "
    "noida-db 0.2.3 (Kafka protocol, acks = all, idempotent producer) or PostgreSQL 15 (fsync on). "
    "The bridges have `on_full = \"backpressure\"`, so nothing is dropped: *max* runs publish as "
    "fast as the cars' windows allow (-I 0 -F 20) and the sink's pace slows them, so records/s "
    "is the bridge's throughput; *paced* runs offer the target rate (Kafka 50,000/s, "
    "PostgreSQL 20,000/s) for latency below saturation. Records/s = records landed / (last "
    "landed − first sent); every run checks that exactly cars × -L records landed (kcat reads "
    "the topic back; `count(*)`). Broker CPU = utime+stime of the broker (all threads) from "
    "all cars connected to all records landed, per record. Publish→sink: Kafka's record "
    "timestamp (CreateTime: librdkafka stamps it when the bridge produces the record, so it "
    "leaves out the producer's linger and the broker's ack, 1 ms resolution) or a PostgreSQL "
    "`DEFAULT clock_timestamp()` column (when the INSERT ran, before its COMMIT), minus the "
    "send time in the payload. PUBACK p99 is the cars' PUBLISH→PUBACK: with `ack = "
    "'after_sink'` it includes the sink's confirmation (Kafka's acks = all, PostgreSQL's "
    "COMMIT). **mosquitto has no Kafka or PostgreSQL bridge**: its rows are the same 1,000-car "
    "QoS 1 load with one plain QoS 0 subscriber on `cars/+/telemetry` — a broker without a sink — "
    "max and paced at 50,000/s, and Turnpike runs that reference too; records/s there is what "
    "the subscriber received, CPU per message per acknowledged publish, and the CPU ratio "
    "compares each row with mosquitto's reference at the same pacing.")


def tls_cost_table(w, runs_data, family, case_keys):
    plain = PLAIN_OF[family]
    if not any(plain in r["scenarios"] for r in runs_data):
        return
    w(f"What TLS costs, per broker: the metric over TLS divided by the same metric in "
      f"({plain}) of this run (plain TCP).")
    w("")
    w("| case | metric | Turnpike TLS/plain | mosquitto TLS/plain |")
    w("| --- | --- | --- | --- |")
    for ck in case_keys:
        for key, label in TLS_COST[family]:
            cells = []
            for br in BROKERS:
                vals = {}
                for letter in ("f", plain):
                    vals[letter] = summarise([r["scenarios"][letter][br]["cases"].get(ck, {})
                                              .get(key) for r in runs_data
                                              if letter in r["scenarios"]])
                t, p = vals["f"], vals[plain]
                cells.append(f"{t['median'] / p['median']:.2f}" if t and p and p["median"]
                             else "–")
            w(f"| {CASE_LABEL.get(ck, 'connections')} | {label} | {cells[0]} | {cells[1]} |")
    w("")


def write_results(outdir, stem, args, P, info, runs_data, order, started, finished, charts):
    md = []
    w = md.append
    w(f"# Turnpike vs mosquitto — {started:%Y-%m-%d %H:%M} UTC")
    w("")
    env = " ".join(f"{k}={os.environ[k]}" for k in ("TURNPIKE_BIN", "MQBENCH_BIN")
                   if k in os.environ)
    cmdline = f"{env} bench/run.py" if env else "bench/run.sh"
    w(f"`{cmdline} {' '.join(args.argv)}`".replace(" `", "`") + f" — {args.runs} run(s) of each "
      f"scenario{' (--quick: short runs, small counts; a smoke test, not a measurement)' if args.quick else ''}; "
      f"took {(finished - started).total_seconds() / 60:.1f} min.")
    w("")
    w("## Machine and versions")
    w("")
    w(f"- {info['nproc']} cores: {info['cpu']}; {info['mem']} memory; Linux {info['kernel']}")
    w(f"- open-file limit {info['nofile'][0]} (hard {info['nofile'][1]}); ephemeral ports "
      f"{info['port_range'][0]}–{info['port_range'][1]}")
    w(f"- Turnpike `{info['turnpike_rev']}`, release build, `--threads 2`")
    w(f"- {info['mosquitto']} (Debian package), single-threaded by design")
    w("- load generator: mqbench (this repo, release build), MQTT 5, on the same 2 cores as the "
      "broker: every figure includes the competition between the broker and its clients")
    w("")
    w("## How to read this")
    w("")
    w("Each scenario ran against a fresh broker, Turnpike and mosquitto alternately (the order "
      "flips each repetition), only one broker running at a time, on its own loopback port. "
      "Tables show the **median (min–max)** over the runs; the ratio is Turnpike/mosquitto "
      "of the medians, and says which side is better for that metric (higher is better for "
      "rates, lower for latency, loss, CPU and memory). Broker CPU is utime+stime from "
      "/proc/PID/stat over the load phase (all threads); RSS is VmRSS from /proc/PID/status. "
      "Latency is publish-to-receive, from the send timestamp in the payload.")
    w("")
    w("Equivalent settings: Turnpike `max_inflight = 20`, `max_queued_messages = 1000`, "
      "`max_packet_size = 1048576`, `max_connections = 0`, `sys_interval = 0`; mosquitto "
      "`max_inflight_messages 20`, `max_queued_messages 1000`, `max_packet_size 1048576`, "
      "`max_connections -1`, `sys_interval 0`, `persistence false`, `allow_anonymous true`, "
      "`log_type error`, and `set_tcp_nodelay true` because Turnpike sets TCP_NODELAY on "
      "every socket (mosquitto would otherwise let Nagle's algorithm delay its small writes).")
    w("")
    w("<details><summary>Configuration files ($PORT: a free port per run)</summary>")
    w("")
    w("```toml")
    w("# turnpike.toml")
    w(TURNPIKE_TOML.rstrip())
    w("```")
    w("")
    w("```")
    w("# mosquitto.conf")
    w(MOSQUITTO_CONF.replace("{port}", "$PORT").rstrip())
    w("```")
    if "f" in order:
        w("")
        w("```toml")
        w("# turnpike.toml for (f): the same, plus")
        w(TURNPIKE_TLS_LISTENERS.format(plain="$PLAIN_PORT", port="$PORT",
                                        certs="$WORKDIR/certs").strip())
        w("```")
        w("")
        w("```")
        w("# mosquitto.conf for (f)")
        w(MOSQUITTO_TLS_CONF.format(plain="$PLAIN_PORT", port="$PORT",
                                    certs="$WORKDIR/certs").rstrip())
        w("```")
    w("")
    w("</details>")
    w("")
    if "b" in order or "f" in order:
        w("### Fan-in (b): why a ramp and not one `-I 0` run")
        w("")
        w("MQTT has no end-to-end flow control: a broker acknowledges a publisher when it has the "
          "message, not when the subscriber has it. With 100 publishers and one subscriber the "
          "subscriber's queue is the bottleneck, and both brokers drop past "
          "`max_queued_messages` (1000 per client) — so \"as fast as it goes\" is not lossless even "
          "at QoS 1 with `-I 0 -F 20` (the broker acks the publishers within its own window; the "
          "subscriber's window is 20). At QoS 0 with `-I 0` the publishers have no window at all: "
          "they fill the kernel's socket buffers faster than any broker reads them, so the run "
          "measures buffer sizes and how the 2 cores are shared with mqbench (seconds of latency, "
          "most messages never read before the end), not the broker.")
        w("")
        nb = P["fanin_bisect"]
        bisect_text = {0: "no bisection", 1: "one bisection"}.get(nb, f"{nb} bisections")
        w(f"So (b) ramps the offered rate (100 publishers at a fixed interval each, `-I`): "
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
          "(sent − received)/sent.")
        w("")
    present = [x for x in order if x in "acdefg"]
    if present:
        w("### Other scenarios")
        w("")
    if "a" in order:
        w(f"- (a) `mqbench conn` with {P['idle_conns']:,} clients offered at {P['conn_rate']:,}/s "
          "(mqbench splits them over 2 worker processes), spread over 8 loopback source addresses "
          "(with one address, connect() runs out of the even ephemeral ports it prefers at ~14k "
          "connections and stalls for seconds — for both brokers). Connect rate = clients / time "
          "until the last worker had all its clients connected (CONNACK received); it cannot exceed "
          "the offered rate. RSS per connection = (RSS after "
          f"{P['idle_hold']:g} s idle − RSS before any client) / clients. Idle CPU is measured over 2 s "
          "with every client connected.")
    if "c" in order:
        w(f"- (c) {P['fanout_subs']:,} QoS 0 subscribers on one topic; one QoS 0 publisher at "
          f"{P['fanout_msg_rate']} msg/s, 64 B, for {P['fanout_dur']:g} s = "
          f"{P['fanout_msg_rate'] * P['fanout_subs']:,} deliveries/s offered. Delivered rate = "
          "messages received / publishing time (messages still arriving up to 5 s after the "
          "publisher stopped count; later ones are loss). At a fixed offered rate the delivered "
          "rate only drops with loss; a broker that cannot keep up shows it in latency.")
    if "d" in order:
        w(f"- (d) 100 QoS 1 publishers at 200 msg/s each (`-I 5 -F 20`), 256 B, one QoS 1 "
          f"subscriber, {P['lat_dur']:g} s.")
    if "e" in order:
        w(f"- (e) `mqbench fleet` with {P['fleet_cars']:,} cars (connected at 5,000/s), telemetry "
          "at 1 msg/s each, QoS 1, 4 backend clients sharing `$share/backend/cars/+/telemetry`, "
          f"10 % of the cars getting commands; {P['fleet_dur']:g} s including the connect phase. "
          "CPU per million counts every delivery (telemetry, commands, command acks) over the "
          "whole run; steady-state CPU is sampled after all cars connected. \"Not delivered by the "
          "end\" is telemetry sent but not received when the run stopped (in flight at the stop "
          "included).")
    if "f" in order:
        w("- (f) (a) and (b) again with every client on TLS; see its section.")
    if "g" in order:
        w("- (g) see its section.")
    if present:
        w("")

    # Disturbance
    w("## Disturbance check")
    w("")
    w("Other people's builds and tests may share these 2 cores. Before each broker run the "
      "harness waits (up to 3 min) until the machine is idle (< 0.3 cores busy). During the run "
      "it compares the machine's busy time (/proc/stat) with the CPU time of the harness, the "
      "broker and mqbench (getrusage of the children): the difference is foreign load. A run "
      f"with more than {FOREIGN_MAX} cores of foreign load on average is discarded and run "
      f"again (at most {args.retries} times); quiet runs show 0.00–0.08.")
    w("")
    waits, redone, kept = [], [], []
    for r in runs_data:
        for sc, per in r["scenarios"].items():
            for br, d in per.items():
                where = f"run {r['rep'] + 1} ({sc}) {LABEL[br]}"
                if d.get("waited_for_idle_s"):
                    waits.append(f"{where}: {d['waited_for_idle_s']:.0f} s")
                for x in d.get("discarded", []):
                    redone.append(f"{where}: {x['foreign_cores']:.2f} cores")
                if d.get("foreign_cores", 0) > FOREIGN_MAX:
                    kept.append(f"{where}: {d['foreign_cores']:.2f} cores")
    foreign = [d.get("foreign_cores", 0) for r in runs_data for per in r["scenarios"].values()
               for d in per.values()]
    if foreign:
        w(f"Foreign load in the kept runs: median {statistics.median(foreign):.2f} cores, "
          f"max {max(foreign):.2f}.")
        w("")
    if waits:
        w("Waited for other load to go: " + "; ".join(waits) + ".")
        w("")
    if redone:
        w("Discarded as disturbed and run again: " + "; ".join(redone) + ".")
        w("")
    if kept:
        w("**Still disturbed after the retries** (kept, read with care): " + "; ".join(kept)
          + ".")
    else:
        w("Every kept run was undisturbed.")
    w("")

    # Tables
    for letter in order:
        name, title = SCENARIOS[letter][0], title_of(letter, P)
        per_rep = [r["scenarios"].get(letter) for r in runs_data if letter in r["scenarios"]]
        if not per_rep:
            continue
        w(f"## {title}")
        w("")
        if name == "tls":
            w(TLS_TEXT.format(**P))
            w("")
        if name == "bridges":
            w(BRIDGES_TEXT)
            w("")
            bridges.write_table(w, per_rep, LABEL)
        all_cases = cases_of(per_rep)
        parts = [] if name == "bridges" else families(name)
        for family in parts:
            case_keys = [ck for ck in all_cases if family_of(ck) == family]
            h = "##"
            if len(parts) > 1:
                h = "###"
                w(f"{h} {FAMILY_TITLE[family].format(**P)}")
                w("")
            ck_chart = chart_key(letter, family)
            if charts.get(ck_chart):
                w(f"![{title}]({charts[ck_chart]})")
                w("")
            for ck in case_keys:
                if len(case_keys) > 1:
                    w(f"{h}# {CASE_LABEL.get(ck, ck)}")
                    w("")
                comparison_table(w, per_rep, family, ck)
            if name == "tls":
                tls_cost_table(w, runs_data, family, case_keys)
        notes = []
        for i, rep in enumerate(per_rep):
            for br in BROKERS:
                for n in rep[br]["notes"]:
                    notes.append(f"run {i + 1}, {LABEL[br]}: {n}")
        if notes:
            w("Notes: " + "; ".join(notes))
            w("")
        for br in BROKERS:
            merged = {}
            for rep in per_rep:
                for k, v in rep[br]["log"].items():
                    merged[k] = merged.get(k, 0) + v
            if merged:
                top = sorted(merged.items(), key=lambda kv: -kv[1])[:4]
                w(f"{LABEL[br]} log ({sum(merged.values())} lines over the runs), most frequent: "
                  + "; ".join(f"{c}× `{t[:160]}`" for t, c in top))
                w("")
        w("<details><summary>Commands</summary>")
        w("")
        w("```")
        first = per_rep[0]
        for br in BROKERS:
            if first[br]["broker_cmd"]:
                w(f"# {LABEL[br]}")
                w(templ(first[br]["broker_cmd"]))
        cmds = {br: list(dict.fromkeys(templ(a) for a in first[br]["argv"])) for br in BROKERS}
        if cmds["turnpike"] == cmds["mosquitto"]:
            w("# clients (the same against both brokers)")
            w("\n".join(cmds["turnpike"]))
        else:
            for br in BROKERS:
                w(f"# clients against {LABEL[br]}")
                w("\n".join(cmds[br]))
        if name in ("fanin", "tls"):
            w("# ramp steps vary -I (100 publishers: -I = 100000 / offered msg/s); "
              "QoS 1 overload runs use -I 0")
        w("```")
        w("")
        w("</details>")
        w("")
    path = outdir / f"{stem}.md"
    path.write_text("\n".join(md))
    return path


def make_charts(outdir, stem, runs_data, order, P):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib not available: no charts (bench/run.sh installs it in .venv-bench)")
        return {}
    charts = {}
    for letter in order:
        name = SCENARIOS[letter][0]
        per_rep = [r["scenarios"][letter] for r in runs_data if letter in r["scenarios"]]
        if not per_rep or name == "bridges":     # (g) is a table only
            continue
        all_cases = cases_of(per_rep)
        for family in families(name):
            case_keys = [ck for ck in all_cases if family_of(ck) == family]
            title = title_of(letter, P)
            if len(families(name)) > 1:
                title = f"({letter}) " + FAMILY_TITLE[family].format(**P)
            fname = f"{stem}-{chart_key(letter, family)}.png"
            if case_keys and chart(plt, matplotlib, outdir / fname, title, family, case_keys,
                                   per_rep):
                charts[chart_key(letter, family)] = fname
    return charts


def chart(plt, matplotlib, path, title, name, case_keys, per_rep):
    """One PNG: both brokers' medians per metric of the family, per case; False if none."""
    mdefs = {k: (label, unit, better, f) for k, label, unit, better, f in METRICS[name]}
    keys = [k for k in CHART_METRICS[name] if k in mdefs]
    ncols = 3
    nrows = math.ceil(len(keys) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 3.9 * nrows), squeeze=False)
    for idx, key in enumerate(keys):
        ax = axes[idx // ncols][idx % ncols]
        label, unit, better, f = mdefs[key]
        width = 0.38
        ymax = 0
        for ci, ck in enumerate(case_keys):
            meds = {}
            for bi, br in enumerate(BROKERS):
                s = summarise([rep[br]["cases"].get(ck, {}).get(key) for rep in per_rep])
                if s is None:
                    continue
                meds[br] = s["median"]
                x = ci + (bi - 0.5) * width
                ax.bar(x, s["median"], width, color=COLOR[br],
                       label=LABEL[br] if ci == 0 else None,
                       yerr=[[s["median"] - s["min"]], [s["max"] - s["median"]]],
                       capsize=3, ecolor="#333333")
                ymax = max(ymax, s["max"])
            if len(meds) == 2:
                rt = ratio_text(meds["turnpike"], meds["mosquitto"], better)
                r = rt.split(" (")[0]
                txt = f"T/m {r}" if r not in ("–",) else "T/m –"
                colour = "#2a7a2a" if "Turnpike better" in rt else (
                    "#b03030" if "mosquitto better" in rt else "#444444")
                ax.annotate(txt, xy=(ci, 0), xycoords=("data", "axes fraction"),
                            xytext=(0, -28 if len(case_keys) > 1 else -14),
                            textcoords="offset points", ha="center", va="top",
                            fontsize=9, color=colour, fontweight="bold")
        ax.set_title(f"{label}\n({unit + ', ' if unit else ''}"
                     f"{better + ' is better' if better else 'for information'})",
                     fontsize=10)
        ax.set_xticks(range(len(case_keys)))
        if len(case_keys) > 1:
            ax.set_xticklabels([CASE_LABEL.get(c, c) for c in case_keys], fontsize=8)
        else:
            ax.set_xticklabels([""])
        ax.set_ylim(0, ymax * 1.12 if ymax > 0 else 1)
        ax.grid(axis="y", alpha=0.3)
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(
            lambda v, _: f"{v:,.0f}" if abs(v) >= 100 else f"{v:g}"))
    for idx in range(len(keys), nrows * ncols):
        axes[idx // ncols][idx % ncols].axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.suptitle(f"{title} — median of {len(per_rep)} run(s), bars: min–max; "
                 "T/m = Turnpike/mosquitto (green: Turnpike better, red: mosquitto better)",
                 fontsize=11, x=0.01, y=0.995, ha="left")
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.01, 0.965), ncol=2,
               fontsize=10, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="repetitions of each scenario (3)")
    ap.add_argument("--scenarios", default="a,b,c,d,e,f,g",
                    help="comma-separated letters out of a,b,c,d,e,f,g (all)")
    ap.add_argument("--quick", action="store_true",
                    help="short runs and small counts: a smoke test (~2 min with --runs 1)")
    ap.add_argument("--out", default=str(ROOT / "bench/results"), help="results directory")
    ap.add_argument("--retries", type=int, default=None,
                    help="runs again a broker's run that something else disturbed (more than "
                         f"{FOREIGN_MAX} cores busy outside the benchmark), at most this often "
                         "(2; 0 with --quick)")
    args = ap.parse_args()
    args.argv = sys.argv[1:]
    if args.retries is None:
        args.retries = 0 if args.quick else 2
    order = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    for s in order:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s!r}")
    P = QUICK if args.quick else FULL

    global MOSQUITTO, WORK_ROOT, TURNPIKE, MQBENCH, CERTS
    MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    for path in (TURNPIKE, MQBENCH, Path(MOSQUITTO)):
        if not Path(path).exists():
            sys.exit(f"missing {path}: run bench/run.sh (builds release, installs mosquitto)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < P["idle_conns"] + 200:
        log(f"open-file limit {hard}: the idle scenario needs {P['idle_conns'] + 200}")

    outdir = Path(args.out)
    outdir.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    # (g) alone has a results file of its own: <date>-bridges.md.
    stem = f"{started:%Y-%m-%d}" + ("-bridges" if order == ["g"] else "")
    base = stem
    k = 2
    while (outdir / f"{stem}.md").exists() or (outdir / f"{stem}.json").exists():
        stem = f"{base}-{k}"
        k += 1
    info = machine_info()
    log(f"results -> {outdir / stem}.md; Turnpike {info['turnpike_rev']}, {info['mosquitto']}")

    runs_data = []
    with tempfile.TemporaryDirectory(prefix="turnpike-bench-") as tmp:
        WORK_ROOT = tmp
        # Run copies: a rebuild of .build/release during the run must not change what runs.
        (Path(tmp) / "bin").mkdir()
        for name in ("TURNPIKE", "MQBENCH"):
            orig = globals()[name]
            copy = Path(tmp) / "bin" / orig.name
            shutil.copy2(orig, copy)
            BIN_DISPLAY[str(copy)] = str(orig)
            globals()[name] = copy
        if "f" in order:
            CERTS = Path(tmp) / "certs"
            subprocess.run([str(ROOT / "certs/make-dev-certs.sh"), str(CERTS)], check=True,
                           capture_output=True)
        for rep in range(args.runs):
            rd = {"rep": rep, "scenarios": {}}
            runs_data.append(rd)
            brokers = BROKERS if rep % 2 == 0 else BROKERS[::-1]
            for letter in order:
                rd["scenarios"][letter] = {}
                for kind in brokers:
                    discarded = []
                    for attempt in range(1 + args.retries):
                        wd = Path(tmp) / f"r{rep}-{letter}-{kind}-{attempt}"
                        wd.mkdir()
                        waited, busy = wait_idle()
                        if waited:
                            log(f"  waited {waited:.0f} s for the machine to be idle "
                                f"({busy:.2f} cores busy at the end)")
                        t0 = time.time()
                        log(f"run {rep + 1}/{args.runs} {title_of(letter, P)} — {LABEL[kind]}"
                            + (f" (attempt {attempt + 1})" if attempt else ""))
                        b0, o0 = busy_s(), own_cpu_s()
                        d = run_scenario(letter, kind, wd, P)
                        b1, o1 = busy_s(), own_cpu_s()
                        d["seconds"] = time.time() - t0
                        # CPU the machine spent on something else than the harness, the broker
                        # and mqbench (in cores, averaged over the run; includes a little kernel
                        # network work that is charged to no process).
                        # (g) reports the CPU of the PostgreSQL server it ran (not a child).
                        d["foreign_cores"] = max(0.0, (b1 - b0) - (o1 - o0)
                                                 - d.get("sink_cpu_s", 0.0)) / d["seconds"]
                        d["waited_for_idle_s"] = waited
                        d["background_after"] = machine_busy(0.5)
                        if d["foreign_cores"] <= FOREIGN_MAX or attempt == args.retries:
                            break
                        log(f"  disturbed: {d['foreign_cores']:.2f} cores busy outside the "
                            f"benchmark on average; running it again")
                        discarded.append({"foreign_cores": d["foreign_cores"],
                                          "cases": d["cases"]})
                        time.sleep(1.0)
                    d["discarded"] = discarded
                    rd["scenarios"][letter][kind] = d
                    summary = ", ".join(f"{ck}: " + ", ".join(
                        f"{mk}={mv:.4g}" for mk, mv in list(m.items())[:4] if mv is not None)
                        for ck, m in d["cases"].items())
                    log(f"  {LABEL[kind]} done in {d['seconds']:.0f} s (foreign load "
                        f"{d['foreign_cores']:.2f} cores): {summary}")
                    for n in d["notes"]:
                        log(f"  note: {n}")
                    time.sleep(1.0)     # let the sockets of the last run close
            # Raw figures after every repetition, so an interrupted run keeps what it measured.
            (outdir / f"{stem}.json").write_text(json.dumps(
                {"info": info, "params": P, "runs": runs_data}, indent=1, default=str))
    finished = datetime.datetime.now(datetime.timezone.utc)
    charts = make_charts(outdir, stem, runs_data, order, P)
    path = write_results(outdir, stem, args, P, info, runs_data, order, started, finished, charts)
    (outdir / f"{stem}.json").write_text(json.dumps(
        {"info": info, "params": P, "runs": runs_data}, indent=1, default=str))
    log(f"wrote {path} in {(finished - started).total_seconds() / 60:.1f} min")


if __name__ == "__main__":
    main()
