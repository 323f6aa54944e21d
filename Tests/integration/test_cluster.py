"""Clustering on NATS: three Turnpike nodes on a real three-node NATS cluster (natscluster.py).
Messages published on one node reach subscribers on the others exactly as on one node."""

import signal
import time

import pytest

import rawmqtt as R
from conftest import Broker, free_port, wait_until
from natscluster import NatsCluster
from test_dashboard import browser  # noqa: F401 (the headless Chromium fixture)

pytestmark = pytest.mark.turnpike_only

V3, V5 = R.MQTT311, R.MQTT5


@pytest.fixture(scope="module")
def nats():
    c = NatsCluster(3).start()
    yield c
    c.stop()


@pytest.fixture
def nodes(nats, request):
    """Three Turnpike nodes, node i connected to NATS server i first (all URLs given)."""
    made = []
    prefix = "t" + str(abs(hash(request.node.name)) % 10**8)      # each test its own subjects

    def make(n: int = 3, admin: str = "", **kw):
        """admin: an [admin] table with {port} where each node's admin port goes (b.admin_port)."""
        for i in range(n):
            urls = nats.urls[i:] + nats.urls[:i]
            toml = f'\n[cluster]\nnode_name = "node{i}"\nnats = [{", ".join(repr(u).replace(chr(39), chr(34)) for u in urls)}]\n' \
                   f'subject_prefix = "{prefix}"\n'
            port = free_port()
            b = Broker(extra_toml=toml + admin.format(port=port), **kw).start()
            b.admin_port = port
            made.append(b)
        for b in made:
            assert wait_until(lambda: "cluster: connected" in b.log_text() or "(connected to" in b.log_text(), 10), b.log_tail(40)
        # Every node has seen the others' heartbeats.
        for b in made:
            assert wait_until(lambda: all(f"node node{j} is here" in b.log_text() for j in range(n) if made[j] is not b), 10), b.log_tail(40)
        return made

    yield make
    for b in made:
        b.stop()
        b.cleanup()


def settle():
    """Interest crosses NATS routes asynchronously after SUBACK."""
    time.sleep(0.5)


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_message_published_on_b_reaches_a_in_order_once(nodes, qos):
    a, b, _ = nodes()
    sub = R.RawClient(a.port, a.host, version=V5)
    assert sub.connect("sub-a").rc == 0
    assert sub.subscribe([("cars/+/telemetry", qos)]).codes == [qos]
    settle()
    pub = R.RawClient(b.port, b.host, version=V5)
    assert pub.connect("car-b").rc == 0
    for n in range(50):
        pub.publish("cars/car-b/telemetry", f"{n}".encode(), qos=qos, pid=n + 1)
    got = []
    deadline = time.monotonic() + 10
    while len(got) < 50 and time.monotonic() < deadline:
        p = sub.try_recv(0.5)
        if p is None:
            continue
        if p.type == R.PUBREL:
            sub.send(R.pubcomp(p.pid, V5))
            continue
        assert p.type == R.PUBLISH
        got.append(int(p.payload))
        assert p.topic == "cars/car-b/telemetry" and p.qos == qos
        if qos == 1:
            sub.send(R.puback(p.pid, V5))
        elif qos == 2:
            sub.send(R.pubrec(p.pid, V5))
    assert got == list(range(50))
    while (p := sub.try_recv(0.5)) is not None:          # nothing twice
        assert p.type == R.PUBREL, p
        sub.send(R.pubcomp(p.pid, V5))
    pub.close()
    sub.close()


