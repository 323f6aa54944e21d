"""Overload protection and bad input: connect_timeout, a huge announced CONNECT, per-client
publish rate limits, the per-listener accept rate, flapping detection and [bans]. Each case is
handled (closed, refused or slowed) and logged once, while a concurrent client keeps working."""

import re
import socket
import threading
import time

import pytest

import rawmqtt as R
from conftest import assert_pubsub_works, wait_until

pytestmark = [pytest.mark.turnpike_only, pytest.mark.single_node("one node's own limits (accept rate, flapping, loop load)")]


def log_count(broker, pattern: str) -> int:
    return len(re.findall(pattern, broker.log_text()))


def round_trip(sub: R.RawClient, pub: R.RawClient, topic: str) -> float:
    """Seconds for a QoS 0 message from pub to reach sub (both connected, sub subscribed)."""
    t0 = time.monotonic()
    pub.publish(topic, b"ping")
    p = sub.expect(R.PUBLISH, 5)
    assert p.topic == topic and p.payload == b"ping"
    return time.monotonic() - t0


def pair(broker, uid):
    """A connected subscriber/publisher pair on f"{uid}/rt", for latency checks."""
    sub, pub = R.RawClient(broker.port), R.RawClient(broker.port)
    assert sub.connect(f"{uid}-rs").rc == 0
    assert sub.subscribe(f"{uid}/rt").codes == [0]
    assert pub.connect(f"{uid}-rp").rc == 0
    return sub, pub


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------
def test_silent_socket_closed_after_connect_timeout(broker_factory, raw, uid):
    b = broker_factory(connect_timeout=1)
    silent = socket.create_connection((b.host, b.port))
    silent.settimeout(5)
    t0 = time.monotonic()
    assert_pubsub_works(b, "while-silent")  # others are served meanwhile
    assert silent.recv(16) == b""  # closed by the broker, nothing sent
    took = time.monotonic() - t0
    silent.close()
    assert 0.7 <= took <= 3.0, took
    assert wait_until(lambda: log_count(b, r"no CONNECT within 1 s") == 1, 2)
    assert_pubsub_works(b, "after-silent")


def test_connect_announcing_200mb_closed_from_the_header(broker_factory, uid):
    b = broker_factory(connect_timeout=10)
    s = socket.create_connection((b.host, b.port))
    s.settimeout(5)
    port = s.getsockname()[1]
    t0 = time.monotonic()
    s.sendall(b"\x10" + R.enc_varint(200_000_000))
    assert s.recv(16) == b""  # v3 (protocol unknown yet): closed without a DISCONNECT
    assert time.monotonic() - t0 < 1.0  # not after connect_timeout: rejected from the header alone
    s.close()
    assert_pubsub_works(b, "after-200mb")
    # One line above debug level names this peer and the announced size.
    def lines():
        return [l for l in b.log_text().splitlines() if f"127.0.0.1:{port}" in l and " debug " not in l]
    assert wait_until(lambda: len(lines()) >= 1, 2)
    assert len(lines()) == 1 and "200000005 bytes exceeds" in lines()[0], lines()


# ---------------------------------------------------------------------------
# Publish rate limits
# ---------------------------------------------------------------------------
def flood(port: int, topic: str, n: int, payload: bytes, done: threading.Event, client_id: str):
    c = R.RawClient(port, timeout=30)
    assert c.connect(client_id).rc == 0
    data = b"".join(R.publish(topic, payload + b"%05d" % i) for i in range(n))
    c.sock.sendall(data)  # blocks while the broker is not reading: that is the point
    done.set()
    return c


def test_publish_flood_is_slowed_not_dropped(broker_factory, uid):
    rate, n = 200, 1000
    b = broker_factory(max_publish_rate=rate, sys_interval=1)
    topic = f"{uid}/flood"
    sub = R.RawClient(b.port)
    assert sub.connect(f"{uid}-sub").rc == 0
    assert sub.subscribe(topic).codes == [0]
    rsub, rpub = pair(b, uid)

    done = threading.Event()
    holder = {}
    t = threading.Thread(target=lambda: holder.update(c=flood(b.port, topic, n, b"x" * 200, done, f"{uid}-flooder")))
    t0 = time.monotonic()
    t.start()

    # A concurrent client's round trip stays fast during the flood.
    time.sleep(0.3)
    rtts = [round_trip(rsub, rpub, f"{uid}/rt") for _ in range(3)]
    assert max(rtts) < 1.0, rtts

    got = []
    while time.monotonic() - t0 < 1.5:
        p = sub.try_recv(0.05)
        if p is not None:
            got.append(p)
    # About one second's burst plus rate x 1.5 s (~500); far fewer than all 1000.
    assert 200 <= len(got) <= 800, len(got)

    # Nothing is lost: the rest arrives once the broker has read it, in order.
    deadline = time.monotonic() + 15
    while len(got) < n and time.monotonic() < deadline:
        p = sub.try_recv(0.5)
        if p is not None:
            got.append(p)
    assert len(got) == n, f"{len(got)} of {n} arrived"
    assert [int(p.payload[-5:]) for p in got] == list(range(n))
    took = time.monotonic() - t0
    assert took >= (n - rate) / rate * 0.8, took  # about 4 s at 200/s after a burst of 200
    t.join(5)
    assert done.is_set()

    # Logged once per episode (not per message), and counted in $SYS.
    assert log_count(b, r"publishing faster than max_publish_rate 200/s") == 1
    sys = R.RawClient(b.port)
    assert sys.connect(f"{uid}-sys").rc == 0
    sys.subscribe("$SYS/broker/publish/throttled")
    assert int(sys.expect(R.PUBLISH, 3).payload) >= 1
    assert round_trip(rsub, rpub, f"{uid}/rt") < 1.0
    for c in (sub, rsub, rpub, sys, holder["c"]):
        c.close()


