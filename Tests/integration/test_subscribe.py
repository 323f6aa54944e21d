"""SUBSCRIBE / UNSUBSCRIBE: wildcards, $-topics, v5 subscription options,
subscription identifiers, overlapping subscriptions, invalid filters."""

import time

import pytest

import rawmqtt as R
from conftest import V5, V311, assert_pubsub_works


def _topics_received(sub, timeout=0.8):
    return sorted(m.topic for m in sub.drain(timeout))


WILDCARD_CASES = [
    # filter suffix, topics that match (suffixes), topics that do not
    ("/+", ["/a", "/b", "/"], ["", "/a/b", "/a/"]),
    ("/#", ["", "/a", "/a/b", "/"], ["x"]),
    ("/+/c", ["/a/c", "/b/c", "//c"], ["/a/d", "/a/c/d", "/c"]),
    ("/a/+/+", ["/a/b/c", "/a//x"], ["/a/b", "/a/b/c/d"]),
    ("/+/#", ["/a", "/a/b/c", "/"], [""]),
    ("/a/b", ["/a/b"], ["/a/b/c", "/a", "/A/b"]),
]


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("case", WILDCARD_CASES, ids=[c[0] for c in WILDCARD_CASES])
def test_wildcard_matching(broker, clients, uid, version, case):
    suffix, yes, no = case
    base = uid
    sub = clients(broker, uid + "-s", version=version)
    assert sub.subscribe(base + suffix, 1) == [1]
    pub = clients(broker, uid + "-p", version=V5)
    for t in yes + no:
        pub.publish(base + t, b"x", qos=1)
    got = _topics_received(sub)
    assert got == sorted(base + t for t in yes)


def test_single_level_wildcard_prefix(broker, clients, uid):
    """'+' as the first level: '+/uid' matches 'a/uid' but not 'a/b/uid'."""
    sub = clients(broker, uid + "-s", version=V311)
    sub.subscribe(f"+/{uid}", 0)
    pub = clients(broker, uid + "-p", version=V311)
    for t in (f"a/{uid}", f"b/{uid}", f"a/b/{uid}", f"{uid}"):
        pub.publish(t, b"x", qos=1)
    assert _topics_received(sub) == sorted([f"a/{uid}", f"b/{uid}"])


def test_wildcards_with_cli(broker, cli, uid):
    s = cli.sub(broker, [f"{uid}/+/temp", f"{uid}/sensors/#"], qos=1, count=3)
    for t in ("kitchen/temp", "sensors/a/b", "kitchen/humidity", "x/y/temp", "sensors"):
        cli.pub(broker, f"{uid}/{t}", t, qos=1)
    assert s.wait_exit(10) == 0
    assert sorted(m["topic"] for m in s.messages()) == sorted(
        [f"{uid}/kitchen/temp", f"{uid}/sensors/a/b", f"{uid}/sensors"])


def test_dollar_topics_not_matched_by_leading_wildcards(broker_factory, clients, cli, uid):
    b = broker_factory(sys_interval=1)
    hash_sub = cli.sub(b, "#", version=5)
    plus_sub = clients(b, uid + "-plus", version=V5)
    plus_sub.subscribe(f"+/{uid}/x", 0)
    plus_sub2 = clients(b, uid + "-plus2", version=V311)
    plus_sub2.subscribe("+/broker/#", 0)  # would match $SYS/broker/... if $ were not special
    explicit = clients(b, uid + "-explicit", version=V5)
    explicit.subscribe(f"$foo/{uid}/#", 0)

    pub = clients(b, uid + "-p", version=V5)
    pub.publish(f"$foo/{uid}/x", b"dollar", qos=1)
    pub.publish(f"normal/{uid}/x", b"normal", qos=1)
    time.sleep(2.5)  # let at least two $SYS intervals pass

    hash_topics = [m["topic"] for m in hash_sub.messages()]
    assert f"normal/{uid}/x" in hash_topics
    assert not [t for t in hash_topics if t.startswith("$")], hash_topics
    assert [m.topic for m in plus_sub.drain(0.1)] == [f"normal/{uid}/x"]
    assert not [m.topic for m in plus_sub2.drain(0.1) if m.topic.startswith("$")]
    assert [m.topic for m in explicit.drain(0.5)] == [f"$foo/{uid}/x"]


def test_v5_no_local(broker, clients, uid):
    topic = f"{uid}/nl"
    me = clients(broker, uid, version=V5)
    assert me.subscribe(topic, 1, no_local=True) == [1]
    other = clients(broker, uid + "-o", version=V5)
    other.subscribe(topic, 1)
    me.publish(topic, b"mine", qos=1)
    assert other.get().payload == b"mine"
    me.expect_none(0.5)
    other.publish(topic, b"theirs", qos=1)
    assert me.get().payload == b"theirs"


def test_without_no_local_own_messages_delivered(broker, clients, uid):
    topic = f"{uid}/own"
    me = clients(broker, uid, version=V5)
    me.subscribe(topic, 1)
    me.publish(topic, b"echo", qos=1)
    assert me.get().payload == b"echo"


