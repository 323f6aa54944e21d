"""Kafka bridges: rules produce into a real Kafka-protocol broker (noida-db 0.2.3 from PyPI, its
binary started per test on a free loopback port with a fresh data dir; /work/shared/KAFKA.md),
read back with kcat; what arrived is compared exactly with what was published."""

import json
import subprocess
import threading
import time

import pytest

import rawmqtt as R
from conftest import TURNPIKE_BIN, free_port
from servers import Noida
from test_bridges import bridge_metrics, publish_all, start_bridged, stop_all

pytestmark = [pytest.mark.turnpike_only, pytest.mark.single_node("reads one node's bridge counters; each node runs its own bridges")]

V5 = R.MQTT5


@pytest.fixture
def noida(tmp_path):
    made = []

    def make():
        k = Noida(tmp_path / f"noida{len(made)}").start()
        made.append(k)
        return k

    yield make
    for k in made:
        k.stop()


@pytest.fixture
def bridged(tmp_path):
    """A broker with [bridges.kafka.fleet] at `bootstrap` and the rule files given."""
    made = []

    def make(bootstrap, rules: dict[str, str], bridge_keys: str = "", **kw):
        table = f'\n[bridges.kafka.fleet]\nbootstrap_servers = "{bootstrap}"\nretry_backoff = 100\n{bridge_keys}\n'
        return start_bridged(tmp_path, made, table, rules, **kw)

    yield make
    stop_all(made)


TELEMETRY_RULE = """
CREATE RULE to_kafka AS
SELECT clientid AS vin, payload.speed AS speed, payload.seq AS seq
FROM "cars/+/telemetry"
INTO kafka.fleet (topic = 'telemetry');
"""


def check_cars(rows, cars, per_car):
    """Every record keyed by its car, each car's in publish order, exactly once."""
    per_car_seqs = {}
    for key, value in rows:
        row = json.loads(value)
        assert key.decode() == row["vin"], (key, row)      # default key: the publisher's client id
        assert row["speed"] == 100 + row["seq"] % 50
        per_car_seqs.setdefault(row["vin"], []).append(row["seq"])
    assert sorted(per_car_seqs) == sorted(f"car{i}" for i in range(cars))
    for vin, seqs in per_car_seqs.items():
        assert seqs == list(range(per_car)), (vin, len(seqs), [s for a, s in zip(seqs, seqs[1:]) if s != a + 1][:10])


def test_kafka_end_to_end_exact(noida, bridged):
    """20 cars × 500 QoS 1 telemetry messages: 10,000 records keyed by car, each car's in order."""
    k = noida()
    b = bridged(k.bootstrap, {"to_kafka": TELEMETRY_RULE}, bridge_keys='compression = "lz4"')
    t0 = time.monotonic()
    publish_all(b, 20, 500)
    m = bridge_metrics(b, lambda m: m["success"] == 10_000, bridge="kafka.fleet", timeout=30)
    print(f"10,000 records delivered in {time.monotonic() - t0:.2f} s (publish included)")
    assert m["matched"] == 10_000 and m["success"] == 10_000 and m["failed"] == 0 and m["dropped"] == 0, m
    assert m["status"] == 1, m
    rows = k.read("telemetry", 10_000)
    assert len(rows) == 10_000
    check_cars(rows, 20, 500)


def test_kafka_down_mid_stream_loses_nothing(noida, bridged):
    """noida-db stopped (SIGTERM) while 20 cars publish, restarted on the same port and data dir:
    every record arrives, each car's in order (with 8 requests in flight), exactly once. librdkafka
    holds and retries what it was given (request_ttl 0: for ever); the bridge shows
    disconnected meanwhile and keeps the rest queued."""
    k = noida()
    b = bridged(k.bootstrap, {"to_kafka": TELEMETRY_RULE}, bridge_keys="batch_size = 50\ninflight_window = 8\n")

    def paced(cid, n):
        if n % 25 == 0:
            time.sleep(0.05)
        return json.dumps({"speed": 100 + n % 50, "seq": n}).encode()

    pub = threading.Thread(target=publish_all, args=(b, 20, 500), kwargs={"payload": paced})
    pub.start()
    time.sleep(0.5)
    k.stop()                                          # mid-stream
    pub.join(60)
    m = bridge_metrics(b, lambda m: m["status"] == 2, bridge="kafka.fleet", timeout=15)
    assert m["status"] == 2 and m["success"] < 10_000 and m["inflight"] + m["queuing"] > 0, m
    k.start()                                         # same port, same data dir
    m = bridge_metrics(b, lambda m: m["success"] == 10_000, bridge="kafka.fleet", timeout=60)
    assert m["matched"] == 10_000 and m["success"] == 10_000 and m["failed"] == 0 and m["dropped"] == 0, m
    assert m["status"] == 1, m
    rows = k.read("telemetry", 10_000)
    assert len(rows) == 10_000, len(rows)
    check_cars(rows, 20, 500)


