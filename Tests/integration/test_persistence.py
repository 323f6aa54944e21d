"""The durable store: what the broker acknowledged survives kill -9 and a restart.

Each test runs the real turnpike binary, kills it with SIGKILL and starts it again on the same
--data directory (durability "sync", the default). Counts are exact."""

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

import rawmqtt as R
from conftest import Broker, TURNPIKE_BIN

pytestmark = [pytest.mark.turnpike_only, pytest.mark.single_node("one node's own store: restarts, kill -9 and damaged files")]  # mosquitto keeps nothing across kill -9 (it saves a snapshot every 30 min)

V3, V5 = R.MQTT311, R.MQTT5


def settle():
    """CONNACK, SUBACK and a disconnect do not wait for the disk (README, "Durable store"): give
    their writes a moment to be committed before killing the broker."""
    time.sleep(0.3)


def kill9(b: Broker):
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait(10)
    b._stopped()


def restart(b: Broker) -> Broker:
    kill9(b)
    return b.start()


@pytest.fixture
def durable():
    made = []

    def make(**kw) -> Broker:
        b = Broker(**kw).start()
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()
        b.cleanup()


def connect_persistent(b, cid, version, expiry=3600, **kw):
    c = R.RawClient(b.port, b.host, version=version)
    props = {"SessionExpiryInterval": expiry} if version == V5 else None
    ack = c.connect(cid, clean=False if version == V3 else kw.pop("clean", False), properties=props, **kw)
    assert ack.rc == 0, ack
    return c, ack


def publish_pipelined(b, items, qos=1, version=V3, properties=None, chunk=100):
    """Publishes (topic, payload, retain) items, `chunk` at a time before reading the acks.
    Returns the number acknowledged."""
    p = R.RawClient(b.port, b.host, version=version)
    assert p.connect("").rc == 0
    done = 0
    for start in range(0, len(items), chunk):
        part = items[start:start + chunk]
        pids = []
        for i, (topic, payload, retain) in enumerate(part):
            pid = (start + i) % 65535 + 1
            pids.append(pid)
            p.send(R.publish(topic, payload, qos=qos, pid=pid, retain=retain, version=version, properties=properties))
        for pid in pids:
            if qos == 1:
                assert p.expect(R.PUBACK, 30).pid == pid
            else:
                assert p.expect(R.PUBREC, 30).pid == pid
                p.send(R.pubrel(pid, version))
                assert p.expect(R.PUBCOMP, 30).pid == pid
            done += 1
    p.close()
    return done


