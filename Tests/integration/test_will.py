"""Will messages: abnormal vs normal disconnect, v5 reason 0x04, will
properties, will delay interval, will retain and QoS."""

import signal
import subprocess
import time

import pytest

from conftest import MOSQUITTO_SUB, STDBUF, V5, V311


def _watch(clients, broker, uid, topic, version=V5, qos=1):
    w = clients(broker, uid + "-watch", version=version)
    w.subscribe(topic, qos)
    return w


@pytest.mark.parametrize("version", [4, 5])
def test_will_published_on_abnormal_disconnect(broker, raw, clients, uid, version):
    topic = f"{uid}/will"
    watcher = _watch(clients, broker, uid, topic)
    c = raw(broker, version=version)
    ack = c.connect(uid, will={"topic": topic, "payload": b"gone", "qos": 1})
    assert ack.rc == 0
    c.close()  # TCP close without DISCONNECT
    m = watcher.get(5)
    assert m.payload == b"gone" and m.qos == 1 and not m.retain


@pytest.mark.parametrize("version", [4, 5])
def test_no_will_after_normal_disconnect(broker, raw, clients, uid, version):
    topic = f"{uid}/will"
    watcher = _watch(clients, broker, uid, topic)
    c = raw(broker, version=version)
    assert c.connect(uid, will={"topic": topic, "payload": b"gone"}).rc == 0
    c.disconnect()
    watcher.expect_none(1.0)


def test_v5_disconnect_with_will_reason_publishes_will(broker, raw, clients, uid):
    topic = f"{uid}/will"
    watcher = _watch(clients, broker, uid, topic)
    c = raw(broker, version=5)
    assert c.connect(uid, will={"topic": topic, "payload": b"asked-for"}).rc == 0
    c.disconnect(rc=0x04)
    assert watcher.get(5).payload == b"asked-for"


def test_will_paho_abnormal(broker, clients, uid):
    topic = f"{uid}/will"
    watcher = _watch(clients, broker, uid, topic, version=V311)
    c = clients(broker, uid, version=V311, will={"topic": topic, "payload": b"paho-will", "qos": 2})
    c.kill()
    m = watcher.get(5)
    assert m.payload == b"paho-will" and m.qos == 1  # watcher subscribed at QoS 1


