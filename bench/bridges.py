"""Scenario (g) of bench/run.py (registered by turnpike_bench/scenarios/g_bridges.py): 1,000 cars publish QoS 1 telemetry (256 B JSON with the send
time in it, `mqbench pub --json-payload`), one rule sends every message to a Kafka bridge (a real
Kafka-protocol broker, noida-db) or a PostgreSQL bridge (a real PostgreSQL 15), both started here
with the helpers the integration tests use (Tests/integration/servers.py).

Per sink and per `ack` mode (the default, and `ack = 'after_sink'`) two runs:
  max    the cars publish as fast as their windows allow (-I 0 -F 20), the bridge has
         `on_full = "backpressure"`, so the publishers are slowed to what the sink takes:
         records landed per second is the bridge's throughput;
  paced  the cars publish at the target rate (Kafka 50,000/s, PostgreSQL 20,000/s in all), so
         latency is measured below saturation.
Every run sends a bounded count (cars x -L) and checks that exactly that many records landed
(Kafka: kcat reads the topic back; PostgreSQL: count(*)). mosquitto has no Kafka or PostgreSQL
bridge: its reference ("broker without a sink") is the same 1,000-car QoS 1 load with one plain
QoS 0 subscriber on cars/+/telemetry, max and paced at 50,000/s; Turnpike runs that too.

Figures per run: landed (or, without a sink, delivered) records per second, broker CPU µs per
message (utime+stime of the broker from /proc/PID/stat, all threads, from all-connected to
all-landed, divided by the messages), publish->sink latency p50/p99 (Kafka: the record's
CreateTime, which librdkafka stamps when the bridge produces it, minus the send time in the
payload, 1 ms resolution; PostgreSQL: a `DEFAULT clock_timestamp()` column, i.e. when the
INSERT ran in its transaction, minus the send time), and the publishers' PUBLISH->PUBACK p99
(mqbench's ack latency: with after_sink the PUBACK waits for the sink's confirmation).
"""
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "Tests/integration"))
import servers  # noqa: E402  (the integration tests' Kafka and PostgreSQL helpers)
from turnpike_bench.brokers import LABEL, Broker  # noqa: E402
from turnpike_bench.clients import Client, common  # noqa: E402
from turnpike_bench.machine import log  # noqa: E402

CARS = 1000
SIZE = 256
TOPIC = "cars/%i/telemetry"
KAFKA_RATE = 50_000      # target records/s (paced runs offer this)
PG_RATE = 20_000

# -L per car: records per run = CARS x this.
FULL = dict(kafka_max=400, kafka_paced=300, pg_max=150, pg_paced=150, ref_max=300, ref_paced=300)
QUICK = dict(kafka_max=60, kafka_paced=60, pg_max=40, pg_paced=40, ref_max=60, ref_paced=60)

KAFKA_RULE = """-- bench (g): every telemetry message to Kafka, keyed by car (the default key).
CREATE RULE to_kafka AS
SELECT clientid AS vin, payload.timestamp AS ts, payload.speed AS speed
FROM "cars/+/telemetry"
INTO kafka.bench (topic = '{topic}'{ack});
"""
PG_RULE = """-- bench (g): every telemetry message as a row.
CREATE RULE to_pg AS
SELECT clientid AS vin, payload.timestamp AS ts, payload.speed AS speed
FROM "cars/+/telemetry"
INTO postgres.bench (statement = 'INSERT INTO {table} (vin, ts, speed) VALUES (${{vin}}, ${{ts}}, ${{speed}})'{ack});
"""
PG_TABLE = ("CREATE TABLE {table} (vin text NOT NULL, ts bigint NOT NULL, speed int, "
            "landed timestamptz NOT NULL DEFAULT clock_timestamp())")

# The bridge tables: buffer bound as the defaults, but publishers wait instead of records
# being dropped when the sink falls behind.
KAFKA_TOML = """
[bridges.kafka.bench]
bootstrap_servers = "{bootstrap}"
on_full = "backpressure"
"""
PG_TOML = """
[bridges.postgres.bench]
dsn = "{dsn}"
on_full = "backpressure"
"""

