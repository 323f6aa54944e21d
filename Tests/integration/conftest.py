"""Harness for Turnpike's end-to-end tests.

BROKER=turnpike (default) runs .build/debug/turnpike (override the path with
TURNPIKE_BIN); BROKER=mosquitto runs /usr/sbin/mosquitto with an equivalent
mosquitto.conf, which is the reference the tests were validated against.

TURNPIKE_CLUSTER=3 (`make test-cluster`): every broker a test starts is a cluster of that many
Turnpike nodes on one real three-server NATS cluster with JetStream (started once for the
session, each broker under its own subject prefix), and each new connection goes to the next
node: `broker.port` hands out the nodes' ports round-robin, so a subscriber and a publisher
opened one after the other are on different nodes. Tests of one node's own state (its $SYS
counters, its admin API, its process) are marked `single_node` and skipped in that mode.

Fixtures
  broker          module-scoped broker with the default limits
  broker_factory  start a fresh broker with overrides: broker_factory(max_queued_messages=5)
  clients         factory of connected paho clients (PahoClient), closed at teardown
  raw             factory of RawClient sockets, closed at teardown
  cli             mosquitto_pub / mosquitto_sub helpers
  uid             a short unique string for topics / client ids

Markers
  turnpike_only   skipped when BROKER=mosquitto
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

import rawmqtt

REPO = Path(__file__).resolve().parents[2]
BROKER_KIND = os.environ.get("BROKER", "turnpike").strip().lower()
TURNPIKE_BIN = Path(os.environ.get("TURNPIKE_BIN", REPO / ".build" / "debug" / "turnpike"))
MOSQUITTO_BIN = os.environ.get("MOSQUITTO_BIN", "/usr/sbin/mosquitto")
MOSQUITTO_PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
MOSQUITTO_SUB = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
IS_MOSQUITTO = BROKER_KIND == "mosquitto"
# mosquitto_sub writes through stdio: force line buffering so output can be read live.
STDBUF = ["stdbuf", "-oL"] if shutil.which("stdbuf") else []
IS_TURNPIKE = BROKER_KIND == "turnpike"
CLUSTER_NODES = int(os.environ.get("TURNPIKE_CLUSTER", "0") or 0) if IS_TURNPIKE else 0

DEFAULT_LIMITS = {
    "sys_interval": 1,
    "max_packet_size": 1048576,
    "max_inflight": 20,
    "max_queued_messages": 1000,
    "max_keepalive": 3600,
    "max_topic_alias": 10,
    "max_subscriptions_per_client": 0,
    "max_connections": 0,
}
SERVER_KEYS = {"sys_interval", "log_format"}
# Turnpike-only [limits] keys: accepted as overrides, written only when given.
EXTRA_LIMITS = {"connect_timeout", "accept_rate", "max_publish_rate", "max_publish_bytes_rate",
                "flapping_max_connects", "flapping_window", "flapping_ban", "strict_utf8", "receive_maximum",
                "ack_timeout", "log_format"}

_ACTIVE_BROKERS: list["Broker"] = []
_NATS = None                      # the NATS cluster of TURNPIKE_CLUSTER mode, started on first use
_cluster_counter = itertools.count()


def shared_nats():
    global _NATS
    if _NATS is None:
        from natscluster import NatsCluster
        _NATS = NatsCluster(3).start()
    return _NATS


# ---------------------------------------------------------------------------
# pytest hooks
# ---------------------------------------------------------------------------
def pytest_configure(config):
    config.addinivalue_line("markers", "turnpike_only: Turnpike-specific behaviour; skipped on mosquitto")
    config.addinivalue_line("markers", "single_node(why): one node's own state; skipped with TURNPIKE_CLUSTER")
    config.addinivalue_line("markers", "cluster_gap(why): a known defect of the cluster (issue 14), skipped with TURNPIKE_CLUSTER")
    if BROKER_KIND not in ("turnpike", "mosquitto"):
        raise pytest.UsageError(f"BROKER must be 'turnpike' or 'mosquitto', not {BROKER_KIND!r}")


def pytest_report_header(config):
    path = TURNPIKE_BIN if IS_TURNPIKE else MOSQUITTO_BIN
    mode = f", a cluster of {CLUSTER_NODES} nodes on NATS per broker, connections round-robin" if CLUSTER_NODES > 1 else ""
    return f"integration broker: {BROKER_KIND} ({path}){mode}"


def pytest_collection_modifyitems(config, items):
    if IS_MOSQUITTO:
        skip = pytest.mark.skip(reason="turnpike-only behaviour (BROKER=mosquitto)")
        for item in items:
            if "turnpike_only" in item.keywords:
                item.add_marker(skip)
    if CLUSTER_NODES > 1:
        for item in items:
            m = item.get_closest_marker("single_node")
            if m:
                item.add_marker(pytest.mark.skip(reason="one node's own state: " + (m.args[0] if m.args else "single node")))
            gap = item.get_closest_marker("cluster_gap")
            if gap:
                item.add_marker(pytest.mark.skip(reason="KNOWN CLUSTER GAP (issue 14): " + gap.args[0]))


def pytest_sessionfinish(session, exitstatus):
    if _NATS is not None:
        _NATS.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and _ACTIVE_BROKERS:
        for b in list(_ACTIVE_BROKERS):
            rep.sections.append((f"broker log ({b.kind} port {b.port}, last 150 lines)", b.log_tail(150)))


# ---------------------------------------------------------------------------
# Broker process
# ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toml_value(v) -> str:
    """A TOML literal for a str, bool, int or list of those (JSON strings are valid TOML)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(v) if isinstance(v, str) else str(v)