def test_filters_behave_as_on_one_node(nodes):
    """`+`, `#` (with its parent), `$` topics, and levels with '.', '*', '>', spaces, empty levels,
    non-ASCII: every subscriber on A gets exactly what MQTT matching says, once (also the ones
    matched by several of its filters)."""
    a, b, c = nodes()
    filters = ["a/#", "a/+", "+/b", "#", "a//+", "x.y/+", "$dlq/#", "sp ace/+"]
    topics = ["a", "a/b", "a/b/c", "/b", "a//z", "x.y/*", "x.y/>", "$dlq/q", "sp ace/é", "a/", "b"]
    subs = {}
    for i, f in enumerate(filters):
        s = R.RawClient(a.port, a.host, version=V5)
        assert s.connect(f"s{i}").rc == 0
        assert s.subscribe([(f, 0)]).codes == [0]
        subs[f] = s
    multi = R.RawClient(a.port, a.host, version=V5)               # overlapping filters, one client
    assert multi.connect("multi").rc == 0
    assert multi.subscribe([("a/#", 0), ("a/+", 0), ("#", 0)]).codes == [0, 0, 0]
    settle()
    pub = R.RawClient(b.port, b.host, version=V5)
    assert pub.connect("pub").rc == 0
    for t in topics:
        pub.publish(t, t.encode(), qos=0)
    time.sleep(1.0)

    def matches(f, t):
        fl, tl = f.split("/"), t.split("/")
        if t.startswith("$") and fl[0] in ("+", "#"):
            return False
        for i, l in enumerate(fl):
            if l == "#":
                return len(tl) >= i
            if i >= len(tl) or (l != "+" and l != tl[i]):
                return False
        return len(fl) == len(tl)

    for f, s in subs.items():
        got = []
        while (p := s.try_recv(0.2)) is not None:
            if p.type == R.PUBLISH:
                got.append(p.topic)
        assert sorted(got) == sorted(t for t in topics if matches(f, t)), f
    got = []
    while (p := multi.try_recv(0.2)) is not None:
        if p.type == R.PUBLISH:
            got.append(p.topic)
    assert sorted(got) == sorted(t for t in topics if any(matches(f, t) for f in ("a/#", "a/+", "#"))), got


def test_shared_group_across_nodes_gets_each_message_once(nodes):
    a, b, c = nodes()
    members = []
    for node, name in ((a, "m-a"), (c, "m-c")):
        s = R.RawClient(node.port, node.host, version=V5)
        assert s.connect(name).rc == 0
        assert s.subscribe([("$share/g/jobs/+", 1)]).codes == [1]
        members.append(s)
    settle()
    pub = R.RawClient(b.port, b.host, version=V5)
    assert pub.connect("dispatcher").rc == 0
    for first in range(0, 1000, 100):   # within the Receive Maximum (128): PUBACKs wait for NATS
        for n in range(first, first + 100):
            pub.send(R.publish("jobs/x", str(n).encode(), qos=1, pid=n + 1, version=V5))
        for _ in range(100):
            pub.expect(R.PUBACK, 10)
    got = {0: [], 1: []}
    deadline = time.monotonic() + 15
    while sum(map(len, got.values())) < 1000 and time.monotonic() < deadline:
        for i, s in enumerate(members):
            p = s.try_recv(0.05)
            if p is not None and p.type == R.PUBLISH:
                got[i].append(int(p.payload))
                s.send(R.puback(p.pid, V5))
    everything = got[0] + got[1]
    assert sorted(everything) == list(range(1000))          # each exactly once in the cluster
    assert got[0] and got[1], (len(got[0]), len(got[1]))    # and both nodes' members served


def test_cluster_figures_in_sys(nodes):
    a, b = nodes(2)
    s = R.RawClient(a.port, a.host, version=V5)
    assert s.connect("sysreader").rc == 0
    s.subscribe([("$SYS/broker/cluster/#", 0)])
    got = {}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (got.get("nodes"), got.get("nodes/list")) != ("2", "node0,node1"):
        p = s.try_recv(0.5)
        if p is not None and p.type == R.PUBLISH:
            got[p.topic.removeprefix("$SYS/broker/cluster/")] = p.payload.decode()
    assert got["nodes"] == "2" and got["node"] == "node0" and got["nats/connected"] == "1", got
    assert got["nodes/list"] == "node0,node1"


def retained_on(node, topic_filter, cid, wait=1.0):
    s = R.RawClient(node.port, node.host, version=V5)
    assert s.connect(cid).rc == 0
    s.subscribe([(topic_filter, 0)])
    got = {}
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        p = s.try_recv(0.1)
        if p is not None and p.type == R.PUBLISH:
            assert p.retain
            got[p.topic] = p.payload
    s.close()
    return got


