"""Malformed and forbidden input sent over raw sockets. Every case must close
only the offending connection; the broker keeps serving everybody else."""

import socket

import pytest

import rawmqtt as R
from conftest import assert_pubsub_works


def case(id, data, version=4, connect=True, reason=None, turnpike_only=False):
    marks = [pytest.mark.turnpike_only] if turnpike_only else []
    return pytest.param(version, connect, data, reason, id=id, marks=marks)


CASES = [
    # --- after a successful CONNECT --------------------------------------
    case("v5-publish-qos3", R.publish("a/b", b"x", qos=3, pid=1, version=5), 5, reason=0x81),
    case("v311-publish-qos3", R.publish("a/b", b"x", qos=3, pid=1)),
    case("v311-garbage", b"\xff\xff\xff\xff\xff\xff"),
    case("v5-garbage", b"\xf7\x13garbage-bytes-here!!", 5),
    case("reserved-type-0", b"\x00\x00"),
    case("v311-subscribe-flags-0", R.subscribe(1, [("a", 0)], flags=0x0)),
    case("v311-subscribe-flags-3", R.subscribe(1, [("a", 0)], flags=0x3)),
    case("v5-subscribe-flags-0", R.subscribe(1, [("a", 0)], version=5, flags=0x0), 5),
    case("unsubscribe-flags-0", R.fixed_header(R.UNSUBSCRIBE, 0, R.enc_u16(1) + R.enc_str("a"))),
    case("pubrel-flags-0", R.fixed_header(R.PUBREL, 0, R.enc_u16(1))),
    case("remaining-length-5-bytes", b"\x30\xff\xff\xff\xff\x01"),
    case("publish-length-overruns", b"\x30\x03\x00\x10a"),
    case("publish-wildcard-plus", R.publish("a/+/c", b"x")),
    case("publish-wildcard-hash", R.publish("a/#", b"x", version=5), 5),
    case("publish-invalid-utf8", R.publish(b"a/\xc3\x28", b"x")),
    case("publish-nul-in-topic", R.publish("a/\x00b", b"x")),
    case("publish-empty-topic-v311", R.publish("", b"x")),
    case("publish-qos1-packet-id-0", R.publish("a/b", b"x", qos=1, pid=0)),
    case("subscribe-no-filters", R.fixed_header(R.SUBSCRIBE, 2, R.enc_u16(1))),
    case("subscribe-qos3", R.subscribe(1, [("a", 3)])),
    case("v5-subscribe-reserved-option-bits", R.subscribe(1, [("a", 0xC0)], version=5), 5),
    case("v5-subscribe-retain-handling-3", R.subscribe(1, [("a", 0x30)], version=5), 5),
    case("v5-unknown-property", R.publish("a/b", b"x", version=5, properties={"_raw": b"\x7f\x00"}), 5),
    case("v5-connect-only-property-in-publish",
         R.publish("a/b", b"x", version=5, properties={"SessionExpiryInterval": 5}), 5),
    case("v5-duplicate-property",
         R.publish("a/b", b"x", version=5, properties={"_raw": b"\x03\x00\x01a\x03\x00\x01b"}), 5),
    # mosquitto 2.0.11 silently accepts a Subscription Identifier in a client PUBLISH
    # ([MQTT-3.3.4-6]: the client MUST NOT send one; protocol error).
    case("v5-subscription-id-in-publish",
         R.publish("a/b", b"x", version=5, properties={"SubscriptionIdentifier": 3}), 5, turnpike_only=True),
    case("v5-subscription-id-zero",
         R.subscribe(1, [("a", 0)], version=5, properties={"SubscriptionIdentifier": 0}), 5),
    # mosquitto 2.0.11 grants No Local on a shared subscription ([MQTT-3.8.3-4]: protocol error).
    case("v5-no-local-on-shared", R.subscribe(1, [("$share/g/a", R.sub_options(no_local=True))], version=5), 5,
         turnpike_only=True),
    # --- before / instead of a valid CONNECT -----------------------------
    case("garbage-before-connect", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", connect=False),
    case("connect-reserved-flag", R.connect("bad", reserved_flag=True), connect=False),
    case("v5-connect-reserved-flag", R.connect("bad", version=5, reserved_flag=True), 5, connect=False),
    case("connect-will-qos3", R.connect("bad", will={"topic": "w", "payload": b"", "qos": 3}), connect=False),
    case("connect-will-qos-without-will-flag",
         R.fixed_header(R.CONNECT, 0, R.enc_str("MQTT") + bytes([4, 0x02 | 0x08]) + R.enc_u16(60) + R.enc_str("bad")),
         connect=False),
    case("connect-password-without-username-v311", R.connect("bad", password=b"pw"), connect=False),
    case("connect-wrong-protocol-name", R.connect("bad", protocol_name="MQTX"), connect=False),
    case("connect-truncated", R.connect("bad")[:-3], connect=False),
]


@pytest.mark.parametrize("version,connect,data,reason", CASES)
def test_malformed_input_closes_only_offender(broker, raw, uid, version, connect, data, reason):
    bystander = raw(broker)
    assert bystander.connect(uid + "-by").rc == 0

    c = raw(broker, version=version)
    if connect:
        assert c.connect(uid).rc == 0
    c.send(data)
    if not connect and data.startswith(b"\x10") and len(data) < 20:
        # truncated CONNECT: nothing arrives until we give up; shut our side
        c.sock.shutdown(socket.SHUT_WR)
    closed, pkts = c.wait_closed(5)
    assert closed, f"connection must be closed, got {pkts}"
    for p in pkts:
        assert p is not None, "broker sent undecodable bytes"
        if p.type == R.CONNACK:
            assert not connect and p.rc != 0, p   # refusing CONNACK is fine
            continue
        assert p.type == R.DISCONNECT and version == 5, p
        assert p.rc >= 0x80, p
        if reason is not None:
            assert p.rc == reason, p
    assert bystander.is_open(), "other clients must not be affected"
    assert_pubsub_works(broker, tag=uid)


def test_v5_qos3_disconnect_reason_then_close(broker, raw, uid):
    c = raw(broker, version=5)
    assert c.connect(uid).rc == 0
    c.send(R.publish("a/b", b"x", qos=3, pid=1, version=5))
    closed, pkts = c.wait_closed(5)
    assert closed
    assert pkts and pkts[0].type == R.DISCONNECT and pkts[0].rc == 0x81, pkts
    assert_pubsub_works(broker)


def test_abrupt_close_mid_packet(broker, raw, uid):
    c = raw(broker)
    assert c.connect(uid).rc == 0
    c.send(b"\x30\x64\x00\x03abc")  # PUBLISH announcing 100 bytes, only 6 sent
    c.close()
    assert_pubsub_works(broker)


def test_connection_without_any_bytes(broker, raw):
    c = raw(broker)
    c.close()
    assert_pubsub_works(broker)


def test_byte_by_byte_connect_and_publish(broker, raw, uid):
    """Packets split across many TCP segments are reassembled."""
    import time
    sub = raw(broker)
    sub.connect(uid + "s")
    sub.subscribe([(f"{uid}/slow", 1)])
    c = raw(broker)
    data = R.connect(uid) + R.publish(f"{uid}/slow", b"dribble", qos=1, pid=9)
    for i in range(len(data)):
        c.send(data[i:i + 1])
        time.sleep(0.002)
    assert c.expect(R.CONNACK).rc == 0
    assert c.expect(R.PUBACK).pid == 9
    assert sub.expect(R.PUBLISH).payload == b"dribble"


def test_many_packets_in_one_segment(broker, raw, uid):
    sub = raw(broker)
    sub.connect(uid + "s")
    sub.subscribe([(f"{uid}/burst", 0)])
    c = raw(broker)
    data = R.connect(uid) + b"".join(R.publish(f"{uid}/burst", str(i).encode()) for i in range(50)) + R.pingreq()
    c.send(data)
    assert c.expect(R.CONNACK).rc == 0
    assert c.expect(R.PINGRESP)
    got = [sub.expect(R.PUBLISH).payload for _ in range(50)]
    assert got == [str(i).encode() for i in range(50)]