class Broker:
    host = "127.0.0.1"

    def __init__(self, kind: str = BROKER_KIND, auth: dict | None = None, bans: dict | None = None,
                 rules: dict | None = None, extra_toml: str = "", **overrides):
        unknown = set(overrides) - set(DEFAULT_LIMITS) - EXTRA_LIMITS
        if unknown:
            raise ValueError(f"unknown broker settings: {unknown}")
        self.kind = kind
        self._overrides = overrides
        self.limits = {**DEFAULT_LIMITS, **overrides}
        # TURNPIKE_CLUSTER mode: this broker is that many nodes (self.nodes), made on first start.
        self.clustered = kind == "turnpike" and CLUSTER_NODES > 1 and "[cluster]" not in extra_toml
        self.nodes: list[Broker] = []
        self._rr = 0
        # Turnpike's [auth] table, key -> value (str, bool or list of str); see test_auth.py.
        self.auth = auth or {}
        # Turnpike's [bans] table: client_ids, usernames, cidrs (lists of str).
        self.bans = bans or {}
        # Turnpike's [rules] table: dir (str), dead_letter (bool); see test_rules.py.
        self.rules = rules or {}
        # More of turnpike.toml, verbatim (e.g. [bridges.…] tables; see test_bridges.py).
        self.extra_toml = extra_toml
        self.dir = Path(tempfile.mkdtemp(prefix=f"tp-{kind}-"))
        self.log_path = self.dir / "broker.log"
        self._port = 0
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def port(self) -> int:
        """The port to connect to; in cluster mode the next node's, round-robin."""
        if self.nodes:
            node = self.nodes[self._rr % len(self.nodes)]
            self._rr += 1
            return node.port
        return self._port

    @port.setter
    def port(self, value: int):
        self._port = value

    # -- config ------------------------------------------------------------
    def _turnpike_config(self) -> Path:
        lim = self.limits
        lines = ["[server]", f"sys_interval = {lim['sys_interval']}"]
        if "log_format" in lim:
            lines.append(f"log_format = {toml_value(lim['log_format'])}")
        lines += ["", "[limits]"]
        lines += [f"{k} = {toml_value(v)}" for k, v in lim.items() if k not in SERVER_KEYS]
        if self.auth:
            lines += ["", "[auth]"] + [f"{k} = {toml_value(v)}" for k, v in self.auth.items()]
        if self.bans:
            lines += ["", "[bans]"] + [f"{k} = {toml_value(v)}" for k, v in self.bans.items()]
        if self.rules:
            lines += ["", "[rules]"] + [f"{k} = {toml_value(v)}" for k, v in self.rules.items()]
        path = self.dir / "turnpike.toml"
        path.write_text("\n".join(lines) + "\n" + self.extra_toml)
        return path

    def _mosquitto_config(self) -> Path:
        lim = self.limits
        lines = [
            "per_listener_settings false",
            "allow_anonymous true",
            "persistence false",
            f"sys_interval {lim['sys_interval']}",
            f"max_inflight_messages {lim['max_inflight']}",
            f"max_queued_messages {lim['max_queued_messages']}",
            f"max_keepalive {min(lim['max_keepalive'], 65535)}",
            f"max_packet_size {lim['max_packet_size']}",
            "log_dest stderr",
            "log_type all",
            "connection_messages true",
            "log_timestamp true",
            f"listener {self.port} 127.0.0.1",
            f"max_topic_alias {lim['max_topic_alias']}",
            f"max_connections {lim['max_connections'] or -1}",
        ]
        path = self.dir / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def command(self) -> list[str]:
        if self.kind == "turnpike":
            return [str(TURNPIKE_BIN), "serve", "--config", str(self._turnpike_config()),
                    "--bind", self.host, "--port", str(self.port),
                    "--data", str(self.dir / "data"), "--log-level", "debug"]
        return [MOSQUITTO_BIN, "-c", str(self._mosquitto_config())]

    # -- lifecycle -----------------------------------------------------------
    def _start_cluster(self, timeout: float) -> "Broker":
        nats = shared_nats()
        if not self.nodes:
            self.prefix = f"c{next(_cluster_counter)}p{os.getpid()}"
            urls = ", ".join(json.dumps(u) for u in nats.urls)
            for i in range(CLUSTER_NODES):
                # Every node on the same NATS server first (randomize_servers = false): a SUBACK
                # then covers publishers on every node (interest between NATS servers travels
                # over their routes, after the SUBACK).
                toml = (self.extra_toml + f'\n[cluster]\nnode_name = "node{i}"\nnats = [{urls}]\n'
                        f'subject_prefix = "{self.prefix}"\nrandomize_servers = false\n')
                self.nodes.append(Broker(self.kind, auth=self.auth, bans=self.bans, rules=self.rules,
                                         extra_toml=toml, **self._overrides))
        marks = [len(n.log_text()) for n in self.nodes]
        try:
            for n in self.nodes:
                n.start(timeout)
        except BaseException:
            self.stop()          # the nodes that did start must not outlive the test
            raise
        deadline = time.monotonic() + timeout
        for n, mark in zip(self.nodes, marks):
            while True:
                text = n.log_text()[mark:]
                if "session registry in" in text and "retained messages shared through" in text:
                    break
                if time.monotonic() > deadline or n.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"cluster node did not join NATS within {timeout}s:\n{n.log_tail(40)}")
                time.sleep(0.05)
        self.proc = self.nodes[0].proc
        self._rr = 0
        return self

    def start(self, timeout: float = 20.0) -> "Broker":
        if self.clustered:
            return self._start_cluster(timeout)
        if self.kind == "turnpike" and not TURNPIKE_BIN.exists():
            pytest.exit(f"Turnpike binary {TURNPIKE_BIN} not found; build it first "
                        f"(or run with BROKER=mosquitto)", returncode=3)
        self.port = free_port()
        (self.dir / "data").mkdir(exist_ok=True)
        cmd = self.command()
        self._log = open(self.log_path, "ab", buffering=0)
        self._log.write(("$ " + " ".join(cmd) + "\n").encode())
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.dir)
        _ACTIVE_BROKERS.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._stopped()
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode} during startup:\n{self.log_text()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{self.kind} did not accept connections on port {self.port} "
                           f"within {timeout}s:\n{self.log_text()}")

    def terminate(self):
        """Send SIGTERM without waiting."""
        if self.nodes:
            for n in self.nodes:
                n.terminate()
            return
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int | None:
        if self.nodes:
            codes = [n.wait(timeout) for n in self.nodes]
            return None if None in codes else next((c for c in codes if c), 0)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL. Returns the exit code."""
        if self.nodes:
            codes = [n.stop(timeout) for n in self.nodes]
            return next((c for c in codes if c), codes[0])
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._stopped()
        return self.proc.returncode

    def _stopped(self):
        if self in _ACTIVE_BROKERS:
            _ACTIVE_BROKERS.remove(self)
        if self._log:
            self._log.close()
            self._log = None

    def cleanup(self):
        if self.nodes and _NATS is not None:
            from natscluster import delete_streams
            base = self.prefix.upper()
            live = [u for u, p in zip(_NATS.urls, _NATS.procs) if p and p.poll() is None]
            if live:
                delete_streams(live[0], [f"{base}_RETAINED"] + [f"KV_{base}_SESSIONS_{i}" for i in range(4)])
        for n in self.nodes:
            n.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- logs --------------------------------------------------------------
    def log_text(self) -> str:
        if self.nodes:
            return "\n".join(n.log_text() for n in self.nodes)
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n: int = 150) -> str:
        if self.nodes:
            return "\n".join(f"== node{i} ==\n" + node.log_tail(n) for i, node in enumerate(self.nodes))
        return "\n".join(self.log_text().splitlines()[-n:])

    def __repr__(self):
        return f"<Broker {self.kind} port={self._port}{f' nodes={len(self.nodes)}' if self.nodes else ''}>"


@pytest.fixture(scope="module")
def broker():
    b = Broker().start()
    yield b
    b.stop()
    b.cleanup()


@pytest.fixture
def broker_factory():
    started: list[Broker] = []

    def make(**overrides) -> Broker:
        b = Broker(**overrides)
        started.append(b)
        return b.start()

    yield make
    for b in started:
        b.stop()
        b.cleanup()


_uid_counter = itertools.count()


@pytest.fixture
def uid(request) -> str:
    """Unique short token: test-name prefix + counter + random."""
    name = request.node.name.replace("[", "_").replace("]", "").replace("/", "_")[:24]
    return f"{name}-{next(_uid_counter)}-{uuid.uuid4().hex[:6]}"


# ---------------------------------------------------------------------------
# paho wrapper
# ---------------------------------------------------------------------------
V311 = 4
V5 = 5


class Msg:
    """Snapshot of a paho MQTTMessage (paho reuses nothing, but this is
    convenient and picklable)."""

    def __init__(self, m: mqtt.MQTTMessage):
        self.topic = m.topic
        self.payload = m.payload
        self.qos = m.qos
        self.retain = bool(m.retain)
        self.dup = bool(m.dup)
        self.mid = m.mid
        self.props = getattr(m, "properties", None)
        self.time = time.monotonic()

    def prop(self, name, default=None):
        if self.props is None:
            return default
        return getattr(self.props, name, default)

    def __repr__(self):
        return f"<Msg {self.topic} q{self.qos} r{int(self.retain)} {self.payload[:40]!r}>"


def props(packet_type, **kw) -> Properties:
    """Build paho Properties: props(PacketTypes.PUBLISH, ContentType="x")."""
    p = Properties(packet_type)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


class PahoClient:
    """A paho client running its network loop in a thread, with queues for
    inbound messages and blocking helpers for acks."""

    def __init__(self, broker: Broker, client_id: str = "", version: int = V5, clean: bool = True,
                 session_expiry: int | None = None, keepalive: int = 30, will: dict | None = None,
                 connect_props: dict | None = None, manual_ack: bool = False):
        self.broker = broker
        self.version = version
        proto = mqtt.MQTTv5 if version == V5 else (mqtt.MQTTv311 if version == V311 else mqtt.MQTTv31)
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                             clean_session=None if version == V5 else clean, protocol=proto,
                             reconnect_on_failure=False, manual_ack=manual_ack)
        self.clean = clean
        self.session_expiry = session_expiry
        self.keepalive = keepalive
        self.connect_props = connect_props or {}
        self.messages: queue.Queue[Msg] = queue.Queue()
        self._connack: queue.Queue = queue.Queue()
        self._subacks: dict[int, list] = {}
        self._unsubacks: dict[int, list] = {}
        self._cond = threading.Condition()
        self.disconnects: list = []
        self.disconnected = threading.Event()
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_disconnect = self._on_disconnect
        if will:
            wp = None
            if will.get("properties"):
                wp = props(PacketTypes.WILLMESSAGE, **will["properties"])
            self.c.will_set(will["topic"], will.get("payload", b""), will.get("qos", 0),
                            will.get("retain", False), properties=wp)
        self.session_present = None
        self.connack_rc = None
        self.connack_props = None

    # callbacks
    def _on_connect(self, c, userdata, flags, rc, properties):
        self.session_present = flags.session_present
        self.connack_rc = rc
        self.connack_props = properties
        self._connack.put(rc)

    def _on_message(self, c, userdata, m):
        self.messages.put(Msg(m))

    def _on_subscribe(self, c, userdata, mid, rcs, properties):
        with self._cond:
            self._subacks[mid] = rcs
            self._cond.notify_all()

    def _on_unsubscribe(self, c, userdata, mid, rcs, properties):
        with self._cond:
            self._unsubacks[mid] = rcs
            self._cond.notify_all()

    def _on_disconnect(self, c, userdata, flags, rc, properties):
        self.disconnects.append((rc, properties))
        self.disconnected.set()

    # actions
    def connect(self, timeout: float = 5.0) -> "PahoClient":
        kw = {}
        cp = None
        if self.version == V5:
            kw["clean_start"] = self.clean
            d = dict(self.connect_props)
            if self.session_expiry is not None:
                d["SessionExpiryInterval"] = self.session_expiry
            if d:
                cp = props(PacketTypes.CONNECT, **d)
        self.disconnected.clear()
        self.c.connect(self.broker.host, self.broker.port, keepalive=self.keepalive, properties=cp, **kw)
        self.c.loop_start()
        try:
            rc = self._connack.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no CONNACK") from None
        assert not rc.is_failure, f"connect refused: {rc}"
        return self

    def subscribe(self, topic, qos: int = 0, no_local=False, rap=False, rh=0,
                  sub_id: int | None = None, timeout: float = 5.0) -> list[int]:
        """Subscribe and wait for the SUBACK; returns the reason codes as ints."""
        if self.version == V5:
            opts = SubscribeOptions(qos=qos, noLocal=no_local, retainAsPublished=rap, retainHandling=rh)
            p = props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=sub_id) if sub_id else None
            if isinstance(topic, list):
                rc, mid = self.c.subscribe([(t, SubscribeOptions(qos=q)) for t, q in topic], properties=p)
            else:
                rc, mid = self.c.subscribe(topic, options=opts, properties=p)
        else:
            rc, mid = self.c.subscribe(topic, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS, rc
        with self._cond:
            ok = self._cond.wait_for(lambda: mid in self._subacks, timeout)
            assert ok, f"no SUBACK for {topic}"
            return [r.value for r in self._subacks.pop(mid)]

    def unsubscribe(self, topic, timeout: float = 5.0) -> list[int]:
        rc, mid = self.c.unsubscribe(topic)
        assert rc == mqtt.MQTT_ERR_SUCCESS, rc
        with self._cond:
            ok = self._cond.wait_for(lambda: mid in self._unsubacks, timeout)
            assert ok, f"no UNSUBACK for {topic}"
            return [r.value for r in self._unsubacks.pop(mid)]

    def publish(self, topic, payload=b"", qos=0, retain=False, wait=True, timeout: float = 5.0, **properties):
        p = props(PacketTypes.PUBLISH, **properties) if properties else None
        info = self.c.publish(topic, payload, qos, retain, properties=p)
        if wait:
            info.wait_for_publish(timeout)
            assert info.is_published(), f"publish to {topic} not acknowledged"
        return info

    def get(self, timeout: float = 5.0) -> Msg:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no message within {timeout}s") from None

    def collect(self, n: int, timeout: float = 5.0) -> list[Msg]:
        """Exactly n messages (fails if fewer arrive in time)."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"got {len(out)} of {n} messages within {timeout}s: {out[:10]}")
            try:
                out.append(self.messages.get(timeout=left))
            except queue.Empty:
                pass
        return out

    def drain(self, timeout: float = 0.5) -> list[Msg]:
        """Everything that arrives within ``timeout``."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            try:
                out.append(self.messages.get(timeout=left))
            except queue.Empty:
                return out

    def expect_none(self, timeout: float = 0.5):
        got = self.drain(timeout)
        assert not got, f"unexpected messages: {got}"

    def disconnect(self, **kw):
        if self.version == V5 and kw.get("session_expiry") is not None:
            p = props(PacketTypes.DISCONNECT, SessionExpiryInterval=kw["session_expiry"])
            self.c.disconnect(properties=p)
        else:
            self.c.disconnect()
        self.disconnected.wait(3)
        self.c.loop_stop()

    def kill(self):
        """Drop the TCP connection without DISCONNECT (abnormal close)."""
        sock = self.c.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.disconnected.wait(3)
        self.c.loop_stop()


class ClientFactory:
    def __init__(self):
        self.made: list[PahoClient] = []

    def __call__(self, broker: Broker, client_id: str = "", connect: bool = True, **kw) -> PahoClient:
        c = PahoClient(broker, client_id, **kw)
        self.made.append(c)
        if connect:
            c.connect()
        return c

    def close_all(self):
        for c in self.made:
            try:
                c.c.disconnect()
                c.c.loop_stop()
            except Exception:
                pass


@pytest.fixture
def clients():
    f = ClientFactory()
    yield f
    f.close_all()


@pytest.fixture
def raw():
    made: list[rawmqtt.RawClient] = []

    def make(broker: Broker, version: int = rawmqtt.MQTT311, **kw) -> rawmqtt.RawClient:
        c = rawmqtt.RawClient(broker.port, broker.host, version=version, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


# ---------------------------------------------------------------------------
# mosquitto_pub / mosquitto_sub
# ---------------------------------------------------------------------------
class SubProc:
    """A running mosquitto_sub whose messages are parsed from a -F format."""

    SEP = "\x1f"

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.lines: list[str] = []
        self.subscribed = threading.Event()
        self._cond = threading.Condition()
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for raw_line in self.proc.stdout:
            line = raw_line.decode(errors="replace").rstrip("\n")
            with self._cond:
                if line.startswith("MSG" + self.SEP):
                    self.lines.append(line)
                elif "received SUBACK" in line:
                    self.subscribed.set()
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def messages(self) -> list[dict]:
        out = []
        with self._cond:
            lines = list(self.lines)
        for line in lines:
            _, topic, qos, retain, payload = line.split(self.SEP, 4)
            out.append({"topic": topic, "qos": int(qos), "retain": retain == "1", "payload": payload})
        return out

    def wait_messages(self, n: int, timeout: float = 5.0) -> list[dict]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.lines) >= n or self.proc.poll() is not None, timeout)
        if self.proc.poll() is not None:
            # mosquitto_sub -C N exits right after printing its last message: let the reader
            # thread finish parsing that output before counting (this raced and returned []).
            self._t.join(2)
        return self.messages()

    def wait_exit(self, timeout: float = 10.0) -> int:
        rc = self.proc.wait(timeout)
        self._t.join(2)
        return rc

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(3)


class Cli:
    """Helpers around the mosquitto command line clients."""

    def __init__(self):
        self.procs: list[SubProc] = []

    @staticmethod
    def _version(v) -> str:
        return {5: "mqttv5", 4: "mqttv311", 3: "mqttv31"}.get(v, v)

    def pub(self, broker: Broker, topic: str, message: str | None = "x", qos: int = 0, version=4,
            retain: bool = False, extra: list[str] | None = None, timeout: float = 10.0,
            check: bool = True) -> subprocess.CompletedProcess:
        cmd = [MOSQUITTO_PUB, "-h", broker.host, "-p", str(broker.port), "-V", self._version(version),
               "-t", topic, "-q", str(qos)]
        cmd += ["-n"] if message is None else ["-m", message]
        if retain:
            cmd.append("-r")
        cmd += extra or []
        r = subprocess.run(cmd, capture_output=True, timeout=timeout)
        if check:
            assert r.returncode == 0, f"{cmd} -> {r.returncode}: {r.stderr.decode()}"
        return r

    def sub(self, broker: Broker, topics, qos: int = 0, version=4, count: int | None = None,
            wait_secs: int | None = 10, extra: list[str] | None = None, wait_subscribed: bool = True) -> SubProc:
        """Start mosquitto_sub (with -d so the SUBACK is visible) and by
        default wait until it has been subscribed."""
        if isinstance(topics, str):
            topics = [topics]
        fmt = "MSG" + SubProc.SEP + SubProc.SEP.join(["%t", "%q", "%r", "%p"])
        cmd = STDBUF + [MOSQUITTO_SUB, "-h", broker.host, "-p", str(broker.port), "-V", self._version(version),
               "-q", str(qos), "-d", "-F", fmt]
        for t in topics:
            cmd += ["-t", t]
        if count is not None:
            cmd += ["-C", str(count)]
        if wait_secs is not None:
            cmd += ["-W", str(wait_secs)]
        cmd += extra or []
        p = SubProc(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL))
        self.procs.append(p)
        if wait_subscribed:
            assert p.subscribed.wait(5), f"mosquitto_sub did not subscribe: {cmd}"
        return p

    def close(self):
        for p in self.procs:
            p.stop()


@pytest.fixture
def cli():
    c = Cli()
    yield c
    c.close()


# ---------------------------------------------------------------------------
# small helpers usable from tests (import from conftest is fine: it is on sys.path)
# ---------------------------------------------------------------------------
def wait_until(pred, timeout: float = 5.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return pred()


def assert_pubsub_works(broker: Broker, tag: str = "health"):
    """Broker still serves clients: a raw v3.1.1 subscriber receives a QoS 1
    message from a raw publisher."""
    topic = f"health/{tag}/{uuid.uuid4().hex[:8]}"
    sub = rawmqtt.RawClient(broker.port, broker.host)
    pub = rawmqtt.RawClient(broker.port, broker.host)
    try:
        assert sub.connect(f"hs-{uuid.uuid4().hex[:8]}").rc == 0
        ack = sub.subscribe([(topic, 1)])
        assert ack.codes == [1]
        assert pub.connect(f"hp-{uuid.uuid4().hex[:8]}").rc == 0
        pub.publish(topic, b"ok", qos=1)
        p = sub.expect(rawmqtt.PUBLISH, 5)
        assert p.topic == topic and p.payload == b"ok"
        sub.send(rawmqtt.puback(p.pid))
    finally:
        sub.disconnect()
        pub.disconnect()