def test_v5_no_local_raw_options_byte(broker, raw, uid):
    topic = f"{uid}/nlraw"
    c = raw(broker, version=5)
    assert c.connect(uid).rc == 0
    assert c.subscribe([(topic, R.sub_options(qos=1, no_local=True))]).codes == [1]
    c.publish(topic, b"self", qos=1)
    assert not [p for p in c.collect(0.5) if p.type == R.PUBLISH]


def test_v5_subscription_identifier(broker, clients, uid):
    sub = clients(broker, uid + "-s", version=V5)
    assert sub.subscribe(f"{uid}/+", 1, sub_id=5) == [1]
    assert sub.subscribe(f"{uid}/#", 1, sub_id=7) == [1]
    pub = clients(broker, uid + "-p", version=V5)

    pub.publish(f"{uid}/a", b"both", qos=1)
    copies = sub.drain(0.8)
    assert 1 <= len(copies) <= 2, copies
    ids = set()
    for m in copies:
        ids.update(m.prop("SubscriptionIdentifier", []))
    assert ids == {5, 7}, f"identifiers of all matching subscriptions expected, got {ids}"

    pub.publish(f"{uid}/a/b", b"deep", qos=1)
    m = sub.get()
    assert m.prop("SubscriptionIdentifier") == [7]
    sub.expect_none(0.3)


def test_v5_subscription_identifier_raw(broker, raw, uid):
    c = raw(broker, version=5)
    assert c.connect(uid).rc == 0
    assert c.subscribe([(f"{uid}/t", 1)], properties={"SubscriptionIdentifier": 268435455}).codes == [1]
    c.subscribe([(f"{uid}/u", 1)])  # no identifier
    p2 = raw(broker, version=5)
    p2.connect(uid + "p")
    p2.publish(f"{uid}/t", b"1", qos=1)
    p = c.expect(R.PUBLISH)
    assert p.props.get("SubscriptionIdentifier") == [268435455]
    c.send(R.puback(p.pid, 5))
    p2.publish(f"{uid}/u", b"2", qos=1)
    p = c.expect(R.PUBLISH)
    assert "SubscriptionIdentifier" not in p.props


# mosquitto 2.0.11 (allow_duplicate_messages false) sends a v3.1.1 client a single copy at
# the QoS of the first matching subscription (here 0), violating [MQTT-3.3.5-1].
@pytest.mark.parametrize("version", [pytest.param(4, marks=pytest.mark.turnpike_only), 5])
def test_overlapping_subscriptions_max_qos(broker, clients, uid, version):
    sub = clients(broker, uid + "-s", version=version)
    assert sub.subscribe(f"{uid}/+", 0) == [0]
    assert sub.subscribe(f"{uid}/#", 2) == [2]
    pub = clients(broker, uid + "-p", version=V5)
    pub.publish(f"{uid}/a", b"ov", qos=2)
    copies = sub.drain(0.8)
    # Either one copy at the maximum QoS, or one copy per subscription.
    assert 1 <= len(copies) <= 2, copies
    assert max(m.qos for m in copies) == 2, copies
    assert all(m.payload == b"ov" for m in copies)


def test_resubscribe_replaces_subscription(broker, clients, uid):
    topic = f"{uid}/re"
    sub = clients(broker, uid + "-s", version=V311)
    assert sub.subscribe(topic, 0) == [0]
    assert sub.subscribe(topic, 2) == [2]
    pub = clients(broker, uid + "-p", version=V311)
    pub.publish(topic, b"one", qos=2)
    copies = sub.drain(0.8)
    assert len(copies) == 1 and copies[0].qos == 2, copies


@pytest.mark.parametrize("version", [4, 5])
def test_suback_grants_requested_qos(broker, raw, uid, version):
    c = raw(broker, version=version)
    assert c.connect(uid).rc == 0
    ack = c.subscribe([(f"{uid}/0", 0), (f"{uid}/1", 1), (f"{uid}/2", 2)], pid=999)
    assert ack.pid == 999
    assert ack.codes == [0, 1, 2]


INVALID_FILTERS = ["a/#/b", "a/b#", "a+/b", "#/a", ""]


@pytest.mark.parametrize("version", [4, 5])
def test_invalid_filter_refused(broker, raw, uid, version):
    """Either a failure reason code in SUBACK or a disconnect is acceptable
    (mosquitto disconnects); the broker must keep serving others."""
    c = raw(broker, version=version)
    assert c.connect(uid).rc == 0
    c.send(R.subscribe(1, [("a/#/b", 1)], version))
    try:
        p = c.recv(3)
    except R.ConnectionClosed:
        p = None
    if p is not None and p.type == R.SUBACK:
        assert p.codes[0] >= 0x80, p
    else:
        assert p is None or p.type == R.DISCONNECT, p
        assert c.wait_closed(3)[0]
    assert_pubsub_works(broker)