def test_retained_message_set_on_a_reaches_a_new_subscriber_on_c(nodes):
    a, b, c = nodes()
    assert wait_until(lambda: all("retained messages shared through JetStream" in n.log_text() for n in (a, b, c)), 15)
    p = R.RawClient(a.port, a.host, version=V5)
    assert p.connect("car-r").rc == 0
    p.publish("cars/car-r/state", b"parked", qos=1, retain=True)
    p.publish("cars/car-q/state", b"driving", qos=1, retain=True)
    assert wait_until(lambda: retained_on(c, "cars/+/state", "late-c", 0.3) == {"cars/car-r/state": b"parked", "cars/car-q/state": b"driving"}, 10)
    # Cleared on B: gone on C too; replaced on C: seen on A.
    q = R.RawClient(b.port, b.host, version=V5)
    assert q.connect("clearer").rc == 0
    q.publish("cars/car-q/state", b"", qos=1, retain=True)
    r = R.RawClient(c.port, c.host, version=V5)
    assert r.connect("replacer").rc == 0
    r.publish("cars/car-r/state", b"charging", qos=1, retain=True)
    assert wait_until(lambda: retained_on(a, "cars/+/state", "late-a", 0.3) == {"cars/car-r/state": b"charging"}, 10)
    assert wait_until(lambda: retained_on(c, "cars/+/state", "late-c2", 0.3) == {"cars/car-r/state": b"charging"}, 10)


def test_retained_message_acknowledged_on_b_is_there_for_a_subscriber_on_c_at_once(nodes):
    """The PUBACK of a retained message waits for JetStream to store it (replicated), and a
    SUBACK waits for the stream up to then: no pause needed between the two, on any node."""
    a, b, c = nodes()
    pub = R.RawClient(b.port, b.host, version=V5)
    assert pub.connect("retainer").rc == 0
    readers = []
    for n in range(20):          # connected before, so nothing but the SUBSCRIBE follows the PUBACK
        sub = R.RawClient((c, a)[n % 2].port, c.host, version=V5)
        assert sub.connect(f"reader{n}").rc == 0
        readers.append(sub)
    for n, sub in enumerate(readers):
        pub.send(R.publish(f"state/car{n}", f"v{n}".encode(), qos=1, retain=True, pid=n + 1, version=V5))
        pub.expect(R.PUBACK, 5)
        assert sub.subscribe([(f"state/car{n}", 1)]).codes == [1]
        p = sub.expect(R.PUBLISH, 5)
        assert (p.payload, p.retain) == (f"v{n}".encode(), True), n
        sub.disconnect()


def test_a_node_that_joins_later_gets_the_retained_messages(nats, nodes):
    a, b = nodes(2)
    assert wait_until(lambda: "retained messages shared through JetStream" in a.log_text(), 15)
    p = R.RawClient(a.port, a.host, version=V5)
    assert p.connect("car-j").rc == 0
    for n in range(20):
        p.publish(f"fleet/{n}/config", f"v{n}".encode(), qos=1, retain=True)
    prefix_line = next(l for l in a.log_text().splitlines() if "JetStream stream" in l)
    stream = prefix_line.split("JetStream stream ")[1].split(" ")[0]
    prefix = stream.removesuffix("_RETAINED").lower()
    toml = f'\n[cluster]\nnode_name = "node9"\nnats = ["{nats.urls[2]}"]\nsubject_prefix = "{prefix}"\n'
    c = Broker(extra_toml=toml).start()
    try:
        assert wait_until(lambda: len(retained_on(c, "fleet/+/config", "joiner", 0.3)) == 20, 15), \
            "\n".join(l for l in c.log_text().splitlines() if "clientid=" not in l)[-3000:]
        assert retained_on(c, "fleet/+/config", "joiner2", 0.3) == {f"fleet/{n}/config": f"v{n}".encode() for n in range(20)}
    finally:
        c.stop()
        c.cleanup()


def wait_registry(*brokers):
    for n in brokers:
        assert wait_until(lambda: "session registry in" in n.log_text(), 15), n.log_tail(30)


