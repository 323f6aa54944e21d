"""Strictness where the specifications leave the server a choice (README, "Behaviour worth
knowing"): control characters and non-characters, packets only a server sends, acknowledgements
of the wrong kind, Receive Maximum. Raw sockets, both protocol versions; each case checks the
exact reason code and whether the connection is closed or still answers a PINGREQ.

mosquitto 2.0.11 differs on some of these (marked turnpike_only, with the reason)."""

import pytest

import rawmqtt as R
from conftest import assert_pubsub_works

V3, V5 = R.MQTT311, R.MQTT5


def closed_with(c, version, reason):
    """The broker closes `c`; a v5 client first gets DISCONNECT `reason`, a v3.1.1 one nothing."""
    closed, pkts = c.wait_closed(5)
    assert closed, f"connection must be closed, got {pkts}"
    if version == V5:
        assert pkts and pkts[0].type == R.DISCONNECT and pkts[0].rc == reason, pkts
    else:
        assert pkts == [], pkts


def refused_connack(c, rc):
    closed, pkts = c.wait_closed(5)
    assert closed
    assert len(pkts) == 1 and pkts[0].type == R.CONNACK and pkts[0].rc == rc, pkts


# ---------------------------------------------------------------------------
# 1. Control characters and non-characters
# ---------------------------------------------------------------------------
BAD_STRINGS = [
    pytest.param("\x01", id="U+0001"),
    pytest.param("\x1b", id="U+001B-escape"),
    pytest.param("\x7f", id="U+007F"),
    pytest.param("\u0085", id="U+0085-C1"),
    pytest.param("\ufdd0", id="U+FDD0-noncharacter"),
    pytest.param("\uffff", id="U+FFFF-noncharacter"),
    pytest.param("\U0001fffe", id="U+1FFFE-noncharacter"),
]


@pytest.mark.turnpike_only  # mosquitto 2.0.11 refuses these too, but closes without a CONNACK
@pytest.mark.parametrize("bad", BAD_STRINGS)
@pytest.mark.parametrize("version,rc", [(V5, 0x85), (V3, 0x02)], ids=["v5", "v311"])
def test_client_id_with_control_character_refused(broker, raw, uid, bad, version, rc):
    c = raw(broker, version=version)
    c.send(R.connect(f"car{bad}{uid}", version=version))
    refused_connack(c, rc)


@pytest.mark.turnpike_only  # mosquitto 2.0.11 closes a v5 client without CONNACK 0x81
@pytest.mark.parametrize("field", ["username", "will"])
@pytest.mark.parametrize("version", [V5, V3], ids=["v5", "v311"])
def test_username_or_will_topic_with_control_character_refused(broker, raw, uid, field, version):
    c = raw(broker, version=version)
    kw = {"username": "ops\x07"} if field == "username" else {"will": {"topic": "cars/\x1b[31m/lost", "payload": b"x"}}
    c.send(R.connect(uid, version=version, **kw))
    if version == V5:
        refused_connack(c, 0x81)
    else:
        closed, pkts = c.wait_closed(5)
        assert closed and pkts == [], pkts   # 3.1.1 has no return code for a malformed CONNECT


@pytest.mark.parametrize("bad", BAD_STRINGS[:4])
@pytest.mark.parametrize("version", [V5, V3], ids=["v5", "v311"])
@pytest.mark.parametrize("packet", ["publish", "subscribe", "unsubscribe"])
def test_topics_with_control_characters_are_malformed(broker, raw, uid, bad, version, packet):
    c = raw(broker, version=version)
    assert c.connect(uid).rc == 0
    topic = f"cars/{uid}{bad}/telemetry"
    data = {"publish": R.publish(topic, b"x", qos=1, pid=1, version=version),
            "subscribe": R.subscribe(1, [("ok/a", 0), (topic, 0)], version=version),
            "unsubscribe": R.unsubscribe(2, [topic], version=version)}[packet]
    c.send(data)
    closed_with(c, version, 0x81)
    assert_pubsub_works(broker, tag=uid)


