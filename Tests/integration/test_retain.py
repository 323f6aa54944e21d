"""Retained messages: store, replace, clear, retain flag handling, v5
retain-as-published and retain handling 0/1/2."""

import time

import pytest

import rawmqtt as R
from conftest import V5, V311


@pytest.fixture
def retained(broker, clients, uid):
    """Publish helper that clears every retained topic it set at teardown."""
    pub = clients(broker, uid + "-rp", version=V5)
    topics = set()

    def put(topic, payload, qos=1, **props):
        topics.add(topic)
        pub.publish(topic, payload, qos=qos, retain=True, **props)

    yield put
    for t in topics:
        pub.publish(t, b"", qos=1, retain=True)


@pytest.mark.parametrize("version", [4, 5])
def test_retained_delivered_on_subscribe_with_retain_flag(broker, clients, retained, uid, version):
    topic = f"{uid}/r"
    retained(topic, b"state-1")
    sub = clients(broker, uid + "-s", version=version)
    sub.subscribe(topic, 1)
    m = sub.get()
    assert m.payload == b"state-1" and m.retain is True and m.qos == 1


def test_retained_replaced(broker, clients, retained, uid):
    topic = f"{uid}/r"
    retained(topic, b"old")
    retained(topic, b"new")
    sub = clients(broker, uid + "-s", version=V311)
    sub.subscribe(topic, 1)
    msgs = sub.drain(0.8)
    assert [m.payload for m in msgs] == [b"new"]


def test_retained_cleared_by_empty_payload(broker, clients, retained, uid):
    topic = f"{uid}/r"
    retained(topic, b"something")
    retained(topic, b"")
    sub = clients(broker, uid + "-s", version=V5)
    sub.subscribe(topic, 1)
    sub.expect_none(0.8)


def test_retained_delivered_for_wildcard_subscription(broker, clients, retained, uid):
    for i in range(3):
        retained(f"{uid}/dev/{i}/state", f"s{i}".encode())
    retained(f"{uid}/other", b"x")
    sub = clients(broker, uid + "-s", version=V5)
    sub.subscribe(f"{uid}/dev/+/state", 1)
    msgs = sub.collect(3)
    assert sorted(m.payload for m in msgs) == [b"s0", b"s1", b"s2"]
    assert all(m.retain for m in msgs)
    sub.expect_none(0.4)


@pytest.mark.parametrize("sub_qos,pub_qos,expected", [(0, 2, 0), (2, 1, 1), (1, 2, 1)])
def test_retained_delivered_at_min_qos(broker, clients, retained, uid, sub_qos, pub_qos, expected):
    topic = f"{uid}/q"
    retained(topic, b"q", qos=pub_qos)
    sub = clients(broker, uid + "-s", version=V5)
    sub.subscribe(topic, sub_qos)
    assert sub.get().qos == expected


@pytest.mark.parametrize("version", [4, 5])
def test_retain_flag_cleared_on_normal_forwarding(broker, clients, retained, uid, version):
    topic = f"{uid}/fwd"
    sub = clients(broker, uid + "-s", version=version)
    sub.subscribe(topic, 1)
    retained(topic, b"live")
    m = sub.get()
    assert m.payload == b"live" and m.retain is False


def test_retain_as_published_keeps_flag(broker, clients, retained, uid):
    topic = f"{uid}/rap"
    sub = clients(broker, uid + "-s", version=V5)
    sub.subscribe(topic, 1, rap=True)
    retained(topic, b"kept")
    m = sub.get()
    assert m.payload == b"kept" and m.retain is True
    # a non-retained publish stays non-retained
    sub2 = clients(broker, uid + "-p2", version=V5)
    sub2.publish(topic, b"plain", qos=1)
    m = sub.get()
    assert m.payload == b"plain" and m.retain is False


def test_retained_flag_raw_v311(broker, raw, uid):
    topic = f"{uid}/raw"
    pub = raw(broker)
    assert pub.connect(uid + "p").rc == 0
    pub.publish(topic, b"R", qos=1, retain=True)
    live = raw(broker)
    assert live.connect(uid + "live").rc == 0
    live.subscribe([(topic, 1)])
    late_check = raw(broker)
    assert late_check.connect(uid + "late").rc == 0
    late_check.subscribe([(topic, 1)])
    p = late_check.expect(R.PUBLISH)
    assert p.retain and p.payload == b"R"
    pub.publish(topic, b"R2", qos=1, retain=True)
    p = live.expect(R.PUBLISH)
    assert p.payload == b"R" and p.retain   # retained copy sent at subscribe
    live.send(R.puback(p.pid))
    p = live.expect(R.PUBLISH)
    assert p.payload == b"R2" and not p.retain   # normal forwarding
    pub.publish(topic, b"", qos=1, retain=True)