def test_takeover_moves_the_session_with_its_queued_messages(nodes):
    """A car connected to A with 100 unacknowledged QoS 1 commands reconnects through B: A's
    connection gets DISCONNECT 0x8E, B says session present and delivers all 100, in order."""
    a, b, c = nodes(max_inflight=20)
    wait_registry(a, b, c)
    car = R.RawClient(a.port, a.host, version=V5)
    assert car.connect("car-t", clean=False, properties={"SessionExpiryInterval": 3600}).rc == 0
    assert car.subscribe([("cmd/car-t", 1)]).codes == [1]
    backend = R.RawClient(a.port, a.host, version=V5)
    assert backend.connect("backend-t").rc == 0
    for n in range(100):
        backend.send(R.publish("cmd/car-t", str(n).encode(), qos=1, pid=n + 1, version=V5))
    for _ in range(100):
        backend.expect(R.PUBACK, 10)
    first = [car.expect(R.PUBLISH, 5) for _ in range(20)]      # the inflight window; never acked
    assert [int(p.payload) for p in first] == list(range(20))

    moved = R.RawClient(b.port, b.host, version=V5)
    ack = moved.connect("car-t", clean=False, properties={"SessionExpiryInterval": 3600})
    assert ack.rc == 0 and ack.session_present, ack
    gone = car.expect(R.DISCONNECT, 5)
    assert gone.rc == 0x8E
    got = []
    deadline = time.monotonic() + 10
    while len(got) < 100 and time.monotonic() < deadline:
        p = moved.try_recv(0.5)
        if p is not None and p.type == R.PUBLISH:
            got.append((int(p.payload), p.dup))
            moved.send(R.puback(p.pid, V5))
    assert [n for n, _ in got] == list(range(100))
    assert all(dup for n, dup in got[:20]) and not any(dup for n, dup in got[20:])
    # Its subscription moved too: a command published on C reaches it on B.
    settle()
    other = R.RawClient(c.port, c.host, version=V5)
    assert other.connect("backend-c").rc == 0
    other.publish("cmd/car-t", b"after", qos=1)
    p = moved.expect(R.PUBLISH, 5)
    assert p.payload == b"after"
    moved.send(R.puback(p.pid, V5))
    assert moved.try_recv(0.5) is None                            # and only once