@pytest.mark.parametrize("version", [V5, V3], ids=["v5", "v311"])
def test_ordinary_non_ascii_is_accepted(broker, raw, uid, version):
    c = raw(broker, version=version)
    assert c.connect(f"Fahrzeug-ü-{uid}", username="Jürgen").rc == 0
    assert c.subscribe([(f"flotte/{uid}/straße/+", 1)]).codes == [1]
    c.publish(f"flotte/{uid}/straße/größe", "12 °C", qos=0)
    m = c.expect(R.PUBLISH)
    assert m.topic == f"flotte/{uid}/straße/größe" and m.payload == "12 °C".encode()
    assert c.is_open()


@pytest.mark.turnpike_only  # strict_utf8 is Turnpike's switch
def test_strict_utf8_off_accepts_legacy_ids(broker_factory, raw, uid):
    b = broker_factory(strict_utf8=False)
    c = raw(b, version=V5)
    assert c.connect(f"legacy\x01{uid}").rc == 0
    assert c.subscribe([(f"t/{uid}\x1b", 0)]).codes == [0]
    c.publish(f"t/{uid}\x1b", b"ok")
    assert c.expect(R.PUBLISH).payload == b"ok"
    assert c.is_open()


# ---------------------------------------------------------------------------
# 2. Packets only a server sends, decided from the fixed header
# ---------------------------------------------------------------------------
# Bodies that would not even parse: the answer must be 0x82 (protocol error), not 0x81.
SERVER_PACKETS = [
    pytest.param(R.fixed_header(R.CONNACK, 0, b"\x07\x99garbage"), id="CONNACK"),
    pytest.param(R.fixed_header(R.SUBACK, 0, b"\x00"), id="SUBACK"),
    pytest.param(R.fixed_header(R.UNSUBACK, 0, b"\xff\xff\xff"), id="UNSUBACK"),
    pytest.param(R.fixed_header(R.PINGRESP, 0, b"xx"), id="PINGRESP"),
]


@pytest.mark.turnpike_only  # mosquitto 2.0.11 parses the body first and answers 0x81 (or nothing) for bad bodies
@pytest.mark.parametrize("data", SERVER_PACKETS)
@pytest.mark.parametrize("version", [V5, V3], ids=["v5", "v311"])
def test_server_only_packets_are_protocol_errors(broker, raw, uid, data, version):
    c = raw(broker, version=version)
    assert c.connect(uid).rc == 0
    c.send(data)
    closed_with(c, version, 0x82)


@pytest.mark.turnpike_only  # mosquitto 2.0.11 ignores a PINGRESP from a client
@pytest.mark.parametrize("version", [V5, V3], ids=["v5", "v311"])
def test_well_formed_pingresp_from_client_is_refused(broker, raw, uid, version):
    c = raw(broker, version=version)
    assert c.connect(uid).rc == 0
    c.send(b"\xd0\x00")
    closed_with(c, version, 0x82)


@pytest.mark.turnpike_only  # mosquitto 2.0.11 parses the AUTH body first
def test_auth_without_authentication_method_is_protocol_error(broker, raw, uid):
    c = raw(broker, version=V5)
    assert c.connect(uid).rc == 0
    c.send(R.fixed_header(R.AUTH, 0, b"\x18\x05junk"))
    closed_with(c, V5, 0x82)


# ---------------------------------------------------------------------------
# 3. Acknowledgements of the wrong kind
# ---------------------------------------------------------------------------
def delivered(broker, raw, uid, version, qos):
    """A subscriber that has just received one PUBLISH at `qos`."""
    sub = raw(broker, version=version)
    assert sub.connect(uid + "-sub").rc == 0
    assert sub.subscribe([(f"w/{uid}", qos)]).codes == [qos]
    pub = raw(broker)
    assert pub.connect(uid + "-pub").rc == 0
    pub.publish(f"w/{uid}", b"m", qos=qos)
    m = sub.expect(R.PUBLISH)
    assert m.qos == qos
    return sub, m


