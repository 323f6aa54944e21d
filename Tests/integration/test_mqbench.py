"""mqbench end to end, against Turnpike and against mosquitto in the same run.

Each test runs the mqbench binary (MQBENCH_BIN, default .build/debug/mqbench) as a subprocess
and reads its --json report. Both brokers are started here (whatever BROKER says), so every
flag is checked against both.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO, Broker, free_port

MQBENCH = Path(os.environ.get("MQBENCH_BIN", REPO / ".build" / "debug" / "mqbench"))


@pytest.fixture(scope="module", params=["turnpike", "mosquitto"])
def mqb_broker(request):
    if not MQBENCH.exists():
        pytest.skip(f"mqbench binary {MQBENCH} not built")
    b = Broker(kind=request.param).start()
    yield b
    b.stop()
    b.cleanup()


def base(broker: Broker) -> list[str]:
    return ["-h", broker.host, "-p", str(broker.port)]


def run(args: list[str], timeout: float = 20) -> tuple[dict, str]:
    """Runs mqbench to completion with --json; returns (report, stderr)."""
    r = subprocess.run([str(MQBENCH), *args, "--json"], capture_output=True, timeout=timeout)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 0, f"mqbench {args} -> {r.returncode}\n{err}"
    return json.loads(r.stdout), err


class Background:
    """A long-running mqbench (sub, conn) stopped with SIGINT; its stderr is read live."""

    def __init__(self, args: list[str]):
        self.proc = subprocess.Popen([str(MQBENCH), *args, "--json", "--duration", "60"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.err: list[str] = []
        self.cond = threading.Condition()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.proc.stderr:
            with self.cond:
                self.err.append(line.decode(errors="replace"))
                self.cond.notify_all()

    def wait_for(self, text: str, timeout: float = 10) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: any(text in l for l in self.err) or self.proc.poll() is not None, timeout)
        assert ok and any(text in l for l in self.err), f"no {text!r} in mqbench stderr:\n{''.join(self.err)}"

    def stop(self, settle: float = 0.5) -> dict:
        time.sleep(settle)
        self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=15)
        self.t.join(2)
        assert self.proc.returncode == 0, "".join(self.err)
        return json.loads(out)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def background():
    made: list[Background] = []

    def start(args):
        b = Background(args)
        made.append(b)
        return b

    yield start
    for b in made:
        b.kill()


# ---------------------------------------------------------------------------
# Exact counts
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_exact_counts(mqb_broker, background, uid, qos):
    topic = f"t/{uid}"
    sub = background(["sub", *base(mqb_broker), "-c", "2", "-t", topic, "-q", str(qos)])
    sub.wait_for("all 2 clients connected and subscribed")
    pub, _ = run(["pub", *base(mqb_broker), "-c", "5", "-L", "200", "-q", str(qos), "-I", "0", "-t", topic])
    assert pub["sent"] == 1000
    assert pub["acked"] == (1000 if qos else 0)
    assert pub["unacked"] == 0 and pub["publish_failed"] == 0
    assert pub["errors_total"] == 0, pub["errors"]
    rep = sub.stop()
    assert rep["received"] == 2000, rep
    assert rep["errors_total"] == 0, rep["errors"]
    lat = rep["latency_ms"]
    assert lat["count"] == 2000 and 0 <= lat["p50"] <= lat["p99"] <= lat["max"]


def test_workers_merge_counts(mqb_broker, background, uid):
    """More clients than --max-per-process: worker processes, merged report, exact totals."""
    topic = f"w/{uid}"
    sub = background(["sub", *base(mqb_broker), "-c", "3", "-t", topic, "-q", "1", "--max-per-process", "2"])
    sub.wait_for("all 1 clients connected and subscribed")  # the smaller worker
    sub.wait_for("all 2 clients connected and subscribed")
    pub, _ = run(["pub", *base(mqb_broker), "-c", "7", "-L", "20", "-q", "1", "-F", "4", "-I", "0", "-t", topic,
                  "--max-per-process", "3"])
    assert pub["workers"] == 3 and pub["clients"] == 7 and pub["connected"] == 7
    assert pub["sent"] == 140 and pub["acked"] == 140 and pub["unacked"] == 0
    rep = sub.stop()
    assert rep["workers"] == 2 and rep["received"] == 3 * 140
    assert rep["latency_ms"]["count"] == 3 * 140


# ---------------------------------------------------------------------------
# Connection flags
# ---------------------------------------------------------------------------
def test_conn_rate_and_interval(mqb_broker):
    rep, err = run(["conn", *base(mqb_broker), "-c", "200", "-R", "1000", "--duration", "1.5"])
    assert rep["connected"] == 200 and rep["connect_failed"] == 0, rep["errors"]
    assert rep["connect_ms"]["count"] == 200
    assert "all 200 clients connected" in err
    rep, _ = run(["conn", *base(mqb_broker), "-c", "20", "-i", "20", "--duration", "1"])
    assert rep["connected"] == 20


@pytest.mark.parametrize("version", [3, 4, 5])
def test_versions(mqb_broker, version):
    rep, _ = run(["pub", *base(mqb_broker), "-V", str(version), "-c", "2", "-L", "5", "-q", "1", "-I", "0",
                  "-t", f"v/{version}", "-k", "30", "--prefix", f"v{version}"])
    assert rep["connected"] == 2 and rep["acked"] == 10 and rep["errors_total"] == 0


def test_session_expiry_without_clean_start(mqb_broker, uid):
    """-C false -x 60 keeps the subscription while the client is away: queued messages arrive
    when the same client ids (--prefix, -n) come back."""
    topic = f"s/{uid}"
    sess = ["sub", *base(mqb_broker), "-V", "5", "-C", "false", "-x", "60", "-c", "2", "-n", "7",
            "--prefix", uid[-20:], "-t", topic, "-q", "1"]
    first, _ = run(sess + ["--duration", "0.5"])
    assert first["subscribed"] == 2
    pub, _ = run(["pub", *base(mqb_broker), "-c", "1", "-L", "10", "-q", "1", "-I", "0", "-t", topic])
    assert pub["acked"] == 10
    again, _ = run(sess + ["--duration", "1"])
    assert again["received"] == 20, again


def test_username_and_topic_placeholders(mqb_broker, clients, uid):
    """%c, %u and %i in the topic; -u/-P are sent (both brokers allow anonymous, so the
    username's use is seen through %u)."""
    watcher = clients(mqb_broker, f"watch-{uid}"[:23])
    watcher.subscribe(f"tc/{uid}/#", qos=1)
    rep, _ = run(["pub", *base(mqb_broker), "-c", "2", "-n", "5", "-L", "1", "-q", "1", "-I", "0", "--prefix", "px",
                  "-u", "bob", "-P", "secret", "-t", f"tc/{uid}/%c/%u/%i"])
    assert rep["acked"] == 2
    got = set()
    for _ in range(2):
        got.add(watcher.messages.get(timeout=5).topic)
    assert got == {f"tc/{uid}/px_pub_5/bob/5", f"tc/{uid}/px_pub_6/bob/6"}


def test_spread_over_topics_and_ack_latency(mqb_broker, clients, uid):
    """--spread N: %i takes the N numbers from -n on in turn; each topic gets the same share, and
    QoS 1 publishers report PUBLISH-to-PUBACK latency for every message."""
    watcher = clients(mqb_broker, f"spread-{uid}"[:23])
    watcher.subscribe(f"sp/{uid}/#", qos=1)
    rep, _ = run(["pub", *base(mqb_broker), "-c", "3", "-n", "10", "-L", "4", "-q", "1", "-I", "0",
                  "--spread", "6", "-t", f"sp/{uid}/%i"])
    assert rep["acked"] == 12
    assert rep["ack_ms"]["count"] == 12 and rep["ack_ms"]["max"] > 0
    topics = [watcher.messages.get(timeout=5).topic for _ in range(12)]
    assert sorted(set(topics)) == sorted(f"sp/{uid}/{n}" for n in range(10, 16))
    assert all(topics.count(t) == 2 for t in set(topics))


def test_json_payload_carries_the_send_time(mqb_broker, clients, background, uid):
    """--json-payload: every payload is JSON of exactly -s bytes whose `timestamp` is the send
    time in µs (between the run's start and end), and mqbench sub measures latency from it."""
    watcher = clients(mqb_broker, f"json-{uid}"[:23])
    watcher.subscribe(f"jp/{uid}/#", qos=1)
    sub = background(["sub", *base(mqb_broker), "-c", "1", "-q", "1", "-t", f"jp/{uid}/#"])
    sub.wait_for("all 1 clients connected and subscribed")
    t0 = time.time()
    rep, _ = run(["pub", *base(mqb_broker), "-c", "2", "-L", "5", "-q", "1", "-I", "0", "-s", "256",
                  "--json-payload", "-t", f"jp/{uid}/%i"])
    t1 = time.time()
    assert rep["acked"] == 10
    for _ in range(10):
        m = watcher.messages.get(timeout=5)
        assert len(m.payload) == 256
        body = json.loads(m.payload)
        assert t0 - 1 <= body["timestamp"] / 1e6 <= t1 + 1 and isinstance(body["speed"], int), body
    got = sub.stop()
    assert got["received"] == 10 and got["latency_ms"]["count"] == 10, got


def test_retain(mqb_broker, uid):
    topic = f"r/{uid}"
    rep, _ = run(["pub", *base(mqb_broker), "-c", "1", "-L", "1", "-q", "1", "-r", "-m", "hello", "-t", topic])
    assert rep["acked"] == 1
    later, _ = run(["sub", *base(mqb_broker), "-c", "2", "-q", "1", "-t", topic, "--duration", "0.7"])
    assert later["received"] == 2
    assert later["latency_ms"]["count"] == 0  # -m payloads carry no timestamp


def test_wait_before_publishing(mqb_broker, background, uid):
    topic = f"wt/{uid}"
    sub = background(["sub", *base(mqb_broker), "-c", "1", "-t", topic, "-q", "1"])
    sub.wait_for("all 1 clients connected and subscribed")
    rep, err = run(["pub", *base(mqb_broker), "-c", "10", "-i", "20", "-w", "-L", "5", "-q", "1", "-I", "0",
                    "-t", topic])
    assert "10 of 10 clients connected, publishing" in err
    assert rep["acked"] == 50
    assert sub.stop()["received"] == 50


def test_ifaddr_and_several_hosts(mqb_broker):
    rep, _ = run(["conn", "-h", f"{mqb_broker.host},localhost", "-p", str(mqb_broker.port), "-c", "10",
                  "--ifaddr", "127.0.0.1", "-R", "500", "--duration", "0.6"])
    assert rep["connected"] == 10 and rep["errors_total"] == 0


def test_fleet(mqb_broker):
    rep, _ = run(["fleet", *base(mqb_broker), "-c", "50", "--rate", "5", "-q", "1", "--backend", "2",
                  "--command-share", "0.5", "-R", "500", "--duration", "3"], timeout=30)
    f = rep["fleet"]
    assert f["cars"] == 50 and f["backend"] == 2
    assert f["telemetry_sent"] > 0 and f["telemetry_received"] > 0
    assert f["commands_sent"] > 0 and f["commands_received"] > 0 and f["commands_round_tripped"] > 0
    assert f["command_round_trip_ms"]["count"] == f["commands_round_tripped"]
    assert rep["errors_total"] == 0, rep["errors"]


def test_fleet_backend_in_its_own_process(mqb_broker, background):
    """--role: the backend in one process, the cars in another; the backend's report has the
    telemetry and the round trips, the cars' the commands they received."""
    be = background(["fleet", *base(mqb_broker), "-c", "50", "-q", "1", "--backend", "2",
                     "--command-share", "0.5", "--role", "backend"])
    be.wait_for("all 2 clients connected and subscribed")
    cars, err = run(["fleet", *base(mqb_broker), "-c", "50", "--rate", "5", "-q", "1", "--backend", "2",
                     "--command-share", "0.5", "-R", "500", "--role", "cars", "--duration", "3"], timeout=30)
    back = be.stop(settle=1.0)
    assert "all 50 clients connected and subscribed" in err
    fc, fb = cars["fleet"], back["fleet"]
    assert fc["cars"] == 50 and fc["backend"] == 0 and fb["cars"] == 0 and fb["backend"] == 2
    assert fc["telemetry_sent"] > 0 and fc["telemetry_received"] == 0
    assert 0 < fb["telemetry_received"] <= fc["telemetry_sent"]
    assert fb["commands_sent"] > 0 and fc["commands_received"] > 0 and fb["commands_round_tripped"] > 0
    # The telemetry latency by send time adds up to the histogram; each live line's loop lag.
    assert sum(n for _, n, _ in back["latency_series"]) == back["latency_ms"]["count"]
    assert cars["all_connected_at"] > 0 and cars["stopped_at"] > cars["all_connected_at"] and cars["loop_lag_ms"]
    assert all(ms % 100 == 0 for ms, _, _ in back["latency_series"])
    assert cars["errors_total"] == 0 and back["errors_total"] == 0, (cars["errors"], back["errors"])


# ---------------------------------------------------------------------------
# No broker needed
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tls_brokers(tmp_path_factory):
    """Turnpike and mosquitto, each with a TLS listener using the development certificates."""
    if not MQBENCH.exists():
        pytest.skip("mqbench not built")
    d = tmp_path_factory.mktemp("mqbench-certs")
    subprocess.run([str(REPO / "certs" / "make-dev-certs.sh"), str(d)], check=True, capture_output=True)
    from conftest import MOSQUITTO_BIN, TURNPIKE_BIN
    tp_plain, tp_tls = free_port(), free_port()
    conf = d / "turnpike.toml"
    conf.write_text(f"""[server]
sys_interval = 0
[[listeners]]
bind = "127.0.0.1"
port = {tp_plain}
[[listeners]]
bind = "127.0.0.1"
port = {tp_tls}
certfile = "{d}/server.crt"
keyfile = "{d}/server.key"
cafile = "{d}/ca.crt"
""")
    mq_plain, mq_tls = free_port(), free_port()
    mconf = d / "mosquitto.conf"
    # `user root`: started as root, mosquitto would drop to a user that cannot read the
    # private temporary directory holding the key.
    mconf.write_text(f"""per_listener_settings false
user root
allow_anonymous true
persistence false
listener {mq_plain} 127.0.0.1
listener {mq_tls} 127.0.0.1
cafile {d}/ca.crt
certfile {d}/server.crt
keyfile {d}/server.key
""")
    procs = {
        "turnpike": (subprocess.Popen([str(TURNPIKE_BIN), "serve", "--config", str(conf)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), tp_plain, tp_tls),
        "mosquitto": (subprocess.Popen([str(MOSQUITTO_BIN), "-c", str(mconf)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), mq_plain, mq_tls),
    }
    import socket
    try:
        for name, (proc, plain, tls) in procs.items():
            deadline = time.monotonic() + 20
            while True:
                try:
                    socket.create_connection(("127.0.0.1", tls), timeout=0.2).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline and proc.poll() is None, f"{name} did not start"
                    time.sleep(0.05)
        yield d, {name: tls for name, (_, _, tls) in procs.items()}
    finally:
        # Also when start-up failed: no broker outlives the module.
        for proc, _, _ in procs.values():
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.mark.parametrize("kind", ["turnpike", "mosquitto"])
def test_tls_with_verified_server_and_client_certificate(tls_brokers, kind):
    d, ports = tls_brokers
    tls = ["-h", "localhost", "-p", str(ports[kind]), "-S", "--cacertfile", str(d / "ca.crt")]
    sub = Background(["sub", *tls, "-c", "2", "-t", "tls/#", "-q", "1"])
    try:
        sub.wait_for("all 2 clients connected and subscribed", 15)
        rep, _ = run(["pub", *tls, "--certfile", str(d / "car-1.crt"), "--keyfile", str(d / "car-1.key"),
                      "-c", "4", "-L", "50", "-I", "0", "-q", "1", "-t", "tls/%i"])
        assert rep["sent"] == 200 and rep["acked"] == 200 and rep["errors_total"] == 0
    finally:
        srep = sub.stop(settle=1.0)
    assert srep["received"] == 400 and srep["errors_total"] == 0


@pytest.mark.parametrize("kind", ["turnpike", "mosquitto"])
def test_tls_connect_burst_all_connect(tls_brokers, kind):
    """400 TLS clients at once: more ClientHellos than Turnpike starts per loop iteration (16),
    so most wait their turn in a later iteration; every one must still connect, none time out."""
    d, ports = tls_brokers
    rep, _ = run(["conn", "-h", "localhost", "-p", str(ports[kind]), "-S", "--cacertfile", str(d / "ca.crt"),
                  "-c", "400", "-R", "20000", "--connect-timeout", "60", "--duration", "6"], timeout=90)
    assert rep["connected"] == 400 and rep["connect_failed"] == 0 and rep["errors_total"] == 0, rep["errors"]


def test_tls_refuses_an_untrusted_server(tls_brokers, tmp_path):
    """With --cacertfile, a server whose certificate does not chain to it is refused."""
    d, ports = tls_brokers
    other = tmp_path / "other"
    other.mkdir()
    subprocess.run([str(REPO / "certs" / "make-dev-certs.sh"), str(other)], check=True, capture_output=True)
    rep, _ = run(["conn", "-h", "localhost", "-p", str(ports["turnpike"]), "-S", "--cacertfile", str(other / "ca.crt"),
                  "-c", "2", "-i", "1", "--duration", "3"])
    assert rep["connected"] == 0 and rep["connect_failed"] == 2
    assert set(rep["errors"]) == {"tls error"}


def test_tls_files_that_do_not_load_exit_2():
    if not MQBENCH.exists():
        pytest.skip("mqbench not built")
    r = subprocess.run([str(MQBENCH), "pub", "-S", "-t", "x", "--cacertfile", "/nonexistent/ca.pem"],
                       capture_output=True, timeout=10)
    assert r.returncode == 2
    assert b"TLS" in r.stderr


def test_refused_connections_are_counted_by_reason():
    if not MQBENCH.exists():
        pytest.skip("mqbench not built")
    rep, _ = run(["conn", "-h", "127.0.0.1", "-p", str(free_port()), "-c", "3", "-i", "1"])
    assert rep["connected"] == 0 and rep["connect_failed"] == 3
    assert rep["errors"] == {"connect error: ECONNREFUSED": 3}