CASES = [  # (case key, sink, mode, ack)
    ("kafka-max", "kafka", "max", ""), ("kafka-paced", "kafka", "paced", ""),
    ("kafka-max-after_sink", "kafka", "max", "after_sink"),
    ("kafka-paced-after_sink", "kafka", "paced", "after_sink"),
    ("pg-max", "pg", "max", ""), ("pg-paced", "pg", "paced", ""),
    ("pg-max-after_sink", "pg", "max", "after_sink"),
    ("pg-paced-after_sink", "pg", "paced", "after_sink"),
    ("nosink-max", None, "max", ""), ("nosink-paced", None, "paced", ""),
]
CASE_LABEL = {
    "kafka-max": "Kafka, max", "kafka-paced": "Kafka, paced 50k/s",
    "kafka-max-after_sink": "Kafka after_sink, max", "kafka-paced-after_sink": "Kafka after_sink, paced 50k/s",
    "pg-max": "PostgreSQL, max", "pg-paced": "PostgreSQL, paced 20k/s",
    "pg-max-after_sink": "PostgreSQL after_sink, max", "pg-paced-after_sink": "PostgreSQL after_sink, paced 20k/s",
    "nosink-max": "no sink (1 QoS 0 subscriber), max", "nosink-paced": "no sink (1 QoS 0 subscriber), paced 50k/s",
}
METRICS = [  # key, label, unit, format
    ("rate", "landed / delivered", "records/s", "{:,.0f}"),
    ("cpu_us", "broker CPU per message", "µs", "{:.1f}"),
    ("lat_p50", "publish→sink p50", "ms", "{:.1f}"),
    ("lat_p99", "publish→sink p99", "ms", "{:.1f}"),
    ("ack_p99", "PUBACK p99", "ms", "{:.1f}"),
    ("landed", "landed (exact count)", "", "{:,.0f}"),
    ("expected", "published", "", "{:,.0f}"),
]


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def publishers(broker, wd, name, per_car, mode, rate):
    interval = 0 if mode == "max" else CARS * 1000.0 / rate
    return Client(wd, name, ["pub", *common(broker), "-c", CARS, "-R", 5000, "-t", TOPIC, "-q", 1,
                             "-s", SIZE, "--json-payload", "-I", f"{interval:.4g}", "-F", 20,
                             "-L", per_car, "-w", "--duration", 300])


def run_bridged(kind, wd, P, sink, server, mode, ack, tag, n):
    """One Turnpike run with a bridge: returns the case's figures and notes."""
    ack_arg = ", ack = 'after_sink'" if ack else ""
    rules = Path(wd) / f"rules-{tag}"
    rules.mkdir()
    per_car = P[f"{sink}_{mode}"]
    expected = CARS * per_car
    if sink == "kafka":
        topic = f"telemetry-{tag}"
        (rules / "to_kafka.sql").write_text(KAFKA_RULE.format(topic=topic, ack=ack_arg))
        toml = KAFKA_TOML.format(bootstrap=server.bootstrap)
        rate = KAFKA_RATE
    else:
        table = f"telemetry_{tag.replace('-', '_')}"
        server.sql(PG_TABLE.format(table=table))
        (rules / "to_pg.sql").write_text(PG_RULE.format(table=table, ack=ack_arg))
        toml = PG_TOML.format(dsn=server.dsn)
        rate = PG_RATE
    b = Broker(kind, wd, extra_toml=f'\n[rules]\ndir = "{rules}"\n' + toml).start()
    notes = []
    try:
        pub = publishers(b, wd, f"g-{tag}-pub", per_car, mode, rate)
        if pub.wait_ready(60) is None:
            raise RuntimeError("cars did not all connect: " + pub.stderr()[-500:])
        cpu0 = b.cpu_s()
        # Until every record landed (bounded: 300 s, or 20 s without progress once the
        # publishers are done).
        deadline = time.time() + 300
        landed, last, last_change = 0, -1, time.time()
        while time.time() < deadline:
            landed = server.end_offsets(topic) if sink == "kafka" else server.count(table)
            if landed >= expected:
                break
            if landed != last:
                last, last_change = landed, time.time()
            elif pub.poll() is not None and time.time() - last_change > 20:
                break
            time.sleep(0.1 if sink == "kafka" else 0.25)
        t_landed = time.time()
        cpu1 = b.cpu_s()
        p = pub.result(120)
        if p["acked"] != expected or p["errors_total"]:
            notes.append(f"{tag}: publishers acked {p['acked']} of {expected}, errors {p['errors'] or 'none'}")
        # The exact count, and each record's latency, read back from the sink.
        if sink == "kafka":
            rows = server.read(topic, expected, timeout=30, fmt="%T\t%s\n")
            landed = len(rows)
            sent, lat = [], []
            for t_ms, value in rows:
                ts = json.loads(value)["ts"]
                sent.append(ts / 1e6)
                lat.append(int(t_ms) - ts / 1000.0)
            t0 = min(sent) if sent else t_landed
            end = t_landed
        else:
            landed = server.count(table)
            out = server.sql(f"SELECT ts, (extract(epoch FROM landed) * 1e6)::bigint FROM {table}").split()
            sent, lat, ends = [], [], []
            for line in out:
                ts, at = (int(x) for x in line.split(b"|"))
                sent.append(ts / 1e6)
                ends.append(at / 1e6)
                lat.append((at - ts) / 1000.0)
            t0 = min(sent) if sent else t_landed
            end = max(ends) if ends else t_landed
        if landed != expected:
            notes.append(f"{tag}: {landed} records landed, {expected} published")
        m = {
            "rate": landed / (end - t0) if end > t0 else None,
            "cpu_us": (cpu1 - cpu0) / landed * 1e6 if landed else None,
            "lat_p50": percentile(lat, 0.50), "lat_p99": percentile(lat, 0.99),
            "ack_p99": (p.get("ack_ms") or {}).get("p99"),
            "landed": landed, "expected": expected,
        }
        log(f"    {tag}: {landed}/{expected} landed, {m['rate'] or 0:,.0f}/s, "
              f"{m['cpu_us'] or 0:.1f} µs/msg, p99 {m['lat_p99'] or 0:.1f} ms, ack p99 {m['ack_p99']}")
        return m, notes, [pub.argv]
    finally:
        crashed, note = b.stop()
        if note:
            notes.append(note)
        if sink == "pg":
            server.sql(f"DROP TABLE {table}")


