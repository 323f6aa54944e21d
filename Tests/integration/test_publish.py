"""PUBLISH flows at QoS 0/1/2 in both directions, inflight window,
redelivery, exactly-once, QoS downgrade and ordering."""

import subprocess

import pytest

import rawmqtt as R
from conftest import MOSQUITTO_PUB, V5, V311


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_raw_publish_flows_both_directions(broker, raw, uid, version, qos):
    topic = f"{uid}/flow"
    sub = raw(broker, version=version)
    assert sub.connect(uid + "-s").rc == 0
    assert sub.subscribe([(topic, 2)]).codes == [2]
    pub = raw(broker, version=version)
    assert pub.connect(uid + "-p").rc == 0

    # client -> broker
    pid = 4242 if qos else None
    pub.send(R.publish(topic, b"payload", qos=qos, pid=pid, version=version))
    if qos == 1:
        ack = pub.expect(R.PUBACK)
        assert ack.pid == pid and ack.rc == 0
    elif qos == 2:
        rec = pub.expect(R.PUBREC)
        assert rec.pid == pid and rec.rc == 0
        pub.send(R.pubrel(pid, version))
        comp = pub.expect(R.PUBCOMP)
        assert comp.pid == pid and comp.rc == 0

    # broker -> client
    p = sub.expect(R.PUBLISH)
    assert (p.topic, p.payload, p.qos, p.dup, p.retain) == (topic, b"payload", qos, False, False)
    if qos == 0:
        assert p.pid is None
    else:
        assert p.pid and 1 <= p.pid <= 65535
    if qos == 1:
        sub.send(R.puback(p.pid, version))
    elif qos == 2:
        sub.send(R.pubrec(p.pid, version))
        rel = sub.expect(R.PUBREL)
        assert rel.pid == p.pid and rel.flags == 0x2
        sub.send(R.pubcomp(p.pid, version))
    # nothing else (no redelivery, no duplicate)
    assert not [x for x in sub.collect(0.4) if x.type != R.PINGRESP]
    assert sub.is_open() and pub.is_open()


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_cli_pub_sub_roundtrip(broker, cli, uid, version, qos):
    topic = f"{uid}/cli"
    s = cli.sub(broker, topic, qos=qos, version=version, count=3)
    for i in range(3):
        cli.pub(broker, topic, f"msg-{i}", qos=qos, version=version)
    assert s.wait_exit(10) == 0
    msgs = s.messages()
    assert [m["payload"] for m in msgs] == ["msg-0", "msg-1", "msg-2"]
    assert all(m["qos"] == qos and not m["retain"] for m in msgs)


@pytest.mark.parametrize("version", [4, 5])
def test_paho_qos_levels(broker, clients, uid, version):
    topic = f"{uid}/paho"
    sub = clients(broker, uid + "-s", version=version)
    assert sub.subscribe(topic, 2) == [2]
    pub = clients(broker, uid + "-p", version=version)
    for q in (0, 1, 2):
        pub.publish(topic, f"q{q}".encode(), qos=q)
    msgs = sub.collect(3)
    assert [(m.payload, m.qos) for m in msgs] == [(b"q0", 0), (b"q1", 1), (b"q2", 2)]


def test_inflight_window_v311(broker_factory, raw, clients, uid):
    b = broker_factory(max_inflight=3)
    topic = f"{uid}/win"
    sub = raw(b)
    assert sub.connect(uid).rc == 0
    assert sub.subscribe([(topic, 1)]).codes == [1]
    pub = clients(b, uid + "-p", version=V311)
    for i in range(8):
        pub.publish(topic, f"{i}".encode(), qos=1)
    first = [p for p in sub.collect(1.0) if p.type == R.PUBLISH]
    assert len(first) == 3, f"inflight window 3 exceeded/underused: {first}"
    got = list(first)
    for p in first:
        sub.send(R.puback(p.pid))
    while len(got) < 8:
        p = sub.expect(R.PUBLISH, 3)
        got.append(p)
        sub.send(R.puback(p.pid))
    assert [p.payload for p in got] == [f"{i}".encode() for i in range(8)]
    assert len({p.pid for p in got[:3]}) == 3, "inflight packet ids must be distinct"