@pytest.mark.parametrize("stay", [0.3, 0.02], ids=["hops", "quick-hops"])
def test_car_moving_between_nodes_under_load_loses_nothing(nodes, stay):
    """A backend on B sends QoS 1 commands without pause while the car's persistent session
    moves A → C → A → C …: every command B acknowledged reaches the car, once and in order
    (a resend after a reconnect carries DUP). Make before break: the old node keeps the
    session's subscriptions until the new one has them on NATS, then sends what still came.
    Quick hops move on before the last move's rest arrived (~0.1 s); the car reads little
    then, so the queue limit is raised above what the backend can send (a full queue drops by
    design, logged)."""
    import threading
    a, b, c = nodes(max_queued_messages=100_000)
    wait_registry(a, b, c)
    props = {"SessionExpiryInterval": 3600}
    car = R.RawClient(a.port, a.host, version=V5)
    assert car.connect("car-m", clean=False, properties=props).rc == 0
    assert car.subscribe([("cmd/car-m/#", 1)]).codes == [1]
    settle()
    acked, stop = [], threading.Event()

    def backend():
        pub = R.RawClient(b.port, b.host, version=V5)
        assert pub.connect("backend-m").rc == 0
        n = 0
        while not stop.is_set() and n < 5000:
            pub.send(R.publish(f"cmd/car-m/{n % 3}", str(n).encode(), qos=1, pid=n % 60000 + 1, version=V5))
            pub.expect(R.PUBACK, 10)
            acked.append(n)
            n += 1
    t = threading.Thread(target=backend)
    t.start()
    got = []

    def read(client, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            p = client.try_recv(0.02)
            if p is not None and p.type == R.PUBLISH:
                got.append((int(p.payload), p.dup))
                client.send(R.puback(p.pid, V5))
    try:
        read(car, 0.3)
        for hop in range(8):
            node = (c, a)[hop % 2]
            moved = R.RawClient(node.port, node.host, version=V5)
            ack = moved.connect("car-m", clean=False, properties=props)
            assert ack.rc == 0 and ack.session_present, (hop, ack)
            car = moved
            read(car, stay)
    finally:
        stop.set()
        t.join(15)
    assert acked, "the backend published nothing"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not set(acked) <= {n for n, _ in got}:
        read(car, 0.3)
    seen = [n for n, _ in got]
    missing = sorted(set(acked) - set(seen))
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged commands lost, first {missing[:10]}"
    firsts = [n for n, dup in got if not dup]
    assert len(firsts) == len(set(firsts)), "a command came twice without DUP"
    assert firsts == sorted(firsts), "commands out of order"


def test_clean_start_on_another_node_disconnects_the_old_connection(nodes):
    a, b, _ = nodes()
    wait_registry(a, b)
    old = R.RawClient(a.port, a.host, version=V5)
    assert old.connect("car-c", clean=False, properties={"SessionExpiryInterval": 3600}).rc == 0
    new = R.RawClient(b.port, b.host, version=V5)
    ack = new.connect("car-c", clean=True)
    assert ack.rc == 0 and not ack.session_present
    assert old.expect(R.DISCONNECT, 5).rc == 0x8E
    # v3.1.1 on the same path: the old connection is closed.
    v3 = R.RawClient(a.port, a.host, version=V3)
    assert v3.connect("car-c3", clean=False).rc == 0
    v3b = R.RawClient(b.port, b.host, version=V3)
    ack = v3b.connect("car-c3", clean=False)
    assert ack.rc == 0 and ack.session_present
    closed, _ = v3.wait_closed(5)
    assert closed


def collect(client, n, timeout=10.0, ack=True):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        p = client.try_recv(0.2)
        if p is not None and p.type == R.PUBLISH:
            got.append(p)
            if ack and p.qos == 1:
                client.send(R.puback(p.pid, V5))
    return got


def test_node_killed_during_load_its_clients_resume_on_the_others(nodes):
    """kill -9 of node B: A and C keep serving; B's cars reconnect to C (session present 0:
    B's sessions were on B alone), resubscribe, and every message published after that is
    delivered exactly; the others notice B is gone within seconds."""
    a, b, c = nodes()
    wait_registry(a, b, c)
    s = R.RawClient(a.port, a.host, version=V5)
    assert s.connect("sink-a").rc == 0
    assert s.subscribe([("fleet/+/t", 1)]).codes == [1]
    watcher = R.RawClient(b.port, b.host, version=V5)
    assert watcher.connect("watcher-b", clean=False, properties={"SessionExpiryInterval": 3600}).rc == 0
    assert watcher.subscribe([("alerts/#", 1)]).codes == [1]
    settle()
    cars = []
    for i in range(5):
        car = R.RawClient(b.port, b.host, version=V5)
        assert car.connect(f"car{i}", clean=False, properties={"SessionExpiryInterval": 3600}).rc == 0
        cars.append(car)
    for n in range(20):
        for i, car in enumerate(cars):
            car.send(R.publish(f"fleet/car{i}/t", f"{i}:{n}".encode(), qos=1, pid=n + 1, version=V5))
    assert len(collect(s, 100)) == 100

    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait(10)
    b._stopped()
    # A and C go on serving.
    for node in (a, c):
        probe = R.RawClient(node.port, node.host, version=V5)
        assert probe.connect(f"probe-{node.port}").rc == 0
        probe.send(R.pingreq())
        assert probe.expect(R.PINGRESP, 5).type == R.PINGRESP
        probe.close()
    # B's clients come back through C.
    moved = []
    for i in range(5):
        car = R.RawClient(c.port, c.host, version=V5)
        t0 = time.monotonic()
        ack = car.connect(f"car{i}", clean=False, properties={"SessionExpiryInterval": 3600})
        assert ack.rc == 0 and not ack.session_present, ack
        assert time.monotonic() - t0 < 3.0
        moved.append(car)
    w2 = R.RawClient(c.port, c.host, version=V5)
    ack = w2.connect("watcher-b", clean=False, properties={"SessionExpiryInterval": 3600})
    assert ack.rc == 0 and not ack.session_present
    assert w2.subscribe([("alerts/#", 1)]).codes == [1]
    settle()
    for n in range(20, 40):
        for i, car in enumerate(moved):
            car.send(R.publish(f"fleet/car{i}/t", f"{i}:{n}".encode(), qos=1, pid=n + 1, version=V5))
    got = collect(s, 100)
    assert sorted(p.payload.decode() for p in got) == sorted(f"{i}:{n}" for i in range(5) for n in range(20, 40))
    alarm = R.RawClient(a.port, a.host, version=V5)
    assert alarm.connect("alarm-a").rc == 0
    for n in range(10):
        alarm.publish("alerts/x", str(n).encode(), qos=1, pid=n + 1)
    assert [int(p.payload) for p in collect(w2, 10)] == list(range(10))
    assert collect(s, 1, timeout=0.5) == [] and collect(w2, 1, timeout=0.5) == []   # nothing twice
    assert wait_until(lambda: "node node1 is gone" in a.log_text() and "node node1 is gone" in c.log_text(), 8)


def test_nodes_route_and_dashboard_list_the_cluster(nodes, browser):
    """GET /api/v5/nodes on one node lists both, with the cluster's figures on its own entry;
    the dashboard shows the node list (it is hidden on a broker without a cluster)."""
    import requests
    from selenium.webdriver.common.by import By
    from test_dashboard import KEY, SECRET, sign_in, text, wait_text

    a, b = nodes(2, admin=f'\n[admin]\nport = {{port}}\napi_key = "{KEY}"\napi_secret = "{SECRET}"\n')
    car = R.RawClient(b.port, b.host, version=V5)
    assert car.connect("car-on-b").rc == 0

    def listed():
        r = requests.get(f"http://127.0.0.1:{a.admin_port}/api/v5/nodes", auth=(KEY, SECRET), timeout=5)
        assert r.status_code == 200, r.text
        return r.json()
    got = listed()
    assert [(n["node"], n["self"]) for n in got] == [("node0", True), ("node1", False)], got
    me = got[0]
    assert me["cluster"]["nodes"] == 2 and me["cluster"]["nats/connected"] == 1 and me["node_status"] == "running"
    assert me["live_connections"] == 0 and me["version"]
    sign_in(browser, a)
    wait_text(browser, 'tr[data-node="node1"] td:nth-child(2)', "running")
    assert browser.find_element(By.ID, "cluster").is_displayed()
    assert text(browser, 'tr[data-node="node0"]').startswith("node0 (this node)")
    assert text(browser, "#node") == "node0"
    # And in Prometheus's terms (a real parser).
    from prometheus_client.parser import text_string_to_metric_families
    body = requests.get(f"http://127.0.0.1:{a.admin_port}/metrics", timeout=5).text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(body) for s in f.samples}
    assert samples[("turnpike_cluster_nodes", ())] == 2
    assert samples[("turnpike_cluster_nats_connected", ())] == 1
    assert ("turnpike_cluster_messages_forwarded_total", (("direction", "out"),)) in samples
    car.close()