def run_reference(kind, wd, P, mode, tag):
    """The same load against a broker without a sink: one QoS 0 subscriber on cars/+/telemetry."""
    per_car = P[f"ref_{mode}"]
    expected = CARS * per_car
    b = Broker(kind, wd).start()
    notes = []
    try:
        sub = Client(wd, f"g-{tag}-sub", ["sub", *common(b), "-c", 1, "-t", "cars/+/telemetry", "-q", 0,
                                          "--duration", 400])
        if sub.wait_ready(10) is None:
            raise RuntimeError("subscriber did not connect: " + sub.stderr()[-500:])
        pub = publishers(b, wd, f"g-{tag}-pub", per_car, mode, KAFKA_RATE)
        if pub.wait_ready(60) is None:
            raise RuntimeError("cars did not all connect: " + pub.stderr()[-500:])
        cpu0 = b.cpu_s()
        p = pub.result(300)
        mark = len(sub.live_lines())
        sub.wait_quiet(mark, 5.0)
        cpu1 = b.cpu_s()
        sub.interrupt()
        s = sub.result(30)
        pub_s = pub.publishing_s(p)
        lat = s["latency_ms"]
        if s["received"] != expected:
            notes.append(f"{tag}: the subscriber got {s['received']} of {expected} (QoS 0: the broker "
                         "drops past max_queued_messages)")
        m = {
            "rate": s["received"] / pub_s if pub_s > 0 else None,
            "ingest": p["acked"] / pub_s if pub_s > 0 else None,
            "cpu_us": (cpu1 - cpu0) / p["acked"] * 1e6 if p["acked"] else None,
            "lat_p50": lat["p50"], "lat_p99": lat["p99"],
            "ack_p99": (p.get("ack_ms") or {}).get("p99"),
            "landed": s["received"], "expected": expected,
        }
        log(f"    {kind} {tag}: acked {m['ingest'] or 0:,.0f}/s, delivered {m['rate'] or 0:,.0f}/s, "
              f"{m['cpu_us'] or 0:.1f} µs/msg, p99 {m['lat_p99']} ms")
        return m, notes, [sub.argv, pub.argv]
    finally:
        _, note = b.stop()
        if note:
            notes.append(note)


def run_scenario(kind, wd, quick=False):
    """Every case of (g) for one broker kind; the shape a Scenario's run() returns."""
    G = QUICK if quick else FULL
    cases, notes, argv, logs = {}, [], [], {}
    wanted = [c for c in CASES if kind == "turnpike" or c[1] is None]
    servers_up = {}
    sink_cpu = [0.0]
    try:
        for key, sink, mode, ack in wanted:
            try:
                if sink is None:
                    m, n, a = run_reference(kind, wd, G, mode, key)
                else:
                    if sink not in servers_up:
                        for other in list(servers_up):      # one sink server at a time
                            sink_cpu[0] += servers_up.pop(other).close_()
                        servers_up[sink] = SinkServer(sink, wd)
                    m, n, a = run_bridged(kind, wd, G, sink, servers_up[sink].server, mode, ack, key,
                                          len(cases))
                cases[key] = m
                notes += n
                argv += a
            except Exception as e:  # a failed case is reported, not fatal
                notes.append(f"{key}: run failed: {e}")
                log(f"  {kind} {key}: run failed: {e}")
    finally:
        for s in servers_up.values():
            sink_cpu[0] += s.close_()
    # sink_cpu_s: PostgreSQL's CPU (a daemon, not a child the harness waits for), so that
    # run.py does not count it as foreign load.
    return {"cases": cases, "notes": notes, "argv": argv, "broker_cmd": None, "crashed": [],
            "log": logs, "background_cores": 0.0, "steps": [], "sink_cpu_s": sink_cpu[0]}