@pytest.mark.turnpike_only  # mosquitto 2.0.11 ignores wrong acknowledgements; the message stays inflight
@pytest.mark.parametrize("version", [V5, V3], ids=["v5", "v311"])
@pytest.mark.parametrize("qos,wrong", [(1, "pubrec"), (1, "pubcomp"), (2, "puback"), (2, "pubcomp")])
def test_wrong_acknowledgement_is_protocol_error(broker, raw, uid, version, qos, wrong):
    sub, m = delivered(broker, raw, uid, version, qos)
    sub.send(getattr(R, wrong)(m.pid, version))
    closed_with(sub, version, 0x82)
    assert_pubsub_works(broker, tag=uid)


@pytest.mark.parametrize("version", [V5, V3], ids=["v5", "v311"])
@pytest.mark.parametrize("qos", [1, 2])
def test_right_acknowledgement_keeps_connection(broker, raw, uid, version, qos):
    sub, m = delivered(broker, raw, uid, version, qos)
    sub.ack(m)
    assert sub.is_open()


@pytest.mark.turnpike_only  # mosquitto 2.0.11 answers every PUBREL with PUBCOMP
def test_v311_unexpected_pubrel_closes(broker, raw, uid):
    c = raw(broker, version=V3)
    assert c.connect(uid).rc == 0
    c.send(R.pubrel(4242))
    closed_with(c, V3, None)


def test_v311_pubrel_resent_after_lost_pubcomp_is_completed(broker, raw, uid):
    """A PUBREL the broker already completed, resent on a new connection because the PUBCOMP
    was lost with the old one [MQTT-4.4.0-1], gets its PUBCOMP again."""
    c = raw(broker, version=V3)
    assert c.connect(uid, clean=False).rc == 0
    c.send(R.publish(f"r/{uid}", b"x", qos=2, pid=7))
    assert c.expect(R.PUBREC).pid == 7
    c.send(R.pubrel(7))
    assert c.expect(R.PUBCOMP).pid == 7
    c.close()                                   # as if that PUBCOMP never arrived
    again = raw(broker, version=V3)
    assert again.connect(uid, clean=False).session_present
    again.send(R.pubrel(7))
    assert again.expect(R.PUBCOMP).pid == 7
    assert again.is_open()


@pytest.mark.turnpike_only  # mosquitto 2.0.11 answers PUBCOMP 0x00
def test_v5_unknown_pubrel_gets_packet_identifier_not_found(broker, raw, uid):
    c = raw(broker, version=V5)
    assert c.connect(uid).rc == 0
    c.send(R.pubrel(4242, V5))
    p = c.expect(R.PUBCOMP)
    assert p.pid == 4242 and p.rc == 0x92
    assert c.is_open()


# ---------------------------------------------------------------------------
# 4. Receive Maximum, at the default value
# ---------------------------------------------------------------------------
@pytest.mark.turnpike_only  # mosquitto 2.0.11 offers 20 and accepts more (it does not enforce it)
def test_receive_maximum_default_is_enforced(broker, raw, uid):
    c = raw(broker, version=V5)
    ack = c.connect(uid)
    assert ack.rc == 0
    limit = ack.props.get("ReceiveMaximum")
    assert limit == 128, ack.props
    for pid in range(1, limit + 1):
        c.send(R.publish(f"rm/{uid}", b"x", qos=2, pid=pid, version=V5))
    for pid in range(1, limit + 1):
        assert c.expect(R.PUBREC).pid == pid
    assert c.is_open()
    c.send(R.publish(f"rm/{uid}", b"x", qos=2, pid=limit + 1, version=V5))
    closed_with(c, V5, 0x93)


@pytest.mark.turnpike_only
def test_receive_maximum_frees_slots_on_pubrel(broker_factory, raw, uid):
    b = broker_factory(receive_maximum=3)
    c = raw(b, version=V5)
    assert c.connect(uid).props.get("ReceiveMaximum") == 3
    for round_ in range(4):                        # 12 messages through a window of 3
        for pid in (1, 2, 3):
            c.send(R.publish(f"rm/{uid}", b"x", qos=2, pid=pid, version=V5))
        for pid in (1, 2, 3):
            assert c.expect(R.PUBREC).pid == pid
        for pid in (1, 2, 3):
            c.send(R.pubrel(pid, V5))
            assert c.expect(R.PUBCOMP).pid == pid
    assert c.is_open()