def test_kafka_records_expire_at_request_ttl(bridged):
    """No Kafka broker at all and request_ttl = 2: librdkafka retries each record until then
    (message.timeout.ms comes from request_ttl), then it is dropped as expired, counted, and
    the bridge shows disconnected meanwhile."""
    b = bridged(f"127.0.0.1:{free_port()}", {"to_kafka": TELEMETRY_RULE}, bridge_keys="request_ttl = 2\n")
    publish_all(b, 2, 5)
    m = bridge_metrics(b, lambda m: m["status"] == 2, bridge="kafka.fleet", timeout=10)
    assert m["status"] == 2 and m["success"] == 0, m
    m = bridge_metrics(b, lambda m: m["dropped.expired"] == 10, bridge="kafka.fleet", timeout=15)
    assert m["dropped"] == 10 and m["dropped.expired"] == 10 and m["success"] == 0 and m["failed"] == 0, m
    assert m["inflight"] == 0 and m["queuing"] == 0, m


def test_kafka_too_large_is_dead_lettered(noida, bridged, uid):
    """A record over 1 MB is refused for good: $dlq/bridges/kafka.fleet with the error, `failed`;
    the bridge keeps delivering what fits (with its headers from a map column)."""
    k = noida()
    rule = """
CREATE RULE raw AS
SELECT payload AS p, clientid AS vin, map_put('car', clientid, json_decode('{}')) AS h FROM "raw/+"
INTO kafka.fleet (topic = 'raw', key = '${vin}', value = '${p}', headers = '${h}');
"""
    b = bridged(k.bootstrap, {"raw": rule}, max_packet_size=4 << 20)
    dlq = R.RawClient(b.port, b.host, version=V5)
    assert dlq.connect(f"dlq-{uid}").rc == 0
    dlq.subscribe([("$dlq/bridges/kafka.fleet", 1)])
    c = R.RawClient(b.port, b.host)
    assert c.connect("VIN-1").rc == 0
    big = b"x" * (1_200_000)
    c.publish("raw/VIN-1", big, qos=1)
    c.publish("raw/VIN-1", b"small", qos=1)
    m = dlq.expect(R.PUBLISH, 10)
    props = dict(m.props.get("UserProperty", []))
    assert "Message size too large" in props.get("error", ""), props
    assert props.get("rule") == "raw" and m.payload == big
    assert k.read("raw", 1) == [(b"VIN-1", b"small")]
    assert k.read("raw", 1, fmt="%h\t%s\n") == [(b"car=VIN-1", b"small")]
    m = bridge_metrics(b, lambda m: m["failed"] == 1 and m["success"] == 1, bridge="kafka.fleet")
    assert m["failed"] == 1 and m["success"] == 1 and m["retried"] == 0, m


@pytest.mark.parametrize("keys,message", [
    ('bootstrap_servers = "127.0.0.1:9092"\nack = "all"\n', "unknown key 'ack' in [bridges.kafka.fleet]"),
    ('bootstrap_servers = "127.0.0.1:9092"\nacks = "some"\n', "invalid value for 'acks' in [bridges.kafka.fleet]"),
    ('bootstrap_servers = "127.0.0.1:9092"\ncompression = "brotli"\n', "invalid value for 'compression' in [bridges.kafka.fleet]"),
    ('acks = "all"\n', "[bridges.kafka.fleet] needs bootstrap_servers"),
    ('bootstrap_servers = "127.0.0.1:9092"\nacks = "leader"\nidempotence = true\n', "idempotence = true needs acks = \"all\""),
    ('bootstrap_servers = "127.0.0.1:9092"\n[bridges.kafka.fleet.properties]\n"no.such.property" = "1"\n',
     "[bridges.kafka.fleet].properties: librdkafka property 'no.such.property' = \"1\": No such configuration property"),
    ('bootstrap_servers = "127.0.0.1:9092"\n[bridges.kafka.fleet.properties]\n"linger.ms" = "soon"\n',
     "librdkafka property 'linger.ms' = \"soon\": Invalid value"),
    ('bootstrap_servers = "127.0.0.1:9092"\n[bridges.kafka.fleet.properties]\n"message.timeout.ms" = 1500\n',
     "[bridges.kafka.fleet].properties: 'message.timeout.ms' is set from request_ttl"),
])
def test_bad_kafka_config_is_refused(tmp_path, keys, message):
    cfg = tmp_path / "turnpike.toml"
    cfg.write_text("[bridges.kafka.fleet]\n" + keys)
    r = subprocess.run([str(TURNPIKE_BIN), "serve", "--config", str(cfg), "--port", "0", "--data", str(tmp_path / "d")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and f"{cfg}: " in r.stderr and message in r.stderr, r.stderr