def drain(c, n, timeout=20):
    """Receives and acknowledges n PUBLISHes; returns them."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        left = deadline - time.monotonic()
        assert left > 0, f"only {len(got)} of {n} messages arrived"
        m = c.recv(left)
        if m.type == R.PUBREL:
            c.send(R.pubcomp(m.pid, c.version))
            continue
        assert m.type == R.PUBLISH, m
        got.append(m)
        if m.qos == 1:
            c.send(R.puback(m.pid, c.version))
        elif m.qos == 2:
            c.send(R.pubrec(m.pid, c.version))
    return got


# ---------------------------------------------------------------------------
def test_queued_commands_survive_kill9(durable, uid):
    """50 persistent sessions (v3.1.1 and v5), 200 QoS 1 commands queued for each while offline;
    kill -9; every client gets session present and all 200, in order, once, DUP only on the
    ones that were in flight."""
    b = durable()
    ids = [(f"car{i}-{uid}", V3 if i % 2 else V5) for i in range(50)]
    for cid, v in ids:
        c, _ = connect_persistent(b, cid, v)
        assert c.subscribe([(f"cmd/{cid}", 1)]).codes == [1]
        c.close()
    # Two cars see their first 5 commands before going away without acknowledging them.
    early = {ids[0][0], ids[1][0]}
    items = [(f"cmd/{cid}", f"{cid}:{n}".encode(), False) for n in range(200) for cid, _ in ids]
    for cid, v in ids:
        if cid in early:
            items_for = [it for it in items if it[0] == f"cmd/{cid}"]
            assert publish_pipelined(b, items_for[:5]) == 5
    inflight_pids = {}
    for cid, v in ids:
        if cid in early:
            c, ack = connect_persistent(b, cid, v)
            assert ack.session_present
            first = [c.expect(R.PUBLISH) for _ in range(5)]
            assert [m.payload for m in first] == [f"{cid}:{n}".encode() for n in range(5)]
            inflight_pids[cid] = [m.pid for m in first]
            c.close()                              # no PUBACK: they stay in flight
    rest = [it for it in items if not (it[0].split("/", 1)[1] in early and int(it[1].split(b":")[1]) < 5)]
    assert publish_pipelined(b, rest) == len(rest)

    b = restart(b)
    assert "storage: recovered 50 sessions" in b.log_text()
    for cid, v in ids:
        c, ack = connect_persistent(b, cid, v)
        assert ack.session_present, cid
        got = drain(c, 200)
        assert [m.payload for m in got] == [f"{cid}:{n}".encode() for n in range(200)], cid
        dups = [m.dup for m in got]
        if cid in early:
            assert dups == [True] * 5 + [False] * 195, cid
            assert [m.pid for m in got[:5]] == inflight_pids[cid]
        else:
            assert not any(dups), cid
        assert c.try_recv(0.2) is None             # none twice
        c.close()


def test_kill9_during_load_loses_nothing_acknowledged(durable, uid):
    """A publisher's log of acknowledged packet ids is the oracle: every message whose PUBACK
    arrived before the kill is delivered after the restart."""
    b = durable(max_queued_messages=50_000)
    subs = [f"s{i}-{uid}" for i in range(10)]
    for cid in subs:
        c, _ = connect_persistent(b, cid, V5)
        assert c.subscribe([(f"load/{uid}/#", 1)]).codes == [1]
        c.close()
    acked: list[int] = []
    stop = threading.Event()

    def load():
        p = R.RawClient(b.port, b.host, version=V3)
        assert p.connect("").rc == 0
        n = 0
        try:
            while not stop.is_set() and n < 40_000:
                batch = list(range(n, n + 50))
                for k in batch:
                    p.send(R.publish(f"load/{uid}/{k % 7}", str(k).encode(), qos=1, pid=k % 65535 + 1))
                for k in batch:
                    a = p.expect(R.PUBACK, 10)
                    assert a.pid == k % 65535 + 1
                    acked.append(k)
                n += 50
        except (R.ConnectionClosed, OSError, R.Timeout):
            pass

    t = threading.Thread(target=load)
    t.start()
    deadline = time.monotonic() + 20
    while len(acked) < 500 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(acked) >= 500, "the load did not get going"
    kill9(b)
    stop.set()
    t.join(20)
    b.start()
    for cid in subs:
        c, ack = connect_persistent(b, cid, V5)
        assert ack.session_present
        got = set()
        while True:
            m = c.try_recv(1.0)
            if m is None:
                break
            if m.type == R.PUBLISH:
                got.add(int(m.payload))
                c.ack(m)
        expected = set(acked)
        missing = expected - got
        assert not missing, f"{cid}: {len(missing)} acknowledged messages lost, e.g. {sorted(missing)[:5]}"
        c.close()


def test_qos2_exchange_interrupted_after_pubrec(durable, uid):
    b = durable()
    sub, _ = connect_persistent(b, f"sub-{uid}", V5)
    assert sub.subscribe([(f"q2/{uid}", 2)]).codes == [2]
    sub.close()
    pub, _ = connect_persistent(b, f"pub-{uid}", V3)
    pub.send(R.publish(f"q2/{uid}", b"once", qos=2, pid=7))
    assert pub.expect(R.PUBREC).pid == 7
    pub.send(R.publish(f"q2/{uid}", b"twice?", qos=2, pid=8))
    assert pub.expect(R.PUBREC).pid == 8
    b = restart(b)
    pub, ack = connect_persistent(b, f"pub-{uid}", V3)
    assert ack.session_present
    pub.send(R.pubrel(7))                           # the client goes on where it was
    assert pub.expect(R.PUBCOMP).pid == 7
    pub.send(R.publish(f"q2/{uid}", b"twice?", qos=2, pid=8, dup=True))   # PUBREC lost: resent
    assert pub.expect(R.PUBREC).pid == 8
    pub.send(R.pubrel(8))
    assert pub.expect(R.PUBCOMP).pid == 8
    assert pub.is_open()
    sub, ack = connect_persistent(b, f"sub-{uid}", V5)
    assert ack.session_present
    got = drain(sub, 2)
    assert sorted(m.payload for m in got) == [b"once", b"twice?"]
    while (p := sub.try_recv(0.5)) is not None:     # exactly once each
        assert p.type == R.PUBREL, p
        sub.send(R.pubcomp(p.pid, V5))


def test_retained_messages_survive(durable, uid):
    b = durable()
    items = [(f"ret/{uid}/{i}", f"v{i}".encode(), True) for i in range(1000)]
    assert publish_pipelined(b, items) == 1000
    short = [(f"ret/{uid}/{i}", f"short{i}".encode(), True) for i in range(10)]
    assert publish_pipelined(b, short, version=V5, properties={"MessageExpiryInterval": 2}) == 10
    long = [(f"ret/{uid}/{i}", f"long{i}".encode(), True) for i in range(10, 20)]
    assert publish_pipelined(b, long, version=V5, properties={"MessageExpiryInterval": 3600}) == 10
    cleared = [(f"ret/{uid}/{i}", b"", True) for i in range(20, 25)]
    assert publish_pipelined(b, cleared) == 5
    b = restart(b)
    time.sleep(2.2)                                   # the short ones expire meanwhile
    c = R.RawClient(b.port, b.host, version=V5)
    assert c.connect(f"reader-{uid}").rc == 0
    c.subscribe([(f"ret/{uid}/#", 0)])
    got = {}
    while True:
        m = c.try_recv(1.0)
        if m is None:
            break
        got[m.topic] = m
    assert len(got) == 1000 - 10 - 5
    for i in range(10):
        assert f"ret/{uid}/{i}" not in got
    for i in range(20, 25):
        assert f"ret/{uid}/{i}" not in got
    for i in range(10, 20):
        m = got[f"ret/{uid}/{i}"]
        assert m.payload == f"long{i}".encode() and m.retain
        assert 3590 <= m.props["MessageExpiryInterval"] <= 3600
    assert got[f"ret/{uid}/999"].payload == b"v999"


@pytest.mark.parametrize("reconnect", [False, True], ids=["published", "cancelled-by-reconnect"])
def test_delayed_will_survives(durable, uid, reconnect):
    b = durable()
    cid = f"will-{uid}"
    c = R.RawClient(b.port, b.host, version=V5)
    assert c.connect(cid, properties={"SessionExpiryInterval": 60},
                     will={"topic": f"lost/{uid}", "payload": b"gone", "qos": 1,
                           "properties": {"WillDelayInterval": 3}}).rc == 0
    c.close()                                        # dropped without DISCONNECT
    time.sleep(0.5)
    b = restart(b)
    watcher = R.RawClient(b.port, b.host, version=V5)
    assert watcher.connect(f"watch-{uid}").rc == 0
    watcher.subscribe([(f"lost/{uid}", 1)])
    if reconnect:
        again, ack = connect_persistent(b, cid, V5, expiry=60)
        assert ack.session_present
        assert watcher.try_recv(4.0) is None
    else:
        m = watcher.expect(R.PUBLISH, 6.0)
        assert m.topic == f"lost/{uid}" and m.payload == b"gone"


def test_sessions_expired_while_down_are_gone(durable, uid):
    b = durable()
    short, _ = connect_persistent(b, f"short-{uid}", V5, expiry=2)
    short.subscribe([(f"x/{uid}", 1)])
    short.close()
    longer, _ = connect_persistent(b, f"long-{uid}", V5, expiry=3600)
    longer.close()
    still_connected, _ = connect_persistent(b, f"conn-{uid}", V5, expiry=2)
    time.sleep(1.2)                                  # the store's clock tick has seen it connected
    kill9(b)
    time.sleep(3)
    b.start()
    assert "(2 expired while the broker was down)" in b.log_text()
    for cid, present in [(f"short-{uid}", False), (f"long-{uid}", True), (f"conn-{uid}", False)]:
        c, ack = connect_persistent(b, cid, V5, expiry=60)
        assert ack.session_present == present, cid
        c.close()


def store_files(b) -> Path:
    return b.dir / "data" / "store"


def fill_and_kill(durable, uid):
    b = durable()
    for i in range(20):
        c, _ = connect_persistent(b, f"d{i}-{uid}", V5)
        c.subscribe([(f"dmg/{uid}/{i}", 1)])
        c.close()
    items = [(f"dmg/{uid}/{i}", f"m{i}-{n}".encode(), False) for n in range(20) for i in range(20)]
    publish_pipelined(b, items)
    kill9(b)
    return b


@pytest.mark.parametrize("damage", ["truncate-wal", "garbage-wal", "garbage-manifest", "garbage-current", "garbage-sst"])
def test_damaged_store_is_reported_and_the_broker_starts(durable, uid, damage):
    b = fill_and_kill(durable, uid)
    d = store_files(b)
    if damage == "garbage-sst":
        # Get some data into an SST first: a clean stop flushes nothing, so restart and let
        # the store flush on its own is not guaranteed; the check tool forces nothing either.
        b.start()
        b.stop()
        ssts = sorted(d.glob("*.sst"))
        if not ssts:
            pytest.skip("no SST file was written (the memtable was never flushed)")
        target = ssts[0]
        data = bytearray(target.read_bytes())
        data[len(data) // 3: len(data) // 3 + 256] = os.urandom(256)
        target.write_bytes(bytes(data))
    else:
        wal = sorted(d.glob("*.log"), key=lambda p: p.stat().st_mtime)[-1]
        if damage == "truncate-wal":
            size = wal.stat().st_size
            with open(wal, "r+b") as f:
                f.truncate(size // 2)
        elif damage == "garbage-wal":
            data = bytearray(wal.read_bytes())
            data[len(data) // 2:] = os.urandom(len(data) - len(data) // 2)
            wal.write_bytes(bytes(data))
        elif damage == "garbage-manifest":
            m = sorted(d.glob("MANIFEST-*"))[-1]
            m.write_bytes(os.urandom(4096))
        elif damage == "garbage-current":
            (d / "CURRENT").write_bytes(os.urandom(64))
    check = subprocess.run([str(TURNPIKE_BIN), "storage", "check", str(b.dir / "data")],
                                         capture_output=True, text=True, timeout=60)
    assert check.returncode in (0, 1), check
    b.start()                                           # never a crash
    log = b.log_text()
    assert "storage: recovered" in log, log[-3000:]
    c = R.RawClient(b.port, b.host, version=V5)
    assert c.connect(f"after-{uid}").rc == 0
    assert c.is_open()
    # What was before the damage is back: the 20 sessions were written first.
    assert "storage: recovered 20 sessions" in log, log[-3000:]
    if damage == "garbage-wal":
        assert "WAL replay of" in log and ".log" in log, log[-3000:]
    if damage in ("garbage-manifest", "garbage-current", "garbage-sst"):
        assert "repaired" in log, log[-3000:]
    if damage != "truncate-wal":                      # a torn tail is what any crash leaves
        assert check.returncode == 1 and "damaged" in check.stdout, check


def storage_counts(b) -> dict:
    out = subprocess.run([str(TURNPIKE_BIN), "storage", "check", str(b.dir / "data")],
                         capture_output=True, text=True, timeout=60).stdout
    counts = {}
    for line in out.splitlines():
        k, _, v = line.strip().partition(": ")
        if v.isdigit():
            counts[k] = int(v)
    return counts


def test_one_message_for_many_sessions_is_stored_once_then_deleted(durable, uid):
    b = durable()
    ids = [f"bc{i}-{uid}" for i in range(200)]
    for cid in ids:
        c, _ = connect_persistent(b, cid, V5)
        c.subscribe([(f"broadcast/{uid}", 1)])
        c.close()
    assert publish_pipelined(b, [(f"broadcast/{uid}", b"recall notice", False)]) == 1
    counts = storage_counts(b)        # read-only, beside the running broker
    assert counts["messages"] == 1 and counts["deliveries"] == 200, counts
    for cid in ids:
        c, ack = connect_persistent(b, cid, V5)
        assert ack.session_present
        assert [m.payload for m in drain(c, 1)] == [b"recall notice"]
        c.disconnect()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        counts = storage_counts(b)
        if counts.get("messages") == 0 and counts.get("deliveries") == 0:
            break
        time.sleep(0.2)
    assert counts["messages"] == 0 and counts["deliveries"] == 0, counts   # the store follows what is pending
    assert counts["sessions"] == 200, counts


def test_clean_start_replacement_survives_restart(durable, uid):
    b = durable()
    cid = f"re-{uid}"
    old, _ = connect_persistent(b, cid, V5)
    old.subscribe([(f"old/{uid}", 1)])
    old.send(R.publish(f"x/{uid}", b"q2", qos=2, pid=5, version=V5))
    assert old.expect(R.PUBREC).pid == 5              # an inbound id the new session must not inherit
    old.close()
    fresh, ack = connect_persistent(b, cid, V5, clean=True)
    assert not ack.session_present
    fresh.subscribe([(f"new/{uid}", 1)])
    fresh.close()
    settle()
    b = restart(b)
    again, ack = connect_persistent(b, cid, V5)
    assert ack.session_present
    p = R.RawClient(b.port, b.host)
    assert p.connect("").rc == 0
    p.publish(f"old/{uid}", b"to old", qos=1)
    p.publish(f"new/{uid}", b"to new", qos=1)
    assert [m.payload for m in drain(again, 1)] == [b"to new"]
    assert again.try_recv(0.5) is None
    again.send(R.publish(f"x/{uid}", b"fresh", qos=2, pid=5, version=V5))   # pid 5 is not a duplicate
    assert again.expect(R.PUBREC).rc == 0x10          # delivered to nobody, but not taken for a resend


def test_sys_storage_figures(durable, uid):
    b = durable()
    c, _ = connect_persistent(b, f"sysst-{uid}", V5)
    c.subscribe([(f"st/{uid}", 1)])
    c.close()
    assert publish_pipelined(b, [(f"st/{uid}", b"x", False)] * 20) == 20
    w = R.RawClient(b.port, b.host, version=V5)
    assert w.connect(f"sysw-{uid}").rc == 0
    w.subscribe([("$SYS/broker/storage/#", 0)])
    got = {}
    deadline = time.monotonic() + 6      # published every second (sys_interval 1); the retained
    while time.monotonic() < deadline:   # copy a subscriber gets first may predate the writes
        m = w.try_recv(1.0)
        if m is not None and m.type == R.PUBLISH:
            got[m.topic.rsplit("/", 1)[1]] = int(m.payload)
        if len(got) == 7 and got["writes"] >= 40:
            break
    assert set(got) == {"bytes", "writes", "commits", "writes_per_second", "commits_per_second",
                        "last_commit_latency_us", "failed_commits"}, got
    assert got["bytes"] > 0 and got["writes"] >= 40 and got["commits"] >= 1 and got["failed_commits"] == 0, got


def test_clean_session_replacing_a_stored_one_clears_it(durable, uid):
    """v3.1.1 cleanSession=1 after a stored cleanSession=0 session: nothing of the old one comes
    back after a restart (it would never expire)."""
    b = durable()
    cid = f"cs-{uid}"
    c, _ = connect_persistent(b, cid, V3)
    c.subscribe([(f"cs/{uid}", 1)])
    c.close()
    clean = R.RawClient(b.port, b.host)
    assert not clean.connect(cid, clean=True).session_present
    clean.disconnect()
    settle()
    b = restart(b)
    again, ack = connect_persistent(b, cid, V3)
    assert not ack.session_present


def test_takeover_keeps_the_stored_session(durable, uid):
    b = durable()
    cid = f"to-{uid}"
    first, _ = connect_persistent(b, cid, V5)
    first.subscribe([(f"to/{uid}", 1)])
    second, ack = connect_persistent(b, cid, V5)       # takes over the connected session
    assert ack.session_present
    closed, pkts = first.wait_closed(5)
    assert closed and pkts and pkts[0].rc == 0x8E, pkts
    settle()
    b = restart(b)
    third, ack = connect_persistent(b, cid, V5)
    assert ack.session_present
    p = R.RawClient(b.port, b.host)
    assert p.connect("").rc == 0
    p.publish(f"to/{uid}", b"still subscribed", qos=1)
    assert [m.payload for m in drain(third, 1)] == [b"still subscribed"]


def test_v311_pubrel_resent_after_restart_is_completed(durable, uid):
    """PUBCOMP waits for the commit of the released id: a restart in between leaves the client
    resending its PUBREL for an id the broker no longer knows. Until the client sends a new
    PUBLISH that is a resend [MQTT-4.4.0-1], not a protocol error."""
    b = durable()
    cid = f"rel-{uid}"
    c, _ = connect_persistent(b, cid, V3)
    c.close()
    settle()
    b = restart(b)
    c, ack = connect_persistent(b, cid, V3)
    assert ack.session_present
    c.send(R.pubrel(9))
    assert c.expect(R.PUBCOMP).pid == 9
    c.publish(f"rel/{uid}", b"new work", qos=0)
    c.send(R.pubrel(10))                               # no longer a resend
    closed, _ = c.wait_closed(5)
    assert closed


def test_backlog_behind_a_connected_subscribers_window_survives(durable, uid):
    """A connected durable subscriber that does not keep up: what waits behind its window is
    stored (what is already on the wire to it is not, see README)."""
    b = durable()
    sub, _ = connect_persistent(b, f"slow-{uid}", V5)
    sub.subscribe([(f"slow/{uid}", 1)])
    items = [(f"slow/{uid}", str(i).encode(), False) for i in range(100)]
    assert publish_pipelined(b, items) == 100
    first = [sub.expect(R.PUBLISH) for _ in range(20)]  # the window (max_inflight 20), never acknowledged
    assert [int(m.payload) for m in first] == list(range(20))
    # Stored by the subscriber's loop; when the publisher is on another loop its PUBACKs do not
    # wait for that commit (README), so wait for it here.
    deadline = time.monotonic() + 5
    while storage_counts(b).get("deliveries") != 80 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert storage_counts(b)["deliveries"] == 80
    b = restart(b)
    again, ack = connect_persistent(b, f"slow-{uid}", V5)
    assert ack.session_present
    got = [int(m.payload) for m in drain(again, 80)]
    assert got == list(range(20, 100))
