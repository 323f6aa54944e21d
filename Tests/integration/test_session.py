"""Persistent sessions: subscriptions and queued messages survive a
reconnect; queue bound; session and message expiry."""

import time

import pytest

import rawmqtt as R
from conftest import IS_TURNPIKE, V5, V311


def _persistent(clients, broker, cid, version, **kw):
    if version == V5:
        return clients(broker, cid, version=V5, clean=False, session_expiry=kw.pop("expiry", 60), **kw)
    return clients(broker, cid, version=V311, clean=False, **kw)


def _end_session(clients, broker, cid, version):
    c = clients(broker, cid, version=version, clean=True)
    c.disconnect()


@pytest.mark.parametrize("version", [V311, V5])
def test_subscriptions_survive_reconnect(broker, clients, uid, version):
    topic = f"{uid}/t"
    c = _persistent(clients, broker, uid, version)
    assert c.session_present is False
    c.subscribe(topic, 1)
    c.disconnect()
    c = _persistent(clients, broker, uid, version)
    assert c.session_present is True
    pub = clients(broker, uid + "-p", version=V5)
    pub.publish(topic, b"still-subscribed", qos=1)
    assert c.get().payload == b"still-subscribed"
    c.disconnect()
    _end_session(clients, broker, uid, version)


@pytest.mark.parametrize("version", [V311, V5])
def test_qos1_qos2_queued_while_offline(broker, clients, uid, version):
    topic = f"{uid}/q"
    c = _persistent(clients, broker, uid, version)
    c.subscribe(topic, 2)
    c.disconnect()
    pub = clients(broker, uid + "-p", version=V5)
    sent = []
    for i in range(6):
        q = 1 + i % 2
        pub.publish(topic, f"{i}".encode(), qos=q)
        sent.append((f"{i}".encode(), q))
    c = _persistent(clients, broker, uid, version)
    assert c.session_present
    msgs = c.collect(6)
    got = [(m.payload, m.qos) for m in msgs]
    # ordering is only guaranteed per topic *and QoS* (MQTT 4.6)
    for q in (1, 2):
        assert [x for x in got if x[1] == q] == [x for x in sent if x[1] == q]
    assert sorted(got) == sorted(sent)
    c.expect_none(0.3)
    c.disconnect()
    _end_session(clients, broker, uid, version)


def test_qos0_offline_not_asserted_but_qos1_delivered(broker, clients, uid):
    """QoS 0 messages may or may not be queued; QoS 1 ones must be."""
    topic = f"{uid}/q0"
    c = _persistent(clients, broker, uid, V311)
    c.subscribe(topic, 1)
    c.disconnect()
    pub = clients(broker, uid + "-p", version=V311)
    pub.publish(topic, b"q0", qos=0)
    pub.publish(topic, b"q1", qos=1)
    c = _persistent(clients, broker, uid, V311)
    payloads = [m.payload for m in c.drain(1.0)]
    assert b"q1" in payloads and set(payloads) <= {b"q0", b"q1"}
    assert payloads.count(b"q1") == 1


@pytest.mark.parametrize("version,extra", [(4, ["-c"]), (5, ["-c", "-x", "60"])], ids=["v311", "v5"])
def test_offline_queue_with_cli(broker, cli, uid, version, extra):
    topic = f"{uid}/cli"
    s = cli.sub(broker, topic, qos=1, version=version, extra=extra + ["-i", uid, "-E"])
    assert s.wait_exit(5) == 0
    for i in range(3):
        cli.pub(broker, topic, f"offline-{i}", qos=1 + i % 2, version=5)
    s = cli.sub(broker, topic, qos=1, version=version, count=3, extra=extra + ["-i", uid], wait_subscribed=False)
    assert s.wait_exit(10) == 0
    assert [m["payload"] for m in s.messages()] == ["offline-0", "offline-1", "offline-2"]
    cli.sub(broker, topic, version=version, extra=["-i", uid, "-E"]).wait_exit(5)  # clean session: drop it


@pytest.mark.parametrize("version", [V311, V5])
def test_max_queued_messages_bound(broker_factory, clients, uid, version):
    b = broker_factory(max_queued_messages=5, max_inflight=2)
    topic = f"{uid}/bound"
    c = _persistent(clients, b, uid, version)
    c.subscribe(topic, 1)
    c.disconnect()
    pub = clients(b, uid + "-p", version=V311)
    for i in range(10):
        pub.publish(topic, f"{i}".encode(), qos=1)
    c = _persistent(clients, b, uid, version)
    got = [int(m.payload) for m in c.drain(1.5)]
    assert got == [0, 1, 2, 3, 4], f"with max_queued_messages=5 exactly the first 5 are kept: {got}"
    if IS_TURNPIKE:  # log wording is Turnpike's own
        log = b.log_text().lower()
        assert "dropped" in log, "queue overflow must be logged"


