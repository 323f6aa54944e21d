"""MQTT 5 topic aliases and PUBLISH property pass-through."""

import pytest

import rawmqtt as R
from conftest import V5, V311, assert_pubsub_works


def test_topic_alias_inbound(broker, raw, clients, uid):
    topic = f"{uid}/alias/long/topic/name"
    sub = clients(broker, uid + "-s", version=V5)
    sub.subscribe(topic, 1)
    c = raw(broker, version=5)
    ack = c.connect(uid)
    assert ack.props.get("TopicAliasMaximum", 0) >= 1
    c.publish(topic, b"first", qos=1, properties={"TopicAlias": 1})
    c.publish("", b"second", qos=1, properties={"TopicAlias": 1})
    c.publish("", b"third", qos=0, properties={"TopicAlias": 1})
    msgs = sub.collect(3)
    assert [(m.topic, m.payload) for m in msgs] == [(topic, b"first"), (topic, b"second"), (topic, b"third")]
    # the subscriber must not see our alias
    assert all(m.prop("TopicAlias") is None for m in msgs)
    assert c.is_open()


def test_topic_alias_remapped(broker, raw, clients, uid):
    sub = clients(broker, uid + "-s", version=V5)
    sub.subscribe(f"{uid}/#", 0)
    c = raw(broker, version=5)
    c.connect(uid)
    c.publish(f"{uid}/a", b"1", properties={"TopicAlias": 2})
    c.publish(f"{uid}/b", b"2", properties={"TopicAlias": 2})   # re-map alias 2
    c.publish("", b"3", properties={"TopicAlias": 2})
    msgs = sub.collect(3)
    assert [(m.topic, m.payload) for m in msgs] == [(f"{uid}/a", b"1"), (f"{uid}/b", b"2"), (f"{uid}/b", b"3")]


def test_topic_alias_delivered_to_v311_subscriber(broker, raw, clients, uid):
    topic = f"{uid}/a311"
    sub = clients(broker, uid + "-s", version=V311)
    sub.subscribe(topic, 0)
    c = raw(broker, version=5)
    c.connect(uid)
    c.publish(topic, b"1", properties={"TopicAlias": 3})
    c.publish("", b"2", properties={"TopicAlias": 3})
    assert [(m.topic, m.payload) for m in sub.collect(2)] == [(topic, b"1"), (topic, b"2")]


def test_topic_alias_above_maximum_is_error(broker, raw, uid):
    c = raw(broker, version=5)
    ack = c.connect(uid)
    too_big = ack.props.get("TopicAliasMaximum", 0) + 1
    c.send(R.publish(f"{uid}/x", b"1", version=5, properties={"TopicAlias": too_big}))
    closed, pkts = c.wait_closed(5)
    assert closed
    assert pkts and pkts[0].type == R.DISCONNECT and pkts[0].rc == 0x94, pkts
    assert_pubsub_works(broker)


# mosquitto 2.0.11 answers Topic Alias 0 with DISCONNECT 0x81 (Malformed Packet) instead of 0x94.
@pytest.mark.turnpike_only
def test_topic_alias_zero_is_error_0x94(broker, raw, uid):
    c = raw(broker, version=5)
    c.connect(uid)
    c.send(R.publish(f"{uid}/x", b"1", version=5, properties={"TopicAlias": 0}))
    closed, pkts = c.wait_closed(5)
    assert closed
    assert pkts and pkts[0].type == R.DISCONNECT and pkts[0].rc == 0x94, pkts


def test_topic_alias_zero_closes_connection(broker, raw, uid):
    c = raw(broker, version=5)
    c.connect(uid)
    c.send(R.publish(f"{uid}/x", b"1", version=5, properties={"TopicAlias": 0}))
    closed, pkts = c.wait_closed(5)
    assert closed
    assert pkts and pkts[0].type == R.DISCONNECT and pkts[0].rc >= 0x80, pkts
    assert_pubsub_works(broker)


def test_unknown_topic_alias_is_protocol_error(broker, raw, uid):
    c = raw(broker, version=5)
    c.connect(uid)
    c.send(R.publish("", b"1", version=5, properties={"TopicAlias": 5}))
    closed, pkts = c.wait_closed(5)
    assert closed
    assert pkts and pkts[0].type == R.DISCONNECT and pkts[0].rc == 0x82, pkts


def test_topic_alias_not_allowed_in_v311_style_empty_topic(broker, raw, uid):
    """An empty topic without a Topic Alias is a protocol error."""
    c = raw(broker, version=5)
    c.connect(uid)
    c.send(R.publish("", b"1", version=5))
    closed, pkts = c.wait_closed(5)
    assert closed
    assert all(p is not None and p.type == R.DISCONNECT and p.rc >= 0x80 for p in pkts), pkts


def test_outbound_topic_aliases_resolvable(broker, raw, clients, uid):
    """A client that allows topic aliases may get them; every message must
    still resolve to the right topic."""
    topic = f"{uid}/outbound"
    c = raw(broker, version=5)
    assert c.connect(uid, properties={"TopicAliasMaximum": 5}).rc == 0
    c.subscribe([(topic, 0)])
    pub = clients(broker, uid + "-p", version=V5)
    for i in range(4):
        pub.publish(topic, str(i).encode(), qos=1)
    got = [c.expect(R.PUBLISH) for _ in range(4)]
    assert [(p.topic, p.payload) for p in got] == [(topic, str(i).encode()) for i in range(4)]
    for p in got:
        if "TopicAlias" in p.props:
            assert 1 <= p.props["TopicAlias"] <= 5