def test_retain_handling_0_always(broker, clients, retained, uid):
    topic = f"{uid}/rh0"
    retained(topic, b"v")
    sub = clients(broker, uid + "-s", version=V5)
    sub.subscribe(topic, 1, rh=0)
    assert sub.get().retain
    sub.subscribe(topic, 1, rh=0)  # existing subscription: still sent
    m = sub.get()
    assert m.payload == b"v" and m.retain


def test_retain_handling_1_only_new_subscription(broker, clients, retained, uid):
    topic = f"{uid}/rh1"
    retained(topic, b"v")
    sub = clients(broker, uid + "-s", version=V5)
    sub.subscribe(topic, 1, rh=1)
    assert sub.get().payload == b"v"
    sub.subscribe(topic, 1, rh=1)  # same filter again: not new
    sub.expect_none(0.6)
    sub.unsubscribe(topic)
    sub.subscribe(topic, 1, rh=1)  # new again after unsubscribe
    assert sub.get().payload == b"v"


def test_retain_handling_2_never(broker, clients, retained, uid):
    topic = f"{uid}/rh2"
    retained(topic, b"v")
    sub = clients(broker, uid + "-s", version=V5)
    sub.subscribe(topic, 1, rh=2)
    sub.expect_none(0.6)
    # but live messages still flow
    retained(topic, b"w")
    assert sub.get().payload == b"w"


def test_retain_handling_raw_options(broker, raw, retained, uid):
    topic = f"{uid}/rhraw"
    retained(topic, b"v")
    c = raw(broker, version=5)
    assert c.connect(uid).rc == 0
    c.subscribe([(topic, R.sub_options(qos=0, rh=2))])
    assert not [p for p in c.collect(0.5) if p.type == R.PUBLISH]
    c.subscribe([(topic, R.sub_options(qos=0, rh=0, rap=True))])
    p = c.expect(R.PUBLISH)
    assert p.retain and p.payload == b"v"


def test_retained_properties_kept(broker, clients, retained, uid):
    topic = f"{uid}/props"
    retained(topic, b"{}", ContentType="application/json", UserProperty=[("k", "v")])
    sub = clients(broker, uid + "-s", version=V5)
    sub.subscribe(topic, 1)
    m = sub.get()
    assert m.prop("ContentType") == "application/json"
    assert m.prop("UserProperty") == [("k", "v")]


def test_retained_with_cli(broker, cli, uid):
    topic = f"{uid}/cli"
    cli.pub(broker, topic, "retained-by-cli", qos=1, retain=True)
    s = cli.sub(broker, topic, count=1, version=5, qos=1)
    assert s.wait_exit(5) == 0
    m = s.messages()[0]
    assert m["payload"] == "retained-by-cli" and m["retain"] and m["qos"] == 1
    cli.pub(broker, topic, None, retain=True, version=5)  # -n -r clears
    s = cli.sub(broker, topic, version=4, wait_secs=1)
    s.wait_exit(5)
    assert s.messages() == []


def test_retained_via_v311_cli_delivered_to_v5(broker, cli, clients, uid):
    topic = f"{uid}/mix"
    cli.pub(broker, topic, "from311", qos=2, retain=True, version=4)
    sub = clients(broker, uid + "-s", version=V5)
    sub.subscribe(topic, 2)
    m = sub.get()
    assert (m.payload, m.retain, m.qos) == (b"from311", True, 2)
    cli.pub(broker, topic, None, retain=True)


def test_retained_message_expires(broker, clients, uid):
    topic = f"{uid}/exp"
    pub = clients(broker, uid + "-p", version=V5)
    pub.publish(topic, b"short-lived", qos=1, retain=True, MessageExpiryInterval=1)
    pub.publish(f"{topic}/2", b"long-lived", qos=1, retain=True, MessageExpiryInterval=60)
    try:
        time.sleep(2.2)
        sub = clients(broker, uid + "-s", version=V5)
        sub.subscribe(f"{topic}/#", 1)
        msgs = sub.drain(0.8)
        assert [m.payload for m in msgs] == [b"long-lived"], msgs
        assert 55 <= msgs[0].prop("MessageExpiryInterval") <= 60
    finally:
        pub.publish(topic, b"", qos=1, retain=True)
        pub.publish(f"{topic}/2", b"", qos=1, retain=True)