def test_a_nats_server_that_dies_is_failed_over(nats, nodes):
    """The NATS server node0 is connected to is killed: node0's client reconnects to another URL,
    subscribes again, and a subscriber on node0 gets what node1 publishes afterwards. (Last in
    the file: it restarts the server for whatever runs after.)"""
    import re
    a, b = nodes(2)
    sub = R.RawClient(a.port, a.host, version=V5)
    assert sub.connect("sub-failover").rc == 0
    assert sub.subscribe([("fo/#", 1)]).codes == [1]
    port = int(re.search(r"connected to nats://127\.0\.0\.1:(\d+)", a.log_text()).group(1))
    i = nats.client_ports.index(port)
    nats.kill_node(i)
    try:
        assert wait_until(lambda: "cluster: connected to NATS" in a.log_text(), 15), a.log_tail(30)
        pub = R.RawClient(b.port, b.host, version=V5)
        assert pub.connect("pub-failover").rc == 0
        got = []

        def delivered():
            pub.publish("fo/x", str(len(got)).encode(), qos=1)
            got.extend(collect(sub, 1, timeout=0.3))
            return len(got) > 0
        assert wait_until(delivered, 15)                    # the interest is back on the others
        for n in range(20):
            # A PUBACK waits for the node's NATS server; on a node whose own NATS connection
            # went through the failover one was seen held 3.0 s (2 of 8 runs; cause not found,
            # noted): this test is about delivery after the failover, not that delay.
            pub.publish("fo/y", str(n).encode(), qos=1, timeout=15)
        assert [int(p.payload) for p in collect(sub, 20) if p.topic == "fo/y"] == list(range(20))
    finally:
        nats.start_node(i)
        nats.wait_routes()