@pytest.mark.parametrize("version", [4, 5])
def test_qos1_redelivered_with_dup_on_resume(broker, raw, clients, uid, version):
    topic = f"{uid}/redeliver"
    props = {"SessionExpiryInterval": 60} if version == 5 else None
    sub = raw(broker, version=version)
    assert sub.connect(uid, clean=False, properties=props).rc == 0
    assert sub.subscribe([(topic, 1)]).codes == [1]
    pub = clients(broker, uid + "-p", version=V5)
    pub.publish(topic, b"unacked", qos=1)
    p = sub.expect(R.PUBLISH)
    assert p.payload == b"unacked" and p.qos == 1 and not p.dup
    sub.close()  # no PUBACK, no DISCONNECT

    sub = raw(broker, version=version)
    ack = sub.connect(uid, clean=False, properties=props)
    assert ack.rc == 0 and ack.session_present
    again = sub.expect(R.PUBLISH)
    assert again.payload == b"unacked" and again.qos == 1
    assert again.dup, "redelivered QoS 1 PUBLISH must have DUP=1"
    assert again.pid == p.pid, "redelivery must reuse the packet identifier"
    sub.send(R.puback(again.pid, version))
    assert sub.is_open()
    sub.disconnect()

    # acknowledged now: not delivered a third time
    sub = raw(broker, version=version)
    assert sub.connect(uid, clean=False, properties=props).session_present
    assert not [x for x in sub.collect(0.5) if x.type == R.PUBLISH]
    sub.disconnect()
    raw(broker, version=version).connect(uid, clean=True)


def test_qos2_redelivery_publish_then_pubrel(broker, raw, clients, uid):
    topic = f"{uid}/q2"
    sub = raw(broker)
    assert sub.connect(uid, clean=False).rc == 0
    assert sub.subscribe([(topic, 2)]).codes == [2]
    pub = clients(broker, uid + "-p", version=V311)
    pub.publish(topic, b"exactly-once", qos=2)
    p = sub.expect(R.PUBLISH)
    assert p.qos == 2 and not p.dup
    sub.close()  # nothing acknowledged

    # 1) PUBLISH is resent with DUP=1
    sub = raw(broker)
    assert sub.connect(uid, clean=False).session_present
    p2 = sub.expect(R.PUBLISH)
    assert p2.payload == b"exactly-once" and p2.dup and p2.pid == p.pid
    sub.send(R.pubrec(p2.pid))
    rel = sub.expect(R.PUBREL)
    assert rel.pid == p2.pid
    sub.close()  # PUBREL not completed

    # 2) after PUBREC the broker resends PUBREL, not the PUBLISH
    sub = raw(broker)
    assert sub.connect(uid, clean=False).session_present
    rel2 = sub.expect(R.PUBREL)
    assert rel2.pid == p.pid
    sub.send(R.pubcomp(rel2.pid))
    assert not [x for x in sub.collect(0.5) if x.type in (R.PUBLISH, R.PUBREL)]
    sub.disconnect()
    raw(broker).connect(uid, clean=True)


@pytest.mark.parametrize("version", [4, 5])
def test_exactly_once_inbound_qos2_duplicate_before_pubrel(broker, raw, clients, uid, version):
    topic = f"{uid}/eo"
    sub = clients(broker, uid + "-s", version=V5)
    assert sub.subscribe(topic, 2) == [2]
    c = raw(broker, version=version)
    assert c.connect(uid).rc == 0

    c.send(R.publish(topic, b"once", qos=2, pid=7, version=version))
    rec = c.expect(R.PUBREC)
    assert rec.pid == 7 and rec.rc == 0
    # retransmission with DUP=1 before PUBREL
    c.send(R.publish(topic, b"once", qos=2, pid=7, dup=True, version=version))
    rec2 = c.expect(R.PUBREC)
    assert rec2.pid == 7 and rec2.rc == 0, rec2
    assert c.is_open(), "a DUP retransmission must not close the connection"

    c.send(R.pubrel(7, version))
    comp = c.expect(R.PUBCOMP)
    assert comp.pid == 7 and comp.rc == 0

    msgs = sub.drain(1.0)
    assert [m.payload for m in msgs] == [b"once"], f"exactly one copy expected, got {msgs}"

    # the packet id is free again: a new message with id 7 is a new message
    c.send(R.publish(topic, b"second", qos=2, pid=7, version=version))
    assert c.expect(R.PUBREC).pid == 7
    c.send(R.pubrel(7, version))
    assert c.expect(R.PUBCOMP).pid == 7
    assert [m.payload for m in sub.collect(1)] == [b"second"]