def test_will_from_killed_mosquitto_sub(broker, clients, uid):
    topic = f"{uid}/will"
    watcher = _watch(clients, broker, uid, topic)
    p = subprocess.Popen(STDBUF + [MOSQUITTO_SUB, "-h", broker.host, "-p", str(broker.port), "-V", "mqttv5",
                                   "-t", f"{uid}/nothing", "-d", "--will-topic", topic,
                                   "--will-payload", "cli-died", "--will-qos", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 5
        for line in p.stdout:
            if b"SUBACK" in line or time.monotonic() > deadline:
                break
        p.send_signal(signal.SIGKILL)
        p.wait(5)
    finally:
        if p.poll() is None:
            p.kill()
    assert watcher.get(5).payload == b"cli-died"


def test_will_properties_passed_through(broker, raw, clients, uid):
    topic = f"{uid}/will"
    watcher = _watch(clients, broker, uid, topic)
    c = raw(broker, version=5)
    will_props = {
        "PayloadFormatIndicator": 1,
        "ContentType": "text/plain",
        "ResponseTopic": f"{uid}/reply",
        "CorrelationData": b"\x00\x01corr",
        "UserProperty": [("origin", "will-test"), ("origin", "dup"), ("z", "last")],
    }
    assert c.connect(uid, will={"topic": topic, "payload": "bye", "qos": 1, "properties": will_props}).rc == 0
    c.close()
    m = watcher.get(5)
    assert m.payload == b"bye"
    assert m.prop("PayloadFormatIndicator") == 1
    assert m.prop("ContentType") == "text/plain"
    assert m.prop("ResponseTopic") == f"{uid}/reply"
    assert m.prop("CorrelationData") == b"\x00\x01corr"
    assert m.prop("UserProperty") == [("origin", "will-test"), ("origin", "dup"), ("z", "last")]


def test_will_delay_interval(broker, raw, clients, uid):
    topic = f"{uid}/will"
    watcher = _watch(clients, broker, uid, topic)
    c = raw(broker, version=5)
    ack = c.connect(uid, properties={"SessionExpiryInterval": 30},
                    will={"topic": topic, "payload": b"delayed", "properties": {"WillDelayInterval": 2}})
    assert ack.rc == 0
    c.close()
    t0 = time.monotonic()
    m = watcher.get(6)
    dt = time.monotonic() - t0
    assert m.payload == b"delayed"
    assert 1.5 <= dt <= 4.0, f"will with delay 2s arrived after {dt:.2f}s"
    raw(broker, version=5).connect(uid, clean=True)  # drop the session


def test_will_delay_cancelled_by_reconnect(broker, raw, clients, uid):
    topic = f"{uid}/will"
    watcher = _watch(clients, broker, uid, topic)
    c = raw(broker, version=5)
    assert c.connect(uid, properties={"SessionExpiryInterval": 30},
                     will={"topic": topic, "payload": b"never", "properties": {"WillDelayInterval": 2}}).rc == 0
    c.close()
    time.sleep(0.5)
    c2 = raw(broker, version=5)
    ack = c2.connect(uid, clean=False, properties={"SessionExpiryInterval": 30})
    assert ack.rc == 0 and ack.session_present
    watcher.expect_none(3.0)
    c2.disconnect(properties={"SessionExpiryInterval": 0})


# mosquitto 2.0.11 keeps waiting for the will delay (no will within 12 s) although the
# session (expiry 0) ended at the disconnect; MQTT 5 3.1.3.2.2 says whichever happens first.
@pytest.mark.turnpike_only
def test_will_published_when_session_expires_before_delay(broker, raw, clients, uid):
    """Will Delay > Session Expiry: the will is sent when the session ends."""
    topic = f"{uid}/will"
    watcher = _watch(clients, broker, uid, topic)
    c = raw(broker, version=5)
    assert c.connect(uid, properties={"SessionExpiryInterval": 0},
                     will={"topic": topic, "payload": b"session-ended",
                           "properties": {"WillDelayInterval": 30}}).rc == 0
    c.close()
    assert watcher.get(3).payload == b"session-ended"


@pytest.mark.parametrize("version", [4, 5])
def test_will_retain_flag_honoured(broker, raw, clients, uid, version):
    topic = f"{uid}/will"
    c = raw(broker, version=version)
    assert c.connect(uid, will={"topic": topic, "payload": b"offline", "qos": 1, "retain": True}).rc == 0
    c.close()
    time.sleep(0.5)
    late = clients(broker, uid + "-late", version=V5)
    late.subscribe(topic, 1)
    m = late.get(5)
    assert m.payload == b"offline" and m.retain
    late.publish(topic, b"", qos=1, retain=True)


def test_will_not_retained_without_flag(broker, raw, clients, uid):
    topic = f"{uid}/will"
    c = raw(broker)
    assert c.connect(uid, will={"topic": topic, "payload": b"x", "qos": 1}).rc == 0
    c.close()
    time.sleep(0.5)
    late = clients(broker, uid + "-late", version=V5)
    late.subscribe(topic, 1)
    late.expect_none(0.6)


def test_will_published_on_protocol_error(broker, raw, clients, uid):
    topic = f"{uid}/will"
    watcher = _watch(clients, broker, uid, topic)
    c = raw(broker)
    assert c.connect(uid, will={"topic": topic, "payload": b"broke-protocol"}).rc == 0
    c.send(b"\x00\x00")  # reserved packet type 0
    assert c.wait_closed(5)[0]
    assert watcher.get(5).payload == b"broke-protocol"