# mosquitto 2.0.11 treats an invalid topic filter as a malformed packet and disconnects
# (v5: DISCONNECT 0x81) instead of answering SUBACK 0x8F / 0x80.
@pytest.mark.turnpike_only
@pytest.mark.parametrize("version,code", [(4, 0x80), (5, 0x8F)])
@pytest.mark.parametrize("bad", [f for f in INVALID_FILTERS if f])
def test_invalid_filter_suback_failure_code(broker, raw, uid, version, code, bad):
    c = raw(broker, version=version)
    assert c.connect(uid).rc == 0
    ack = c.subscribe([(f"{uid}/ok", 1), (bad, 1)])
    assert ack.codes == [1, code], ack
    assert c.is_open()
    # the valid filter in the same SUBSCRIBE works
    p = raw(broker)
    p.connect(uid + "p")
    p.publish(f"{uid}/ok", b"x", qos=1)
    assert c.expect(R.PUBLISH).payload == b"x"


def test_v5_unsuback_reason_codes(broker, raw, uid):
    c = raw(broker, version=5)
    assert c.connect(uid).rc == 0
    c.subscribe([(f"{uid}/yes", 1)])
    ack = c.unsubscribe([f"{uid}/yes", f"{uid}/never"])
    assert ack.codes == [0x00, 0x11], ack


def test_v311_unsuback(broker, raw, uid):
    c = raw(broker)
    assert c.connect(uid).rc == 0
    c.subscribe([(f"{uid}/t", 1)])
    ack = c.unsubscribe([f"{uid}/t", f"{uid}/never"])
    assert ack.type == R.UNSUBACK and ack.body == ack.pid.to_bytes(2, "big")


@pytest.mark.parametrize("version", [4, 5])
def test_unsubscribe_stops_delivery(broker, clients, uid, version):
    topic = f"{uid}/u"
    sub = clients(broker, uid + "-s", version=version)
    sub.subscribe(topic, 1)
    sub.subscribe(f"{uid}/other", 1)
    pub = clients(broker, uid + "-p", version=V5)
    pub.publish(topic, b"before", qos=1)
    assert sub.get().payload == b"before"
    rc = sub.unsubscribe(topic)
    if version == 5:
        assert rc == [0]
    pub.publish(topic, b"after", qos=1)
    pub.publish(f"{uid}/other", b"still", qos=1)
    assert [m.payload for m in sub.drain(0.8)] == [b"still"]


def test_unsubscribe_with_cli(broker, cli, clients, uid):
    """mosquitto_sub -U unsubscribes after subscribing; it then gets nothing on that filter."""
    s = cli.sub(broker, [f"{uid}/a", f"{uid}/b"], version=5, extra=["-U", f"{uid}/a"], wait_secs=3)
    time.sleep(0.3)
    pub = clients(broker, uid + "-p", version=V311)
    pub.publish(f"{uid}/a", b"gone", qos=1)
    pub.publish(f"{uid}/b", b"here", qos=1)
    msgs = s.wait_messages(1, 3)
    assert [m["payload"] for m in msgs] == ["here"]


def test_many_filters_in_one_subscribe(broker, raw, uid):
    c = raw(broker, version=5)
    assert c.connect(uid).rc == 0
    filters = [(f"{uid}/{i}", i % 3) for i in range(50)]
    ack = c.subscribe(filters)
    assert ack.codes == [i % 3 for i in range(50)]


@pytest.mark.turnpike_only  # mosquitto 2.0.11 has no per-client subscription limit
@pytest.mark.parametrize("version,code", [(4, 0x80), (5, 0x97)])
def test_max_subscriptions_per_client(broker_factory, raw, uid, version, code):
    b = broker_factory(max_subscriptions_per_client=3)
    c = raw(b, version=version)
    assert c.connect(uid).rc == 0
    ack = c.subscribe([(f"{uid}/{i}", 1) for i in range(4)])
    assert ack.codes == [1, 1, 1, code], ack
    # re-subscribing an existing filter does not count as a new one
    assert c.subscribe([(f"{uid}/0", 2)]).codes == [2]
    c.unsubscribe([f"{uid}/1"])
    assert c.subscribe([(f"{uid}/9", 0)]).codes == [0]


@pytest.mark.turnpike_only  # Turnpike's documented choice (README); mosquitto sends one copy per subscription
def test_overlapping_v5_single_copy_with_all_identifiers(broker, clients, uid):
    sub = clients(broker, uid + "-s", version=V5)
    sub.subscribe(f"{uid}/+", 0, sub_id=1)
    sub.subscribe(f"{uid}/#", 2, sub_id=2)
    sub.subscribe(f"{uid}/a", 1)
    pub = clients(broker, uid + "-p", version=V5)
    pub.publish(f"{uid}/a", b"once", qos=2)
    copies = sub.drain(0.8)
    assert len(copies) == 1, copies
    assert copies[0].qos == 2
    assert sorted(copies[0].prop("SubscriptionIdentifier", [])) == [1, 2]