def test_qos1_duplicate_publish_is_acked(broker, raw, clients, uid):
    """QoS 1 retransmission with DUP=1 is acknowledged again (at-least-once:
    subscribers may see it twice, which we do not assert either way)."""
    topic = f"{uid}/dup1"
    sub = clients(broker, uid + "-s", version=V5)
    sub.subscribe(topic, 1)
    c = raw(broker)
    assert c.connect(uid).rc == 0
    c.send(R.publish(topic, b"a", qos=1, pid=3))
    assert c.expect(R.PUBACK).pid == 3
    c.send(R.publish(topic, b"a", qos=1, pid=3, dup=True))
    assert c.expect(R.PUBACK).pid == 3
    got = sub.drain(0.8)
    assert 1 <= len(got) <= 2 and all(m.payload == b"a" for m in got)


@pytest.mark.parametrize("sub_qos,pub_qos,expected", [(0, 2, 0), (1, 2, 1), (2, 1, 1), (0, 1, 0), (2, 0, 0), (2, 2, 2)])
def test_qos_downgraded_to_granted(broker, clients, uid, sub_qos, pub_qos, expected):
    topic = f"{uid}/dg"
    sub = clients(broker, uid + "-s", version=V5)
    assert sub.subscribe(topic, sub_qos) == [sub_qos]
    pub = clients(broker, uid + "-p", version=V311)
    pub.publish(topic, b"m", qos=pub_qos)
    m = sub.get()
    assert m.qos == expected


def test_qos_downgrade_raw_v311(broker, raw, uid):
    topic = f"{uid}/dgraw"
    sub = raw(broker)
    assert sub.connect(uid + "s").rc == 0
    assert sub.subscribe([(topic, 0)]).codes == [0]
    pub = raw(broker)
    assert pub.connect(uid + "p").rc == 0
    pub.publish(topic, b"hi", qos=2)
    p = sub.expect(R.PUBLISH)
    assert p.qos == 0 and p.pid is None and p.payload == b"hi"


@pytest.mark.parametrize("version,qos,n", [(4, 1, 200), (5, 1, 200), (5, 2, 100)])
def test_order_kept_per_topic(broker, clients, uid, version, qos, n):
    topic = f"{uid}/order"
    sub = clients(broker, uid + "-s", version=version)
    assert sub.subscribe(topic, qos) == [qos]
    pub = clients(broker, uid + "-p", version=version)
    infos = [pub.publish(topic, str(i).encode(), qos=qos, wait=False) for i in range(n)]
    for info in infos:
        info.wait_for_publish(10)
    msgs = sub.collect(n, timeout=15)
    assert [int(m.payload) for m in msgs] == list(range(n))
    assert sub.drain(0.3) == []


def test_order_with_cli_publisher(broker, cli, clients, uid):
    topic = f"{uid}/ordercli"
    sub = clients(broker, uid + "-s", version=V311)
    sub.subscribe(topic, 1)
    lines = "\n".join(str(i) for i in range(50)) + "\n"
    r = subprocess.run([MOSQUITTO_PUB, "-h", broker.host, "-p", str(broker.port), "-t", topic,
                        "-q", "1", "-l"], input=lines.encode(), capture_output=True, timeout=10)
    assert r.returncode == 0, r.stderr
    msgs = sub.collect(50, timeout=10)
    assert [int(m.payload) for m in msgs] == list(range(50))


def test_large_payload(broker, clients, uid):
    topic = f"{uid}/large"
    sub = clients(broker, uid + "-s", version=V5)
    sub.subscribe(topic, 1)
    pub = clients(broker, uid + "-p", version=V311)
    payload = bytes(range(256)) * 1024  # 256 KiB
    pub.publish(topic, payload, qos=1)
    m = sub.get(10)
    assert m.payload == payload


def test_empty_payload_delivered(broker, clients, uid):
    topic = f"{uid}/empty"
    sub = clients(broker, uid + "-s", version=V311)
    sub.subscribe(topic, 1)
    pub = clients(broker, uid + "-p", version=V5)
    pub.publish(topic, b"", qos=1)
    assert sub.get().payload == b""


def test_publisher_not_subscribed_receives_nothing(broker, clients, uid):
    pub = clients(broker, uid, version=V5)
    pub.publish(f"{uid}/x", b"m", qos=1)
    pub.expect_none(0.3)
