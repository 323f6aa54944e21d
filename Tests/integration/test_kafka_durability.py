"""Kafka bridges when Kafka is away: `ack = 'after_sink'` holds the car's PUBACK until Kafka has
the record, and a disk buffer keeps acknowledged records across the broker's kill -9. Real
noida-db (test_kafka.py), stopped and restarted on the same port and data dir."""

import json
import time

import pytest

import rawmqtt as R
from test_bridges import bridge_metrics, kill9, publish_all
from test_kafka import TELEMETRY_RULE, bridged, check_cars, noida  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.turnpike_only, pytest.mark.single_node("kills one node's process and reads its bridge counters")]

V5 = R.MQTT5

HELD_RULE = TELEMETRY_RULE.replace("INTO kafka.fleet (topic = 'telemetry')",
                                   "INTO kafka.fleet (topic = 'telemetry', ack = 'after_sink')")
# librdkafka retries for ever (request_ttl 0) and reconnects within 0.5 s of Kafka coming back
# (its default backoff grows to 10 s).
FAST = '[bridges.kafka.fleet.properties]\n"reconnect.backoff.max.ms" = 500\n'


def test_after_sink_with_kafka_down_holds_the_puback_until_kafka_is_back(noida, bridged):
    k = noida()
    b = bridged(k.bootstrap, {"to_kafka": HELD_RULE}, bridge_keys=FAST)
    c = R.RawClient(b.port, b.host, version=V5)
    assert c.connect("car0").rc == 0
    c.send(R.publish("cars/car0/telemetry", json.dumps({"speed": 100, "seq": 0}).encode(), qos=1, pid=1, version=V5))
    assert c.expect(R.PUBACK, 15).pid == 1                 # Kafka up: acked once Kafka has it
    k.stop()
    for n in range(1, 21):
        c.send(R.publish("cars/car0/telemetry", json.dumps({"speed": 100 + n % 50, "seq": n}).encode(),
                         qos=1, pid=n + 1, version=V5))
    assert c.try_recv(3.0) is None                         # Kafka down: no PUBACK
    m = bridge_metrics(b, lambda m: m["status"] == 2, bridge="kafka.fleet", timeout=8)
    assert m["status"] == 2 and m["success"] == 1 and m["inflight"] + m["queuing"] == 20, m   # disconnected, all held
    k.start()                                              # same port, same data dir
    acks = [c.expect(R.PUBACK, 25) for _ in range(20)]
    assert [a.pid for a in acks] == list(range(2, 22))     # in the order the PUBLISHes came
    assert all(a.rc < 0x80 for a in acks), [a.rc for a in acks]   # 0x10: no subscribers, still a success
    rows = k.read("telemetry", 21)
    check_cars(rows, 1, 21)
    c.close()


def test_disk_buffer_survives_kill9_with_kafka_down(noida, bridged):
    """5 cars × 40 acknowledged while Kafka is down, the broker killed: after the restart every
    record is in Kafka once, each car's in publish order."""
    k = noida()
    k.stop()
    b = bridged(k.bootstrap, {"to_kafka": TELEMETRY_RULE}, bridge_keys='buffer = "disk"\n' + FAST)
    publish_all(b, 5, 40)
    m = bridge_metrics(b, lambda m: m["matched"] == 200, bridge="kafka.fleet", timeout=5)
    assert m["matched"] == 200 and m["success"] == 0, m
    kill9(b)
    k.start()
    b.start()
    m = bridge_metrics(b, lambda m: m["success"] == 200, bridge="kafka.fleet", timeout=30)
    assert m["success"] == 200 and m["failed"] == 0 and m["dropped"] == 0, m
    rows = k.read("telemetry", 200)
    assert len(rows) == 200
    check_cars(rows, 5, 40)
