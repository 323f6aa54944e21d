"""$SYS topics published every sys_interval seconds."""

import re
import threading
import time

import pytest

from conftest import V5, V311, wait_until

REQUIRED = [
    "$SYS/broker/clients/connected",
    "$SYS/broker/clients/total",
    "$SYS/broker/messages/received",
    "$SYS/broker/messages/sent",
    "$SYS/broker/bytes/received",
    "$SYS/broker/bytes/sent",
    "$SYS/broker/subscriptions/count",
    "$SYS/broker/retained messages/count",
    "$SYS/broker/uptime",
    "$SYS/broker/version",
]
NUMERIC = [t for t in REQUIRED if t != "$SYS/broker/version"]

pytestmark = pytest.mark.single_node("$SYS is each node's own")


def as_int(payload: bytes) -> int:
    """Numbers are plain integers; uptime may carry a unit ("12 seconds")."""
    m = re.match(rb"^\s*(\d+)(\s+seconds?)?\s*$", payload)
    assert m, f"not an integer: {payload!r}"
    return int(m.group(1))


class SysWatcher:
    """Latest value per $SYS topic."""

    def __init__(self, client):
        self.client = client
        self.latest: dict[str, bytes] = {}
        self.seen_at: dict[str, list[float]] = {}
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop:
            for m in self.client.drain(0.05):
                self.latest[m.topic] = m.payload
                self.seen_at.setdefault(m.topic, []).append(m.time)

    def value(self, topic):
        v = self.latest.get(topic)
        return None if v is None else as_int(v)

    def stop(self):
        self._stop = True
        self._t.join(1)


@pytest.fixture
def sys_broker(broker_factory):
    return broker_factory(sys_interval=1)


@pytest.fixture
def watcher(sys_broker, clients, uid):
    c = clients(sys_broker, uid + "-sys", version=V5)
    c.subscribe("$SYS/broker/#", 0)
    w = SysWatcher(c)
    yield w
    w.stop()


def test_sys_topics_published(watcher):
    assert wait_until(lambda: all(t in watcher.latest for t in REQUIRED), 3.5), \
        f"missing: {[t for t in REQUIRED if t not in watcher.latest]}"
    for t in NUMERIC:
        assert as_int(watcher.latest[t]) >= 0, t
    assert watcher.latest["$SYS/broker/version"].strip(), "version must not be empty"
    # the watcher itself is connected (the first value seen may be a stale retained one)
    assert wait_until(lambda: (watcher.value("$SYS/broker/clients/connected") or 0) >= 1, 3.5)


def test_sys_clients_connected_tracks_connections(sys_broker, watcher, clients, uid):
    # wait for a fresh value that counts the watcher itself (a retained stale one may come first)
    assert wait_until(lambda: (watcher.value("$SYS/broker/clients/connected") or 0) >= 1, 3.5)
    base = watcher.value("$SYS/broker/clients/connected")
    extra = [clients(sys_broker, f"{uid}-x{i}", version=V311) for i in range(3)]
    assert wait_until(lambda: watcher.value("$SYS/broker/clients/connected") == base + 3, 4.0), \
        f"expected {base + 3}, got {watcher.value('$SYS/broker/clients/connected')}"
    for c in extra:
        c.disconnect()
    assert wait_until(lambda: watcher.value("$SYS/broker/clients/connected") == base, 4.0), \
        f"expected {base}, got {watcher.value('$SYS/broker/clients/connected')}"


def test_sys_message_counters_increase(sys_broker, watcher, clients, uid):
    assert wait_until(lambda: watcher.value("$SYS/broker/messages/received") is not None, 3.5)
    before = watcher.value("$SYS/broker/messages/received")
    pub = clients(sys_broker, uid + "-p", version=V5)
    for i in range(10):
        pub.publish(f"{uid}/m", b"x", qos=1)
    assert wait_until(lambda: watcher.value("$SYS/broker/messages/received") >= before + 10, 4.0)


def test_sys_retained_count(sys_broker, watcher, clients, uid):
    assert wait_until(lambda: watcher.value("$SYS/broker/retained messages/count") is not None, 3.5)
    before = watcher.value("$SYS/broker/retained messages/count")
    pub = clients(sys_broker, uid + "-p", version=V5)
    for i in range(3):
        pub.publish(f"{uid}/r{i}", b"x", qos=1, retain=True)
    assert wait_until(lambda: watcher.value("$SYS/broker/retained messages/count") >= before + 3, 4.0)


def test_sys_uptime_advances(watcher):
    assert wait_until(lambda: watcher.value("$SYS/broker/uptime") is not None, 3.5)
    first = watcher.value("$SYS/broker/uptime")
    assert wait_until(lambda: watcher.value("$SYS/broker/uptime") > first, 3.5)


def test_sys_version_with_cli(sys_broker, cli):
    s = cli.sub(sys_broker, "$SYS/broker/version", count=1, wait_secs=4)
    assert s.wait_exit(6) == 0
    assert s.messages()[0]["payload"].strip()


@pytest.mark.turnpike_only  # README: sys_interval = 0 turns $SYS publications off
def test_sys_interval_zero_disables_sys(broker_factory, clients, uid):
    b = broker_factory(sys_interval=0)
    c = clients(b, uid, version=V5)
    c.subscribe("$SYS/#", 0)
    time.sleep(2.0)
    got = [m.topic for m in c.drain(0.2) if m.topic != "$SYS/broker/version"]
    assert not got, got


@pytest.mark.turnpike_only  # Turnpike's own topic: mosquitto has no event-loop lag figure
def test_sys_longest_loop_iteration(sys_broker, watcher, clients, uid):
    """Event-loop lag: the longest iteration since the last publish, in ms: a plausible figure
    through a burst of messages, and back near 0 once the broker is idle (the period resets)."""
    topic = "$SYS/broker/loops/longest_iteration_ms"
    assert wait_until(lambda: topic in watcher.latest, 3.5), "not published"
    pub = clients(sys_broker, uid + "-p", version=V5)
    for i in range(2000):
        pub.publish(f"{uid}/burst", b"x" * 512, qos=0)
    values = []
    deadline = time.time() + 4.5
    while time.time() < deadline:
        values.append(watcher.value(topic))
        time.sleep(0.1)
    assert all(v is not None and 0 <= v < 5000 for v in values), values
    # Once idle, a whole interval passes without a long iteration.
    assert wait_until(lambda: watcher.value(topic) is not None and watcher.value(topic) <= 50, 3.5), \
        watcher.latest.get(topic)
