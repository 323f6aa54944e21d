"""`[server] log_format = "json"`: every log line is one JSON object, with the client id, user
name and peer address of connection and drop logs as fields of their own."""

import json

import pytest

import rawmqtt as R
from conftest import Broker, wait_until

pytestmark = pytest.mark.turnpike_only

V3, V5 = R.MQTT311, R.MQTT5


@pytest.fixture
def json_broker():
    b = Broker(log_format="json", max_queued_messages=2).start()
    yield b
    b.stop()
    b.cleanup()


def records(b):
    """Every line the broker wrote, parsed (the first is the harness's command line)."""
    lines = [l for l in b.log_text().splitlines() if l and not l.startswith("$ ")]
    out = []
    for l in lines:
        if l.startswith("turnpike: ") or l.startswith("%"):     # stderr before logging starts / librdkafka
            continue
        out.append(json.loads(l))                             # every line must parse
    return out


def test_every_line_is_json_with_the_clients_fields(json_broker):
    b = json_broker
    c = R.RawClient(b.port, b.host, version=V5)
    assert c.connect("car-json", username="driver-7").rc == 0
    c.close()
    assert wait_until(lambda: any(r["msg"].startswith("client car-json closed") for r in records(b)), 5)
    recs = records(b)
    assert all({"ts", "level", "source", "msg"} <= r.keys() for r in recs)
    assert all(r["ts"].endswith("Z") and r["ts"][10] == "T" for r in recs)
    connected = next(r for r in recs if r["msg"].startswith("client car-json connected"))
    assert connected["clientid"] == "car-json" and connected["username"] == "driver-7"
    assert connected["peer"].startswith("127.0.0.1:") and connected["level"] == "debug"
    assert connected["source"] == "Broker"


def test_drop_log_has_client_topic_and_reason_fields_and_escapes(json_broker):
    b = json_broker
    s = R.RawClient(b.port, b.host, version=V5)
    assert s.connect("slow-car", clean=False, properties={"SessionExpiryInterval": 60}).rc == 0
    topic = 'cmd/"quoted"\\back/é'
    assert s.subscribe([(topic, 1)]).codes == [1]
    s.close()                                               # offline: its queue holds 2
    p = R.RawClient(b.port, b.host, version=V5)
    assert p.connect("backend").rc == 0
    for n in range(4):
        p.publish(topic, b"x", qos=1, pid=n + 1)
    p.close()
    assert wait_until(lambda: any(r["msg"].startswith("dropped message") for r in records(b)), 5)
    drop = next(r for r in records(b) if r["msg"].startswith("dropped message"))
    assert drop["level"] == "warning" and drop["clientid"] == "slow-car" and drop["topic"] == topic
    assert drop["reason"] == "queue full (max_queued_messages 2)"


def test_bad_log_format_is_refused(tmp_path):
    b = Broker(log_format="xml")
    with pytest.raises(RuntimeError, match=r"invalid value for 'log_format' in \[server\]"):
        b.start()
    b.cleanup()
