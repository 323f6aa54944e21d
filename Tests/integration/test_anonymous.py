"""The safe default: anonymous clients over loopback only, unless `allow_anonymous = true`.

A client that is not on this machine comes from a network namespace the test makes itself (a
veth pair with a /30 of its own): the broker listens on 0.0.0.0 and the real mosquitto_pub runs
inside the namespace, so its address really is not loopback. Needs root (as in CI)."""

import os
import shutil
import subprocess
import itertools

import pytest

from conftest import Broker, MOSQUITTO_PUB, TURNPIKE_BIN, free_port

pytestmark = [pytest.mark.turnpike_only, pytest.mark.single_node("binds one broker to a network-namespace address")]

_net = itertools.count(1)


@pytest.fixture
def remote_host():
    """(run, host address) — `run(cmd)` runs cmd inside a namespace that reaches the host at
    `host address` over a veth pair."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("needs root and iproute2 for a network namespace")
    n = (os.getpid() + next(_net)) % 250 + 1
    ns, host_if, ns_if = f"tp-anon-{n}", f"tpa{n}h", f"tpa{n}n"
    host_ip, ns_ip = f"10.231.{n}.1", f"10.231.{n}.2"

    def sh(*cmd):
        subprocess.run(cmd, check=True, capture_output=True)

    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    subprocess.run(["ip", "link", "del", host_if], capture_output=True)
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        sh("ip", "link", "set", ns_if, "netns", ns)
        sh("ip", "addr", "add", f"{host_ip}/30", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ns_ip}/30", "dev", ns_if)
        sh("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")

        def run(cmd, timeout=10):
            return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=timeout)

        yield run, host_ip
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


class EmbeddedDefault(Broker):
    """`turnpike` with no configuration file at all, on 0.0.0.0 and a free port."""

    def command(self):
        return [str(TURNPIKE_BIN), "serve", "--bind", "0.0.0.0", "--port", str(self.port),
                "--data", str(self.dir / "data"), "--log-level", "debug"]


class WithConfig(Broker):
    """A configuration file of the test's own, listener on 0.0.0.0."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def command(self):
        path = self.dir / "turnpike.toml"
        path.write_text(self.text)
        return [str(TURNPIKE_BIN), "serve", "--config", str(path), "--bind", "0.0.0.0", "--port", str(self.port),
                "--data", str(self.dir / "data")]


def pub(broker_host, port, *extra, run=None):
    cmd = [MOSQUITTO_PUB, "-h", broker_host, "-p", str(port), "-t", "anon/test", "-m", "x", "-q", "1", *extra]
    return run(cmd) if run else subprocess.run(cmd, capture_output=True, text=True, timeout=10)


@pytest.fixture
def started():
    made = []

    def start(b):
        made.append(b)
        return b.start()

    yield start
    for b in made:
        b.stop()
        b.cleanup()


@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
def test_embedded_default_refuses_anonymous_from_the_network(remote_host, started, version):
    run, host_ip = remote_host
    b = started(EmbeddedDefault())
    remote = pub(host_ip, b.port, "-V", version, run=run)
    assert remote.returncode != 0, remote
    assert "not authori" in (remote.stderr + remote.stdout).lower(), remote   # CONNACK 0x87 / return code 5
    local = pub("127.0.0.1", b.port, "-V", version)
    assert local.returncode == 0, local
    log = b.log_text()
    assert "anonymous clients allowed over loopback only" in log, log
    assert "anonymous clients are not allowed here" in log, log


def test_allow_anonymous_true_opens_the_network(remote_host, started):
    run, host_ip = remote_host
    b = started(WithConfig("[auth]\nallow_anonymous = true\n"))
    remote = pub(host_ip, b.port, run=run)
    assert remote.returncode == 0, remote
    assert "anonymous clients allowed from anywhere" in b.log_text()


def test_listener_allow_anonymous_overrides(remote_host, started):
    run, host_ip = remote_host
    port = free_port()
    b = started(WithConfig(f'[[listeners]]\nbind = "0.0.0.0"\nport = {port}\nallow_anonymous = true\n'))
    assert pub(host_ip, b.port, run=run).returncode == 0


def test_allow_anonymous_false_refuses_even_loopback(started):
    b = started(WithConfig("[auth]\nallow_anonymous = false\n"))
    local = pub("127.0.0.1", b.port)
    assert local.returncode != 0 and "not authori" in (local.stderr + local.stdout).lower(), local
    assert "anonymous clients refused" in b.log_text()


def test_password_user_from_the_network_is_accepted(remote_host, started, tmp_path):
    run, host_ip = remote_host
    pw = tmp_path / "passwords"
    subprocess.run([str(TURNPIKE_BIN), "passwd", "-c", "-b", "car-secret", "--iterations", "1000", str(pw), "VIN1"],
                   check=True, capture_output=True)
    b = started(WithConfig(f'[auth]\npassword_file = "{pw}"\n'))
    assert pub(host_ip, b.port, "-u", "VIN1", "-P", "car-secret", run=run).returncode == 0
    assert pub(host_ip, b.port, run=run).returncode != 0
    assert "clients authenticate with a password_file user" in b.log_text()