class SinkServer:
    def __init__(self, sink, wd):
        self.sink = sink
        if sink == "kafka":
            self.server = servers.Noida(Path(wd) / f"noida-{time.time_ns()}").start()
        else:
            # Durable as a real deployment: fsync on (the default); only full_page_writes and
            # the checkpoint spacing as a tuned server would have them.
            self.server = servers.Postgres(settings=["max_wal_size=4GB"]).start()
            self.cpu0 = tree_cpu_s(self.server.pid())

    def close_(self):
        """Stops the server; returns the CPU seconds PostgreSQL used (0 for noida-db, a child
        of the harness whose CPU getrusage already counts)."""
        if self.sink == "kafka":
            self.server.stop()
            return 0.0
        used = tree_cpu_s(self.server.pid()) - self.cpu0
        self.server.close()
        return used


def tree_cpu_s(pid):
    """utime+stime of `pid`, of its waited-for children and of its live children (PostgreSQL's
    backends and background processes)."""
    import os
    tck = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ppid = int(fields[1])
        if int(entry) == pid:
            total += sum(int(x) for x in fields[11:15])     # utime stime cutime cstime
        elif ppid == pid:
            total += sum(int(x) for x in fields[11:15])
    return total / tck


# ---------------------------------------------------------------------------------------------
# Results

def summarise(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}


def cell(f, s):
    if s is None:
        return "–"
    if s["min"] == s["max"]:
        return f.format(s["median"])
    return f"{f.format(s['median'])} ({f.format(s['min'])}–{f.format(s['max'])})"


def write_table(w, per_rep, label=LABEL):
    """One row per (broker, case): median (min–max) over the runs; CPU beside mosquitto's."""
    ref = summarise([rep.get("mosquitto", {}).get("cases", {}).get("nosink-paced", {}).get("cpu_us")
                     for rep in per_rep])
    ref_max = summarise([rep.get("mosquitto", {}).get("cases", {}).get("nosink-max", {}).get("cpu_us")
                         for rep in per_rep])
    w("| broker, case | records/s | broker CPU µs/msg | CPU ÷ mosquitto's (no sink) | publish→sink p50 ms "
      "| publish→sink p99 ms | PUBACK p99 ms | landed / published |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for kind in ("turnpike", "mosquitto"):
        for key, *_ in CASES:
            vals = {mk: summarise([rep.get(kind, {}).get("cases", {}).get(key, {}).get(mk) for rep in per_rep])
                    for mk, *_ in METRICS}
            if vals["rate"] is None and vals["landed"] is None:
                continue
            r = ref_max if key.endswith("max") or "-max-" in key else ref
            ratio = (f"{vals['cpu_us']['median'] / r['median']:.2f}" if vals["cpu_us"] and r and r["median"]
                     else "–")
            exact = "–"
            if vals["landed"] and vals["expected"]:
                lands = [rep[kind]["cases"][key]["landed"] for rep in per_rep if key in rep.get(kind, {}).get("cases", {})]
                exps = [rep[kind]["cases"][key]["expected"] for rep in per_rep if key in rep.get(kind, {}).get("cases", {})]
                ok = all(a == b for a, b in zip(lands, exps))
                if key.startswith("nosink"):    # QoS 0 to the subscriber: loss is the broker's right
                    exact = f"received {cell('{:,.0f}', vals['landed'])} of {vals['expected']['median']:,.0f}"
                else:
                    exact = f"{'all exact' if ok else 'MISMATCH'}: {vals['expected']['median']:,.0f} per run"
            w(f"| {label[kind]}, {CASE_LABEL[key]} | {cell('{:,.0f}', vals['rate'])} | "
              f"{cell('{:.1f}', vals['cpu_us'])} | {ratio} | {cell('{:.1f}', vals['lat_p50'])} | "
              f"{cell('{:.1f}', vals['lat_p99'])} | {cell('{:.1f}', vals['ack_p99'])} | {exact} |")
    w("")
