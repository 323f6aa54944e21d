"""Bridges: rules deliver into a webhook through the shared buffer layer. The receiver is a real
HTTP server (Python's http.server, one thread per request) whose answers each test scripts;
what arrived is compared exactly with what was published.

Kafka bridges are tested in test_kafka.py, PostgreSQL bridges in test_postgres.py."""

import json
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import rawmqtt as R
from conftest import Broker, TURNPIKE_BIN, free_port

pytestmark = [pytest.mark.turnpike_only, pytest.mark.single_node("reads one node's bridge counters; each node runs its own bridges")]

V3, V5 = R.MQTT311, R.MQTT5


class Receiver:
    """An HTTP server on loopback: records every request; `script` is a list of status codes to
    answer first (then `default`)."""

    def __init__(self, port=None, default=200):
        self.port = port or free_port()
        self.requests: list[dict] = []
        self.script: list[int] = []
        self.default = default
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.server = None

    def start(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with outer.cond:
                    status = outer.script.pop(0) if outer.script else outer.default
                    outer.requests.append({"method": self.command, "path": self.path, "body": body,
                                           "headers": {k.lower(): v for k, v in self.headers.items()},
                                           "status": status})
                    outer.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = do_GET = do_PATCH = do_DELETE = do_any

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def delivered(self):
        with self.lock:
            return [r for r in self.requests if 200 <= r["status"] < 300]

    def wait_delivered(self, n, timeout=20):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len([r for r in self.requests if 200 <= r["status"] < 300]) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
        return self.delivered()


@pytest.fixture
def receiver():
    made = []

    def make(**kw):
        r = Receiver(**kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


def start_bridged(tmp_path, made: list, table: str, rules: dict[str, str], **kw) -> Broker:
    """Starts a broker with the bridge `table` (TOML) and the rule files given (name → text);
    appends it to `made` for the fixture's teardown."""
    d = tmp_path / f"rules{len(made)}"
    d.mkdir()
    for name, text in rules.items():
        (d / f"{name}.sql").write_text(text)
    b = Broker(rules={"dir": str(d)}, extra_toml=table, **kw).start()
    made.append(b)
    return b


def stop_all(made: list):
    for b in made:
        b.stop()
        b.cleanup()


@pytest.fixture
def bridged(tmp_path):
    """A broker with [bridges.webhook.crm] pointing at `url` and the rule files given."""
    made = []

    def make(url, rules: dict[str, str], bridge_keys: str = "", **kw):
        table = f'\n[bridges.webhook.crm]\nurl = "{url}"\nretry_backoff = 50\n{bridge_keys}\n'
        return start_bridged(tmp_path, made, table, rules, **kw)

    yield make
    stop_all(made)


TELEMETRY_RULE = """
CREATE RULE to_crm AS
SELECT clientid AS vin, payload.speed AS speed, payload.seq AS seq
FROM "cars/+/telemetry"
INTO webhook.crm (method = 'POST', path = '/telemetry/${vin}', body = '${.}');
"""


def publish_all(b, cars, per_car, topic="cars/{cid}/telemetry", payload=None):
    """cars × per_car QoS 1 publishes, each car pipelining its own, in order."""
    threads = []
    for i in range(cars):
        cid = f"car{i}"

        def run(cid=cid):
            c = R.RawClient(b.port, b.host)
            assert c.connect(cid).rc == 0
            for n in range(per_car):
                body = payload(cid, n) if payload else json.dumps({"speed": 100 + n % 50, "seq": n}).encode()
                c.send(R.publish(topic.format(cid=cid), body, qos=1, pid=n % 65535 + 1))
            for n in range(per_car):
                c.expect(R.PUBACK, 30)
            c.close()

        t = threading.Thread(target=run)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(60)


def bridge_metrics(b, until=lambda m: True, bridge="webhook.crm", timeout=8):
    """$SYS/bridges/<bridge>/… as published every second (sys_interval 1): the first full set
    for which `until` holds (or the last one seen). Every set must keep the invariant."""
    c = R.RawClient(b.port, b.host, version=V5)
    assert c.connect("").rc == 0
    c.subscribe([(f"$SYS/bridges/{bridge}/#", 0)])
    got = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = c.try_recv(1.0)
        if m is not None and m.type == R.PUBLISH:
            got[m.topic.rsplit("/", 1)[1]] = int(m.payload)
        if len(got) == 11 and m is not None and m.topic.endswith("/status"):   # a whole set
            assert got["matched"] == got["success"] + got["failed"] + got["dropped"] + got["inflight"] + got["queuing"], got
            if until(got):
                break
    c.close()
    return got


def test_webhook_end_to_end_exact(bridged, receiver, uid):
    """20 cars × 500 QoS 1 telemetry messages: 10,000 requests with the templated path and body,
    each car's in publish order."""
    r = receiver().start()
    b = bridged(f"http://127.0.0.1:{r.port}", {"to_crm": TELEMETRY_RULE})
    publish_all(b, 20, 500)
    got = r.wait_delivered(10_000, timeout=60)
    assert len(got) == 10_000
    per_car = {}
    for req in got:
        assert req["method"] == "POST"
        vin = req["path"].rsplit("/", 1)[1]
        assert req["path"] == f"/telemetry/{vin}"
        row = json.loads(req["body"])
        assert row["vin"] == vin and row["speed"] == 100 + row["seq"] % 50
        assert req["headers"]["content-type"] == "application/json"
        per_car.setdefault(vin, []).append(row["seq"])
    assert sorted(per_car) == sorted(f"car{i}" for i in range(20))
    for vin, seqs in per_car.items():
        assert sorted(seqs) == list(range(500)), vin
    m = bridge_metrics(b, lambda m: m["success"] == 10_000)
    assert m["matched"] == 10_000 and m["success"] == 10_000 and m["failed"] == 0 and m["dropped"] == 0, m
    assert m["status"] == 1, m


def test_webhook_500_three_times_then_200_is_retried(bridged, receiver, uid):
    r = receiver().start()
    r.script = [500, 500, 500]
    b = bridged(f"http://127.0.0.1:{r.port}", {"to_crm": TELEMETRY_RULE})
    publish_all(b, 1, 1)
    got = r.wait_delivered(1)
    assert len(got) == 1 and json.loads(got[0]["body"])["vin"] == "car0"
    assert [q["status"] for q in r.requests] == [500, 500, 500, 200]
    m = bridge_metrics(b, lambda m: m["success"] == 1)
    assert m["retried"] == 3 and m["success"] == 1 and m["failed"] == 0, m


def test_webhook_4xx_is_dead_lettered(bridged, receiver, uid):
    r = receiver(default=400).start()
    b = bridged(f"http://127.0.0.1:{r.port}", {"to_crm": TELEMETRY_RULE})
    dlq = R.RawClient(b.port, b.host, version=V5)
    assert dlq.connect(f"dlq-{uid}").rc == 0
    dlq.subscribe([("$dlq/bridges/webhook.crm", 1)])
    publish_all(b, 1, 2)
    msgs = [dlq.expect(R.PUBLISH, 10) for _ in range(2)]
    for m in msgs:
        props = dict(m.props.get("UserProperty", []))
        assert props.get("error") == "HTTP 400" and props.get("rule") == "to_crm", m.props
        assert json.loads(m.payload)["vin"] == "car0"
    assert len(r.requests) == 2                       # never retried
    m = bridge_metrics(b, lambda m: m["failed"] == 2)
    assert m["failed"] == 2 and m["retried"] == 0 and m["success"] == 0, m


def test_receiver_down_then_up_loses_nothing(bridged, receiver, uid):
    port = free_port()
    b = bridged(f"http://127.0.0.1:{port}", {"to_crm": TELEMETRY_RULE})
    publish_all(b, 5, 40)
    time.sleep(1.5)                                   # connection refused, retried with backoff
    m = bridge_metrics(b, lambda m: m["matched"] == 200 and m["status"] == 2)
    assert m["matched"] == 200 and m["success"] == 0 and m["retried"] > 0, m
    assert m["status"] == 2, m                        # disconnected: real delivery failing
    r = receiver(port=port).start()
    got = r.wait_delivered(200, timeout=40)
    assert len(got) == 200
    assert sorted((json.loads(q["body"])["vin"], json.loads(q["body"])["seq"]) for q in got) == \
        sorted((f"car{i}", n) for i in range(5) for n in range(40))
    m = bridge_metrics(b, lambda m: m["success"] == 200)
    assert m["success"] == 200 and m["dropped"] == 0 and m["queuing"] == 0 and m["inflight"] == 0, m


def test_full_buffer_drop_oldest_counts_exactly(bridged, receiver, uid):
    port = free_port()
    b = bridged(f"http://127.0.0.1:{port}", {"to_crm": TELEMETRY_RULE},
                bridge_keys="max_buffer_messages = 50\non_full = \"drop_oldest\"\npool_size = 1")
    publish_all(b, 1, 300)
    time.sleep(1.0)
    r = receiver(port=port).start()
    deadline = time.monotonic() + 30
    m = bridge_metrics(b, lambda m: m["queuing"] == 0 and m["inflight"] == 0, timeout=30)
    got = r.delivered()
    seqs = sorted(json.loads(q["body"])["seq"] for q in got)
    assert len(set(seqs)) == len(seqs)
    assert m["dropped.queue_full"] == m["dropped"] == 300 - len(got), (m, len(got))
    assert m["matched"] == 300 and m["success"] == len(got), m
    assert seqs[-1] == 299                            # the newest are kept, the oldest dropped


def test_injection_and_binary_land_byte_exact(bridged, receiver, uid):
    r = receiver().start()
    rule = """
CREATE RULE raw AS
SELECT payload AS p, clientid AS vin FROM "raw/+"
INTO webhook.crm (method = 'PUT', path = '/raw/${vin}', body = '${p}', headers = '${h}');
"""
    b = bridged(f"http://127.0.0.1:{r.port}", {"raw": rule})
    nasty = ["it's \"quoted\" \\ back\\slash", "'); DROP TABLE x; --", "Müller ümlaut €", "\x01\x02 binary \xff".encode("latin-1").decode("latin-1")]
    c = R.RawClient(b.port, b.host)
    assert c.connect("VIN-1").rc == 0
    sent = []
    for i, s in enumerate(nasty):
        body = s.encode("utf-8")
        sent.append(body)
        c.publish("raw/VIN-1", body, qos=1)
    got = r.wait_delivered(len(nasty))
    # Requests run concurrently (pool_size): compare as sets, each exactly once.
    assert sorted(q["body"] for q in got) == sorted(sent), (r.requests, b.log_tail(30))
    assert all(q["method"] == "PUT" and q["path"] == "/raw/VIN-1" for q in got)


def test_bad_bridge_actions_name_file_line_and_column(tmp_path):
    cfg = tmp_path / "turnpike.toml"
    cfg.write_text('[bridges.webhook.crm]\nurl = "http://127.0.0.1:9/"\n')
    rules = tmp_path / "rules"
    rules.mkdir()
    cases = {
        "unknown_bridge": ("CREATE RULE a AS SELECT 1 AS x FROM \"t\"\nINTO webhook.nope (path = '/x');",
                           "unknown_bridge.sql:2:6: bridge 'webhook.nope' is not configured (configured: webhook.crm)"),
        "unknown_arg": ("CREATE RULE b AS SELECT 1 AS x FROM \"t\"\nINTO webhook.crm (pathh = '/x');",
                        "unknown_arg.sql:2:19: unknown argument 'pathh' for webhook (expected ack, body, headers, method, path)"),
        "bad_template": ("CREATE RULE c AS SELECT 1 AS x FROM \"t\"\nINTO webhook.crm (path = '/x/${vin');",
                         "bad_template.sql:2:"),
        "bad_method": ("CREATE RULE d AS SELECT 1 AS x FROM \"t\"\nINTO webhook.crm (method = 'FETCH');",
                       "bad_method.sql:2:"),
        "bad_ack": ("CREATE RULE e AS SELECT 1 AS x FROM \"t\"\nINTO webhook.crm (ack = 'after_snk');",
                    "bad_ack.sql:2:25: ack must be 'after_sink'"),
    }
    for name, (text, expected) in cases.items():
        for f in rules.glob("*.sql"):
            f.unlink()
        (rules / f"{name}.sql").write_text(text)
        r = subprocess.run([str(TURNPIKE_BIN), "rules", "check", str(rules), "--config", str(cfg)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1, (name, r.stdout, r.stderr)
        assert expected in r.stderr, (name, r.stderr)
    (rules / "bad_ack.sql").unlink()
    (rules / "ok.sql").write_text(TELEMETRY_RULE)
    r = subprocess.run([str(TURNPIKE_BIN), "rules", "check", str(rules), "--config", str(cfg)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "ok: 1 rule (to_crm)" in r.stdout, (r.stdout, r.stderr)


@pytest.mark.parametrize("table,message", [
    ('[bridges.webhook.crm]\nurl = "ftp://x"\n', "invalid value for 'url' in [bridges.webhook.crm]"),
    ('[bridges.webhook.crm]\nurl = "http://x"\nbatch_sise = 3\n', "unknown key 'batch_sise' in [bridges.webhook.crm]"),
    ('[bridges.webhook.crm]\nurl = "http://x"\non_full = "pause"\n', "invalid value for 'on_full' in [bridges.webhook.crm]: expected \"drop_oldest\" or \"backpressure\""),
    ('[bridges.postgres.wh]\nserver = "127.0.0.1:5432"\n', "[bridges.postgres.wh] needs dsn"),
    ('[bridges.redis.wh]\nserver = "127.0.0.1:6379"\n', "unknown bridge kind [bridges.redis] (expected webhook, kafka or postgres)"),
    ('[bridges.webhook.crm]\nurl = "http://x"\nbuffer = "tape"\n', "invalid value for 'buffer' in [bridges.webhook.crm]: expected \"memory\" or \"disk\""),
    ('[storage]\ndurability = "none"\n[bridges.webhook.crm]\nurl = "http://x"\nbuffer = "disk"\n',
     '[bridges.webhook.crm] buffer = "disk" needs the durable store, but [storage] durability is "none"'),
])
def test_bad_bridge_config_is_refused(tmp_path, table, message):
    cfg = tmp_path / "turnpike.toml"
    cfg.write_text(table)
    r = subprocess.run([str(TURNPIKE_BIN), "serve", "--config", str(cfg), "--port", "0", "--data", str(tmp_path / "d")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and message in r.stderr, r.stderr


AFTER_SINK_RULE = """
CREATE RULE held AS
SELECT clientid AS vin, payload AS p FROM "held/+"
INTO webhook.crm (path = '/held/${vin}', body = '${p}', ack = 'after_sink');
"""


@pytest.mark.parametrize("version", [V5, V3], ids=["v5", "v311"])
def test_after_sink_holds_the_puback_until_the_webhook_answers(bridged, receiver, uid, version):
    port = free_port()
    b = bridged(f"http://127.0.0.1:{port}", {"held": AFTER_SINK_RULE})
    c = R.RawClient(b.port, b.host, version=version)
    assert c.connect(f"car-{uid}").rc == 0
    c.send(R.publish(f"held/car-{uid}", b"unlock-ack", qos=1, pid=1, version=version))
    c.send(R.publish(f"other/{uid}", b"no rule", qos=1, pid=2, version=version))   # routed at once...
    assert c.try_recv(1.5) is None                   # ...but its PUBACK waits behind the held one
    r = receiver(port=port).start()                  # the sink comes up: delivered, then acked
    first = c.expect(R.PUBACK, 10)
    second = c.expect(R.PUBACK, 5)
    assert (first.pid, second.pid) == (1, 2) and first.rc < 0x80, (first, second)   # 0x10: no subscribers
    got = r.wait_delivered(1)
    assert [q["body"] for q in got] == [b"unlock-ack"]


def test_after_sink_timeout_fails_the_v5_ack_and_disconnects_v3(bridged, receiver, uid):
    port = free_port()
    b = bridged(f"http://127.0.0.1:{port}", {"held": AFTER_SINK_RULE}, ack_timeout=2)
    v5 = R.RawClient(b.port, b.host, version=V5)
    assert v5.connect(f"v5-{uid}").rc == 0
    v5.send(R.publish(f"held/v5-{uid}", b"x", qos=1, pid=7, version=V5))
    a = v5.expect(R.PUBACK, 6)
    assert a.pid == 7 and a.rc == 0x80, a            # the car may resend
    v3 = R.RawClient(b.port, b.host)
    assert v3.connect(f"v3-{uid}").rc == 0
    v3.send(R.publish(f"held/v3-{uid}", b"x", qos=1, pid=8))
    closed, pkts = v3.wait_closed(6)
    assert closed and pkts == [], pkts               # no PUBACK: its session resends on reconnect


def test_after_sink_permanent_failure_is_0x80_at_once(bridged, receiver, uid):
    r = receiver(default=422).start()
    b = bridged(f"http://127.0.0.1:{r.port}", {"held": AFTER_SINK_RULE})
    c = R.RawClient(b.port, b.host, version=V5)
    assert c.connect(f"p-{uid}").rc == 0
    c.send(R.publish(f"held/p-{uid}", b"x", qos=1, pid=3, version=V5))
    a = c.expect(R.PUBACK, 5)
    assert a.pid == 3 and a.rc == 0x80 and "HTTP 422" in a.props.get("ReasonString", ""), a


def test_full_buffer_backpressure_slows_publishers_and_loses_nothing(bridged, receiver, uid):
    port = free_port()
    b = bridged(f"http://127.0.0.1:{port}", {"to_crm": TELEMETRY_RULE},
                bridge_keys="max_buffer_messages = 20\non_full = \"backpressure\"\npool_size = 2")
    done = threading.Event()

    def publish():
        publish_all(b, 1, 200)
        done.set()

    t = threading.Thread(target=publish)
    t.start()
    time.sleep(2.0)
    m = bridge_metrics(b, lambda m: m["matched"] > 0)
    assert not done.is_set()                           # the publisher is held back...
    assert 20 <= m["matched"] <= 40 and m["dropped"] == 0, m   # ...near the bound, nothing dropped
    r = receiver(port=port).start()
    t.join(60)
    assert done.is_set()
    got = r.wait_delivered(200, timeout=40)
    assert sorted(json.loads(q["body"])["seq"] for q in got) == list(range(200))
    m = bridge_metrics(b, lambda m: m["success"] == 200)
    assert m["success"] == 200 and m["dropped"] == 0, m


def kill9(b):
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait(10)
    b._stopped()


def test_disk_buffer_delivers_after_kill9(bridged, receiver, uid):
    """buffer = "disk": 200 acknowledged records the sink refused (503) are in the store; after
    kill -9 and a restart each is delivered exactly once, and once delivered they are gone from
    the store (a third start delivers nothing)."""
    r = receiver(default=503).start()
    b = bridged(f"http://127.0.0.1:{r.port}", {"to_crm": TELEMETRY_RULE}, bridge_keys='buffer = "disk"')
    publish_all(b, 4, 50)                              # every PUBACK came: each record is on disk
    m = bridge_metrics(b, lambda m: m["matched"] == 200 and m["retried"] > 0)
    assert m["matched"] == 200 and m["success"] == 0 and m["retried"] > 0, m
    kill9(b)
    assert r.delivered() == []
    r.default = 200
    b.start()
    got = r.wait_delivered(200, timeout=30)
    assert sorted((json.loads(q["body"])["vin"], json.loads(q["body"])["seq"]) for q in got) == \
        sorted((f"car{i}", n) for i in range(4) for n in range(50))
    assert "200 bridge records to deliver" in b.log_text()
    m = bridge_metrics(b, lambda m: m["success"] == 200)
    assert m["success"] == 200 and m["matched"] == 200 and m["queuing"] == 0, m
    b.stop()                                            # the deletes are committed by now
    b.start()
    time.sleep(1.0)
    assert len(r.delivered()) == 200
    assert "0 bridge records to deliver" in b.log_text().rsplit("storage: recovered", 1)[1]


def test_disk_buffer_keeps_records_of_a_bridge_no_longer_configured(tmp_path, receiver, uid):
    """Records of a disk-buffered bridge that a new configuration drops are kept (and said so in
    the log), and delivered once the bridge is configured again."""
    made = []
    try:
        dead = free_port()
        table = f'\n[bridges.webhook.crm]\nurl = "http://127.0.0.1:{dead}"\nretry_backoff = 50\nbuffer = "disk"\n'
        b = start_bridged(tmp_path, made, table, {"to_crm": TELEMETRY_RULE})
        publish_all(b, 2, 10)
        kill9(b)
        empty = tmp_path / "no-rules"
        empty.mkdir()
        saved_rules, b.rules, b.extra_toml = b.rules, {"dir": str(empty)}, ""
        b.start()
        assert wait_log(b, "20 records of bridge webhook.crm are kept in the store")
        kill9(b)
        r = receiver(port=dead).start()
        b.rules, b.extra_toml = saved_rules, table
        b.start()
        got = r.wait_delivered(20, timeout=20)
        assert sorted((json.loads(q["body"])["vin"], json.loads(q["body"])["seq"]) for q in got) == \
            sorted((f"car{i}", n) for i in range(2) for n in range(10))
    finally:
        stop_all(made)


def wait_log(b, text, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in b.log_text():
            return True
        time.sleep(0.05)
    return False