def test_session_expiry_drops_session_and_queue(broker, clients, raw, uid):
    topic = f"{uid}/exp"
    c = raw(broker, version=5)
    assert c.connect(uid, properties={"SessionExpiryInterval": 1}).rc == 0
    c.subscribe([(topic, 1)])
    c.disconnect()
    pub = clients(broker, uid + "-p", version=V5)
    pub.publish(topic, b"lost", qos=1)
    time.sleep(2.5)
    c = raw(broker, version=5)
    ack = c.connect(uid, clean=False, properties={"SessionExpiryInterval": 1})
    assert ack.rc == 0 and not ack.session_present
    assert not [p for p in c.collect(0.6) if p.type == R.PUBLISH]
    # and the subscription is gone too
    pub.publish(topic, b"after", qos=1)
    assert not [p for p in c.collect(0.5) if p.type == R.PUBLISH]


def test_session_expiry_set_to_zero_on_disconnect(broker, clients, raw, uid):
    c = raw(broker, version=5)
    assert c.connect(uid, properties={"SessionExpiryInterval": 60}).rc == 0
    c.subscribe([(f"{uid}/t", 1)])
    c.disconnect(properties={"SessionExpiryInterval": 0})
    c = raw(broker, version=5)
    assert not c.connect(uid, clean=False).session_present


def test_session_expiry_extended_on_disconnect(broker, raw, uid):
    c = raw(broker, version=5)
    assert c.connect(uid, properties={"SessionExpiryInterval": 1}).rc == 0
    c.disconnect(properties={"SessionExpiryInterval": 60})
    time.sleep(2.2)
    c = raw(broker, version=5)
    assert c.connect(uid, clean=False).session_present
    c.disconnect()


def test_clean_start_discards_queued_messages(broker, clients, uid):
    topic = f"{uid}/cs"
    c = _persistent(clients, broker, uid, V5)
    c.subscribe(topic, 1)
    c.disconnect()
    pub = clients(broker, uid + "-p", version=V5)
    pub.publish(topic, b"queued", qos=1)
    c = clients(broker, uid, version=V5, clean=True, session_expiry=60)
    assert c.session_present is False
    c.expect_none(0.6)
    c.disconnect(session_expiry=0)


def test_message_expiry_while_queued(broker, clients, uid):
    topic = f"{uid}/mei"
    c = _persistent(clients, broker, uid, V5)
    c.subscribe(topic, 1)
    c.disconnect()
    pub = clients(broker, uid + "-p", version=V5)
    pub.publish(topic, b"short", qos=1, MessageExpiryInterval=1)
    pub.publish(topic, b"long", qos=1, MessageExpiryInterval=60)
    pub.publish(topic, b"forever", qos=1)
    time.sleep(2.5)
    c = _persistent(clients, broker, uid, V5)
    msgs = c.drain(1.0)
    assert [m.payload for m in msgs] == [b"long", b"forever"]
    mei = msgs[0].prop("MessageExpiryInterval")
    assert mei is not None and 50 <= mei <= 60, f"remaining expiry must be forwarded: {mei}"
    assert msgs[1].prop("MessageExpiryInterval") is None
    c.disconnect(session_expiry=0)


def test_message_expiry_forwarded_online(broker, clients, uid):
    topic = f"{uid}/mei-online"
    sub = clients(broker, uid + "-s", version=V5)
    sub.subscribe(topic, 1)
    pub = clients(broker, uid + "-p", version=V5)
    pub.publish(topic, b"x", qos=1, MessageExpiryInterval=30)
    mei = sub.get().prop("MessageExpiryInterval")
    assert mei is not None and 28 <= mei <= 30


def test_queued_messages_for_raw_persistent_v311(broker, raw, uid):
    topic = f"{uid}/raw"
    c = raw(broker)
    assert c.connect(uid, clean=False).rc == 0
    c.subscribe([(topic, 2)])
    c.disconnect()
    p = raw(broker)
    p.connect(uid + "p")
    p.publish(topic, b"a", qos=1)
    p.publish(topic, b"b", qos=2)
    c = raw(broker)
    ack = c.connect(uid, clean=False)
    assert ack.session_present
    m1 = c.expect(R.PUBLISH)
    assert (m1.payload, m1.qos) == (b"a", 1)
    c.ack(m1)
    m2 = c.expect(R.PUBLISH)
    assert (m2.payload, m2.qos) == (b"b", 2)
    c.ack(m2)
    c.disconnect()
    raw(broker).connect(uid, clean=True)