def test_publish_bytes_rate(broker_factory, uid):
    b = broker_factory(max_publish_bytes_rate=20_000)
    topic = f"{uid}/bytes"
    sub = R.RawClient(b.port)
    assert sub.connect(f"{uid}-sub").rc == 0
    assert sub.subscribe(topic).codes == [0]
    pub = R.RawClient(b.port)
    assert pub.connect(f"{uid}-pub").rc == 0
    n = 60  # ~61 KB: a burst of 20 KB, then 20 KB/s
    t0 = time.monotonic()
    pub.send(b"".join(R.publish(topic, b"y" * 1000 + b"%03d" % i) for i in range(n)))
    got = [sub.expect(R.PUBLISH, 10) for _ in range(n)]
    took = time.monotonic() - t0
    assert [int(p.payload[-3:]) for p in got] == list(range(n))
    assert 1.4 <= took <= 6, took
    assert log_count(b, r"publishing faster than max_publish_bytes_rate 20000 B/s") == 1
    sub.close(), pub.close()


# ---------------------------------------------------------------------------
# Accept rate
# ---------------------------------------------------------------------------
def test_accept_rate_spreads_a_connect_storm(broker_factory, uid):
    b = broker_factory(accept_rate=10)
    rsub, rpub = pair(b, uid)
    n = 50
    results: dict[int, tuple] = {}

    def one(i):
        try:
            c = R.RawClient(b.port, timeout=20)
            c.send(R.connect(f"{uid}-s{i}"))
            ack = c.expect(R.CONNACK, 20)
            results[i] = (ack.rc, time.monotonic(), c)
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = (repr(e), time.monotonic(), None)

    t0 = time.monotonic()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    assert round_trip(rsub, rpub, f"{uid}/rt") < 1.0  # established clients are not held up
    for t in threads:
        t.join(25)
    refused = {i: r[0] for i, r in results.items() if r[0] != 0}
    assert len(results) == n and not refused, refused
    times = sorted(r[1] - t0 for r in results.values())
    # A burst of ~10 at once, then 10/s: the last one about 4 s later, none refused.
    assert times[-1] >= 2.5, times
    assert times[-1] <= 10, times
    assert log_count(b, r"faster than accept_rate 10/s") == 1
    assert round_trip(rsub, rpub, f"{uid}/rt") < 1.0
    for r in results.values():
        if r[2]:
            r[2].close()
    rsub.close(), rpub.close()


# ---------------------------------------------------------------------------
# Flapping
# ---------------------------------------------------------------------------
def test_flapping_client_refused_then_let_back_in(broker_factory, uid):
    b = broker_factory(flapping_max_connects=3, flapping_window=10, flapping_ban=2)
    cid = f"{uid}-flap"

    def attempt(version=R.MQTT5):
        c = R.RawClient(b.port, version=version)
        try:
            return c.connect(cid).rc
        finally:
            c.disconnect()

    assert [attempt() for _ in range(3)] == [0, 0, 0]
    t_ban = time.monotonic()
    assert attempt() == 0x9F  # v5: Connection rate exceeded
    assert attempt(R.MQTT311) == 3  # v3: Server unavailable
    assert attempt() == 0x9F
    assert_pubsub_works(b, "while-flapping")  # other client ids are not affected
    time.sleep(max(0, 2.2 - (time.monotonic() - t_ban)))
    assert attempt() == 0  # let back in after flapping_ban
    # One warning for the ban; the repeated refusals are not logged above debug level.
    assert log_count(b, rf"client {re.escape(cid)} .*connected 4 times within 10 s") == 1
    assert log_count(b, r"(?i)\b(info|notice|warning)\b.*refused connection.*too often") == 0


# ---------------------------------------------------------------------------
# Bans
# ---------------------------------------------------------------------------
BANS = {"client_ids": ["banned-id"], "usernames": ["mallory"],
        "cidrs": ["127.0.0.2/32", "10.0.0.0/8", "2001:db8::/32"]}


def test_bans_by_client_id_username_and_cidr(broker_factory, uid):
    b = broker_factory(bans=BANS)
    for version, code in ((R.MQTT5, 0x8A), (R.MQTT311, 5)):  # v5 Banned, v3 Not authorized
        c = R.RawClient(b.port, version=version)
        assert c.connect("banned-id").rc == code
        assert c.wait_closed(2)[0]
        c = R.RawClient(b.port, version=version)
        assert c.connect(f"{uid}-m", username="mallory", password=b"pw").rc == code
        assert c.wait_closed(2)[0]
    ok = R.RawClient(b.port)
    assert ok.connect(f"{uid}-ok", username="alice", password=b"pw").rc == 0
    ok.disconnect()

    # From 127.0.0.2: closed at accept, before any byte is read.
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.2", 0))
    s.settimeout(3)
    s.connect((b.host, b.port))
    t0 = time.monotonic()
    try:
        s.sendall(R.connect(f"{uid}-net"))
        data = s.recv(16)
    except (ConnectionResetError, BrokenPipeError):
        data = b""
    assert data == b"" and time.monotonic() - t0 < 1.0
    s.close()
    assert wait_until(lambda: log_count(b, r"refused 127\.0\.0\.2:\d+, banned by 127\.0\.0\.2/32") == 1, 2)
    assert_pubsub_works(b, "bans")  # 127.0.0.1 still connects


def test_bad_cidr_stops_the_start(uid):
    from conftest import Broker
    b = Broker(bans={"cidrs": ["10.0.0.0/33"]})
    try:
        with pytest.raises(RuntimeError, match=r"'cidrs' in \[bans\]"):
            b.start(timeout=5)
    finally:
        b.stop()
        b.cleanup()