def test_no_outbound_topic_alias_when_client_allows_none(broker, raw, clients, uid):
    topic = f"{uid}/noalias"
    c = raw(broker, version=5)
    assert c.connect(uid).rc == 0
    c.subscribe([(topic, 0)])
    pub = clients(broker, uid + "-p", version=V5)
    for i in range(3):
        pub.publish(topic, b"x", qos=1)
    for _ in range(3):
        p = c.expect(R.PUBLISH)
        assert p.topic == topic and "TopicAlias" not in p.props


PROPS = dict(
    PayloadFormatIndicator=1,
    ContentType="application/json; charset=utf-8",
    ResponseTopic="reply/to/me",
    CorrelationData=b"\x00\xffcorrelation\x01",
    UserProperty=[("b", "2"), ("a", "1"), ("a", "1-again"), ("", "empty-key"), ("unicode", "h\u00e9llo \u2713")],
)


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_publish_properties_passed_through(broker, clients, uid, qos):
    topic = f"{uid}/props"
    sub = clients(broker, uid + "-s", version=V5)
    sub.subscribe(topic, 2)
    pub = clients(broker, uid + "-p", version=V5)
    pub.publish(topic, b'{"k": 1}', qos=qos, **PROPS)
    m = sub.get()
    assert m.payload == b'{"k": 1}'
    assert m.prop("PayloadFormatIndicator") == 1
    assert m.prop("ContentType") == PROPS["ContentType"]
    assert m.prop("ResponseTopic") == PROPS["ResponseTopic"]
    assert m.prop("CorrelationData") == PROPS["CorrelationData"]
    assert m.prop("UserProperty") == PROPS["UserProperty"], "order and duplicates must be preserved"


def test_properties_raw_bytes_exact(broker, raw, uid):
    topic = f"{uid}/rawprops"
    sub = raw(broker, version=5)
    sub.connect(uid + "s")
    sub.subscribe([(topic, 1)])
    pub = raw(broker, version=5)
    pub.connect(uid + "p")
    props = {"ContentType": "x/y", "UserProperty": [("k", "v1"), ("k", "v2")],
             "CorrelationData": b"\x01\x02", "ResponseTopic": f"{uid}/r", "PayloadFormatIndicator": 0}
    pub.publish(topic, b"data", qos=1, properties=props)
    p = sub.expect(R.PUBLISH)
    for k, v in props.items():
        assert p.props.get(k) == v, (k, p.props)


def test_properties_from_mosquitto_pub(broker, clients, cli, uid):
    topic = f"{uid}/cliprops"
    sub = clients(broker, uid + "-s", version=V5)
    sub.subscribe(topic, 1)
    cli.pub(broker, topic, "hello", qos=1, version=5, extra=[
        "-D", "publish", "user-property", "source", "cli",
        "-D", "publish", "content-type", "text/plain",
        "-D", "publish", "response-topic", f"{uid}/answer",
        "-D", "publish", "correlation-data", "abc123",
        "-D", "publish", "payload-format-indicator", "1",
        "-D", "publish", "message-expiry-interval", "100",
    ])
    m = sub.get()
    assert m.payload == b"hello"
    assert m.prop("UserProperty") == [("source", "cli")]
    assert m.prop("ContentType") == "text/plain"
    assert m.prop("ResponseTopic") == f"{uid}/answer"
    assert m.prop("CorrelationData") == b"abc123"
    assert m.prop("PayloadFormatIndicator") == 1
    assert 95 <= m.prop("MessageExpiryInterval") <= 100


def test_request_response_pattern(broker, clients, uid):
    requester = clients(broker, uid + "-req", version=V5)
    responder = clients(broker, uid + "-resp", version=V5)
    responder.subscribe(f"{uid}/service", 1)
    requester.subscribe(f"{uid}/replies", 1)
    requester.publish(f"{uid}/service", b"ping", qos=1, ResponseTopic=f"{uid}/replies", CorrelationData=b"42")
    req = responder.get()
    responder.publish(req.prop("ResponseTopic"), b"pong", qos=1, CorrelationData=req.prop("CorrelationData"))
    rep = requester.get()
    assert rep.topic == f"{uid}/replies" and rep.payload == b"pong" and rep.prop("CorrelationData") == b"42"


def test_v5_properties_stripped_for_v311_subscriber(broker, clients, uid):
    topic = f"{uid}/strip"
    sub = clients(broker, uid + "-s", version=V311)
    sub.subscribe(topic, 1)
    pub = clients(broker, uid + "-p", version=V5)
    pub.publish(topic, b"plain", qos=1, **PROPS)
    m = sub.get()
    assert m.payload == b"plain" and m.qos == 1


def test_v311_publish_has_no_properties_for_v5_subscriber(broker, raw, uid):
    topic = f"{uid}/noprops"
    sub = raw(broker, version=5)
    sub.connect(uid + "s")
    sub.subscribe([(topic, 1)])
    pub = raw(broker)
    pub.connect(uid + "p")
    pub.publish(topic, b"v3", qos=1)
    p = sub.expect(R.PUBLISH)
    assert p.payload == b"v3"
    assert not {k for k in p.props if k not in ("SubscriptionIdentifier", "TopicAlias")}, p.props
