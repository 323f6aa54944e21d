"""TLS listeners end to end: mosquitto clients, paho, openssl s_client and raw sockets
against brokers configured with [[listeners]] (a plain one plus TLS ones).

Certificates come from certs/make-dev-certs.sh (dev CA, server cert for localhost/127.0.0.1,
car-1..3 client certs with CN = car id), plus, made here with the openssl CLI, a client
certificate from an unrelated CA and an expired client certificate signed by the dev CA.

Every broker in this file is a Turnpike started with its own TOML file; the whole module is
Turnpike-only (mosquitto is configured differently).
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

import conftest
import rawmqtt as R
from conftest import (MOSQUITTO_PUB, REPO, TURNPIKE_BIN, V5, V311, assert_pubsub_works, free_port,
                      wait_until)

pytestmark = [
    pytest.mark.turnpike_only,
    pytest.mark.single_node("listeners on ports each test picks for one broker process"),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed"),
]

OPENSSL = shutil.which("openssl") or "openssl"
CONNECT_TIMEOUT = 2  # [limits] connect_timeout of every broker here
MAKE_DEV_CERTS = REPO / "certs" / "make-dev-certs.sh"


# ---------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------
def _run(cmd, cwd=None, timeout=30, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=timeout, **kw)
    assert r.returncode == 0, f"{cmd} -> {r.returncode}:\n{r.stdout.decode(errors='replace')}\n{r.stderr.decode(errors='replace')}"
    return r


class PKI:
    """Paths of the certificates used by this module."""

    def __init__(self, d: Path):
        self.dir = d
        self.ca = d / "ca.crt"
        self.ca_key = d / "ca.key"
        self.server_crt = d / "server.crt"
        self.server_key = d / "server.key"
        self.other_ca = d / "other-ca.crt"

    def client(self, name: str) -> tuple[Path, Path]:
        """(cert, key) of car-1..3, "other" (unrelated CA) or "expired" (dev CA, expired 2020)."""
        return self.dir / f"{name}.crt", self.dir / f"{name}.key"

    def issue_server_cert(self, crt: Path, key: Path):
        """A fresh key and server certificate (localhost, 127.0.0.1, ::1) from the dev CA,
        moved over ``crt``/``key`` atomically."""
        work = Path(tempfile.mkdtemp(prefix="srv-", dir=self.dir))
        (work / "ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n"
                                  "extendedKeyUsage=serverAuth\n"
                                  "keyUsage=critical,digitalSignature,keyEncipherment\n")
        _run([OPENSSL, "req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-keyout", "new.key", "-out", "new.csr",
              "-subj", "/O=Turnpike development/CN=localhost"], cwd=work)
        _run([OPENSSL, "x509", "-req", "-in", "new.csr", "-CA", str(self.ca), "-CAkey", str(self.ca_key),
              "-CAcreateserial", "-days", "30", "-sha256", "-extfile", "ext", "-out", "new.crt"], cwd=work)
        os.replace(work / "new.key", key)
        os.replace(work / "new.crt", crt)
        shutil.rmtree(work, ignore_errors=True)


CA_CNF = """\
[ ca ]
default_ca = dev
[ dev ]
database = ca-db/index.txt
new_certs_dir = ca-db
serial = ca-db/serial
default_md = sha256
policy = any
copy_extensions = none
unique_subject = no
[ any ]
commonName = supplied
organizationName = optional
[ client_ext ]
basicConstraints = CA:FALSE
extendedKeyUsage = clientAuth
keyUsage = critical,digitalSignature,keyEncipherment
"""


def make_pki(d: Path) -> PKI:
    _run(["bash", str(MAKE_DEV_CERTS), str(d)])
    pki = PKI(d)
    for f in (pki.ca, pki.server_crt, pki.server_key, *pki.client("car-1"), *pki.client("car-2")):
        assert f.exists(), f"make-dev-certs.sh did not write {f}"

    # An unrelated CA and a client certificate it signed (a well-formed cert the broker must not trust).
    _run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
          "-keyout", "other-ca.key", "-out", "other-ca.crt", "-subj", "/O=Somebody else/CN=Other CA",
          "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"], cwd=d)
    (d / "other.ext").write_text("extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n")
    _run([OPENSSL, "req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-keyout", "other.key", "-out", "other.csr",
          "-subj", "/O=Somebody else/CN=car-1"], cwd=d)
    _run([OPENSSL, "x509", "-req", "-in", "other.csr", "-CA", "other-ca.crt", "-CAkey", "other-ca.key",
          "-CAcreateserial", "-days", "30", "-sha256", "-extfile", "other.ext", "-out", "other.crt"], cwd=d)

    # An expired client certificate from the dev CA: `openssl ca` takes explicit start/end dates
    # (OpenSSL 3.0's `x509 -req` cannot backdate).
    (d / "ca.cnf").write_text(CA_CNF)
    (d / "ca-db").mkdir()
    (d / "ca-db" / "index.txt").write_text("")
    (d / "ca-db" / "serial").write_text("1000\n")
    _run([OPENSSL, "req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-keyout", "expired.key", "-out", "expired.csr",
          "-subj", "/O=Turnpike development/CN=car-9"], cwd=d)
    _run([OPENSSL, "ca", "-batch", "-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key",
          "-in", "expired.csr", "-out", "expired.crt", "-notext", "-extensions", "client_ext",
          "-startdate", "20200101000000Z", "-enddate", "20200102000000Z"], cwd=d)
    r = subprocess.run([OPENSSL, "verify", "-CAfile", "ca.crt", "expired.crt"], cwd=d, capture_output=True, timeout=10)
    assert r.returncode != 0 and b"expired" in r.stdout + r.stderr, "the 'expired' certificate is not expired"
    for f in d.glob("*.key"):
        f.chmod(0o600)
    return pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("tls-pki"))


# ---------------------------------------------------------------------------
# Broker with [[listeners]]
# ---------------------------------------------------------------------------
class Endpoint:
    """host/port pair shaped like conftest.Broker, for PahoClient and Cli."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


class TLSBroker(conftest.Broker):
    """conftest's Broker (Turnpike) with a plain listener ("plain", also ``.port``) and named TLS
    listeners. ``listeners`` maps a name to the listener's keys (bind and port are filled in);
    ``tables`` adds further tables, e.g. {"auth": {...}}. Starting, stopping, logs and the
    broker-log-on-failure hook are conftest's."""

    def __init__(self, name: str, listeners: dict[str, dict], limits: dict | None = None,
                 tables: dict[str, dict] | None = None):
        super().__init__("turnpike")
        self.name = name
        self.listeners = {"plain": {}, **listeners}
        self.limits = {"connect_timeout": CONNECT_TIMEOUT, **(limits or {})}
        self.tables = tables or {}
        self.ports: dict[str, int] = {}

    def endpoint(self, listener: str, host: str = "127.0.0.1") -> Endpoint:
        return Endpoint(host, self.ports[listener])

    def write_config(self) -> Path:
        # conftest's start() has just picked self.port: it is the plain listener's.
        self.ports = {name: self.port if name == "plain" else free_port() for name in self.listeners}
        lines = ["[server]", "sys_interval = 0", ""]
        for name, keys in self.listeners.items():
            lines += [f"# {name}", "[[listeners]]", 'bind = "127.0.0.1"', f"port = {self.ports[name]}"]
            lines += [f"{k} = {_toml(v)}" for k, v in keys.items()]
            lines.append("")
        lines.append("[limits]")
        lines += [f"{k} = {_toml(v)}" for k, v in self.limits.items()]
        for table, keys in self.tables.items():
            lines += ["", f"[{table}]"] + [f"{k} = {_toml(v)}" for k, v in keys.items()]
        path = self.dir / "turnpike.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def command(self) -> list[str]:
        return [str(TURNPIKE_BIN), "serve", "--config", str(self.write_config()),
                "--data", str(self.dir / "data"), "--log-level", "debug"]

    def start(self, timeout: float = 20.0) -> "TLSBroker":
        super().start(timeout)
        # The plain port can accept before the TLS listeners are bound; "running with" is
        # logged once all are (probing a TLS port instead would leave stray handshakes).
        if not wait_until(lambda: "running with" in self.log_text(), timeout):
            self.stop()
            raise RuntimeError(f"turnpike did not finish starting within {timeout}s:\n{self.log_text()}")
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_mark(self) -> int:
        return len(self.log_text())

    def log_since(self, mark: int) -> str:
        return self.log_text()[mark:]

    def wait_log(self, needle: str, mark: int = 0, timeout: float = 5.0) -> str:
        """Waits until ``needle`` appears in the log after ``mark``; returns the new log text."""
        ok = wait_until(lambda: needle in self.log_since(mark), timeout)
        text = self.log_since(mark)
        assert ok, f"{needle!r} not in the broker log within {timeout}s; new log:\n{text}"
        return text

    def __repr__(self):
        return f"<TLSBroker {self.ports}>"


def tls_listener(pki: PKI, **extra) -> dict:
    return {"certfile": str(pki.server_crt), "keyfile": str(pki.server_key), **extra}


def _broker(name, listeners, limits=None, tables=None):
    return TLSBroker(name, listeners, limits, tables).start()


@pytest.fixture(scope="module")
def opt_broker(pki):
    """TLS with optional client certificates ("tls"), the same with max_connections = 2
    ("limited"), plus the plain listener."""
    b = _broker("opt", {
        "tls": tls_listener(pki, cafile=str(pki.ca)),
        "limited": tls_listener(pki, cafile=str(pki.ca), max_connections=2),
    })
    yield b
    b.stop()
    b.cleanup()


@pytest.fixture(scope="module")
def mtls_broker(pki):
    b = _broker("mtls", {"tls": tls_listener(pki, cafile=str(pki.ca), require_certificate=True)})
    yield b
    b.stop()
    b.cleanup()


@pytest.fixture(scope="module")
def identity_broker(pki):
    # require_certificate stays false: the identity option alone must refuse certificate-less clients.
    b = _broker("ident", {"tls": tls_listener(pki, cafile=str(pki.ca), use_identity_as_username=True)})
    yield b
    b.stop()
    b.cleanup()


IDENTITY_ACL = """\
# Every client may use only its own subtree, named by its user name.
pattern
allow readwrite cars/%u/#
"""


@pytest.fixture(scope="module")
def identity_auth_broker(pki, tmp_path_factory):
    """use_identity_as_username with [auth]: anonymous clients refused, and an ACL keyed on the
    user name (%u), which makes the certificate's CN visible as the user name. Skipped while the
    binary has no [auth] table."""
    acl = tmp_path_factory.mktemp("tls-acl") / "acl.txt"
    acl.write_text(IDENTITY_ACL)
    b = TLSBroker("ident-auth", {"tls": tls_listener(pki, cafile=str(pki.ca), use_identity_as_username=True)},
                  tables={"auth": {"allow_anonymous": False, "acl_file": str(acl)}})
    try:
        b.start()
    except RuntimeError as e:
        b.cleanup()
        if "unknown table [auth]" in str(e):
            pytest.skip("this turnpike build has no [auth] table yet")
        raise
    yield b
    b.stop()
    b.cleanup()


@pytest.fixture(scope="module")
def tls13_broker(pki):
    b = _broker("tls13", {"tls": tls_listener(pki, tls_version="tlsv1.3")})
    yield b
    b.stop()
    b.cleanup()


@pytest.fixture(scope="module")
def reload_broker(pki):
    """A TLS listener whose server certificate lives in the broker's own directory, so the
    SIGHUP tests can replace it without touching the other brokers."""
    d = Path(tempfile.mkdtemp(prefix="tp-tls-reload-certs-"))
    crt, key = d / "server.crt", d / "server.key"
    shutil.copy(pki.server_crt, crt)
    shutil.copy(pki.server_key, key)
    key.chmod(0o600)
    b = _broker("reload", {"tls": {"certfile": str(crt), "keyfile": str(key), "cafile": str(pki.ca)}})
    b.server_crt, b.server_key = crt, key
    yield b
    b.stop()
    b.cleanup()
    shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------
# Client helpers
# ---------------------------------------------------------------------------
def tls_client(clients, ep: Endpoint, pki: PKI, cert: str | None = None, version: int = V5,
               client_id: str | None = None, username: str | None = None):
    """A connected paho client over TLS (verifying the server against the dev CA), optionally
    presenting the client certificate ``cert`` (car-1, other, expired, ...)."""
    c = clients(ep, client_id or f"tls-{uuid.uuid4().hex[:8]}", connect=False, version=version)
    if username is not None:
        c.c.username_pw_set(username)
    certfile = keyfile = None
    if cert:
        certfile, keyfile = (str(p) for p in pki.client(cert))
    c.c.tls_set(ca_certs=str(pki.ca), certfile=certfile, keyfile=keyfile)
    return c.connect()


def tls_roundtrip(clients, ep: Endpoint, pki: PKI, cert: str | None = None, tag: str = "rt"):
    """A fresh TLS subscriber gets a QoS 1 message from a fresh TLS publisher."""
    topic = f"tls/{tag}/{uuid.uuid4().hex[:8]}"
    sub = tls_client(clients, ep, pki, cert)
    pub = tls_client(clients, ep, pki, cert)
    try:
        assert sub.subscribe(topic, qos=1) == [1]
        pub.publish(topic, b"over-tls", qos=1)
        m = sub.get(5)
        assert (m.topic, m.payload) == (topic, b"over-tls")
    finally:
        sub.disconnect()
        pub.disconnect()


def self_echo(c, tag: str = "echo"):
    """An already-connected paho client publishes to a topic it subscribes to and receives it."""
    topic = f"tls/{tag}/{uuid.uuid4().hex[:8]}"
    assert c.subscribe(topic, qos=1) == [1]
    c.publish(topic, b"still-here", qos=1)
    m = c.get(5)
    assert (m.topic, m.payload) == (topic, b"still-here")


def sub_messages(sub, n: int, timeout: float = 5.0) -> list[dict]:
    """conftest's SubProc.wait_messages returns as soon as mosquitto_sub has exited, which with
    -C 1 can be before its reader thread has parsed the last line: join the reader then."""
    msgs = sub.wait_messages(n, timeout)
    if len(msgs) < n and sub.proc.poll() is not None:
        sub.wait_exit(5)
        msgs = sub.messages()
    return msgs


def mosquitto_pub(ep: Endpoint, pki: PKI, cert: str | None = None, version: str = "mqttv311",
                  topic: str = "tls/probe", timeout: float = 15) -> subprocess.CompletedProcess:
    cmd = [MOSQUITTO_PUB, "-h", ep.host, "-p", str(ep.port), "-V", version, "--cafile", str(pki.ca),
           "-t", topic, "-m", "x", "-q", "1", "-d"]
    if cert:
        crt, key = pki.client(cert)
        cmd += ["--cert", str(crt), "--key", str(key)]
    return subprocess.run(cmd, capture_output=True, timeout=timeout)


def _out(r: subprocess.CompletedProcess) -> str:
    return (r.stdout + r.stderr).decode(errors="replace")


def s_client(port: int, pki: PKI, *args: str, hold: float = 1.0, timeout: float = 15) -> subprocess.CompletedProcess:
    """``sleep HOLD | openssl s_client -connect 127.0.0.1:PORT -CAfile ca.crt ARGS``: stdin stays
    open for ``hold`` seconds so TLS 1.3 session tickets arrive before s_client quits."""
    cmd = [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(pki.ca), *args]
    shell = f"sleep {hold} | " + " ".join(shlex.quote(a) for a in cmd)
    return subprocess.run(shell, shell=True, capture_output=True, timeout=timeout)


def served_certificate(port: int, pki: PKI) -> bytes:
    """DER of the leaf certificate a new TLS connection is offered (via s_client -showcerts)."""
    r = s_client(port, pki, "-showcerts", hold=0)
    out = _out(r)
    assert "Verify return code: 0 (ok)" in out, out
    pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
    assert pem, out
    return ssl.PEM_cert_to_DER_cert(pem.group(0))


def file_certificate(path: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(path.read_text())


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def closed_after(port: int, data: bytes = b"", timeout: float = 6.0, pause_after_connect: float = 0.0) -> float | None:
    """Raw TCP: connect, send ``data``, read (discarding whatever the broker says, e.g. a TLS
    alert) until the broker closes. Returns the seconds until EOF/reset, None if still open
    after ``timeout``."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        if pause_after_connect:
            time.sleep(pause_after_connect)
        if data:
            try:
                s.sendall(data)
            except OSError:
                return time.monotonic() - start
        deadline = start + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return None
            except OSError:  # reset
                return time.monotonic() - start
            if not chunk:
                return time.monotonic() - start


def client_hello(pki: PKI) -> bytes:
    """The bytes of a real TLS ClientHello (Python's ssl over memory BIOs)."""
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = out.read()
    assert hello[:1] == b"\x16" and len(hello) > 100, hello[:16]
    return hello


def handshake_then_connect(port: int, pki: PKI, timeout: float = 5.0) -> str:
    """Python ssl: TLS handshake without a client certificate, then an MQTT 3.1.1 CONNECT.
    Returns "connack", "closed" (EOF / reset / TLS alert) or "timeout"."""
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            s = ctx.wrap_socket(raw, server_hostname="localhost")
        except (ssl.SSLError, OSError):
            return "closed"
        try:
            s.sendall(R.connect(f"raw-{uuid.uuid4().hex[:6]}"))
            data = s.recv(4)
        except socket.timeout:
            return "timeout"
        except (ssl.SSLError, OSError):
            return "closed"
        if not data:
            return "closed"
        return "connack" if data[0] >> 4 == R.CONNACK else f"unexpected {data!r}"
    finally:
        raw.close()


class TLSRawClient(R.RawClient):
    """rawmqtt.RawClient over a TLS socket (no client certificate unless ``cert``)."""

    def __init__(self, port: int, pki: PKI, version: int = R.MQTT311, timeout: float = 5.0,
                 rcvbuf: int | None = None, cert: str | None = None):
        ctx = ssl.create_default_context(cafile=str(pki.ca))
        if cert:
            ctx.load_cert_chain(*(str(p) for p in pki.client(cert)))
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        raw.settimeout(timeout)
        try:
            raw.connect(("127.0.0.1", port))
            self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        except BaseException:
            raw.close()
            raise
        self.version = version
        self.buf = bytearray()
        self.closed = False
        self.aliases = {}
        self.pending = []


def assert_healthy(b: TLSBroker, clients, pki: PKI, existing=None, tls: str = "tls", cert: str | None = None):
    """The broker still serves: process alive, plain pub/sub, a TLS round trip, and an
    already-connected TLS client (``existing``) still publishes and receives."""
    assert b.alive(), f"broker exited with {b.proc.returncode}:\n{b.log_tail(60)}"
    assert_pubsub_works(b, "tls-health")
    tls_roundtrip(clients, b.endpoint(tls), pki, cert=cert, tag="health")
    if existing is not None:
        self_echo(existing, "existing")


# ---------------------------------------------------------------------------
# 1. mosquitto clients over TLS
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
def test_mosquitto_clients_over_tls(opt_broker, pki, cli, uid, version):
    ep = opt_broker.endpoint("tls", host="localhost")  # host name checked against the SAN
    topic = f"tls/mosq/{uid}"
    sub = cli.sub(ep, topic, qos=1, version=version, count=1, wait_secs=10, extra=["--cafile", str(pki.ca)])
    cli.pub(ep, topic, f"hello-{version}", qos=1, version=version, extra=["--cafile", str(pki.ca)])
    msgs = sub_messages(sub, 1)
    assert [(m["topic"], m["payload"]) for m in msgs] == [(topic, f"hello-{version}")]
    assert sub.wait_exit(5) == 0
    assert "TLS from" in opt_broker.log_text()


def test_tls_and_plain_listeners_share_one_broker(opt_broker, pki, clients, uid):
    """A TLS subscriber gets what a plain-TCP client publishes, and the other way round."""
    topic = f"tls/mixed/{uid}"
    tsub = tls_client(clients, opt_broker.endpoint("tls"), pki)
    psub = clients(opt_broker.endpoint("plain"), f"plain-{uid}")
    assert tsub.subscribe(topic, qos=1) == [1]
    assert psub.subscribe(topic, qos=1) == [1]
    psub.publish(topic, b"from-plain", qos=1)
    tsub.publish(topic, b"from-tls", qos=1)
    assert sorted(m.payload for m in tsub.collect(2)) == [b"from-plain", b"from-tls"]
    assert sorted(m.payload for m in psub.collect(2)) == [b"from-plain", b"from-tls"]


# ---------------------------------------------------------------------------
# 2. mutual TLS
# ---------------------------------------------------------------------------
def test_mtls_client_certificate_accepted(mtls_broker, pki, cli, clients, uid):
    ep = mtls_broker.endpoint("tls", host="localhost")
    cert, key = pki.client("car-1")
    extra = ["--cafile", str(pki.ca), "--cert", str(cert), "--key", str(key)]
    topic = f"tls/mtls/{uid}"
    sub = cli.sub(ep, topic, qos=1, count=1, wait_secs=10, extra=extra)
    cli.pub(ep, topic, "with-cert", qos=1, extra=extra)
    assert [m["payload"] for m in sub_messages(sub, 1)] == ["with-cert"]
    tls_roundtrip(clients, mtls_broker.endpoint("tls"), pki, cert="car-1", tag="mtls")


@pytest.mark.parametrize("cert, log_needle", [
    (None, "did not return a certificate"),
    ("other", "certificate verify failed"),
    ("expired", "certificate has expired"),
], ids=["no-cert", "other-ca", "expired"])
def test_mtls_refuses(mtls_broker, pki, clients, cert, log_needle):
    mark = mtls_broker.log_mark()
    r = mosquitto_pub(mtls_broker.endpoint("tls", host="localhost"), pki, cert=cert)
    assert r.returncode != 0, f"mosquitto_pub with cert={cert} was accepted:\n{_out(r)}"
    assert "received CONNACK" not in _out(r), _out(r)
    mtls_broker.wait_log(log_needle, mark)
    # Not even a CONNACK for a client that ignores the failure and sends CONNECT anyway.
    if cert is None:
        assert handshake_then_connect(mtls_broker.ports["tls"], pki) == "closed"
    assert_healthy(mtls_broker, clients, pki, cert="car-1")


# ---------------------------------------------------------------------------
# 3. openssl s_client: version, ALPN, resumption, minimum version
# ---------------------------------------------------------------------------
def test_s_client_tls13_alpn_and_resumption(opt_broker, pki, tmp_path):
    sess = tmp_path / "session.pem"
    port = opt_broker.ports["tls"]
    mark = opt_broker.log_mark()
    first = _out(s_client(port, pki, "-alpn", "mqtt", "-sess_out", str(sess)))
    assert "TLSv1.3" in first, first
    assert "ALPN protocol: mqtt" in first, first
    assert "Verify return code: 0 (ok)" in first, first
    assert sess.exists() and sess.stat().st_size > 0, "s_client stored no session (no ticket from the broker?)"

    second = _out(s_client(port, pki, "-alpn", "mqtt", "-sess_in", str(sess)))
    assert "Reused, TLSv1.3" in second, second
    assert "ALPN protocol: mqtt" in second, second
    log = opt_broker.wait_log(", resumed", mark)
    assert re.search(r"TLS from 127\.0\.0\.1:\d+: TLSv1\.3\n", log), log


def test_s_client_tls12_allowed_by_default(opt_broker, pki):
    out = _out(s_client(opt_broker.ports["tls"], pki, "-tls1_2", hold=0))
    assert "New, TLSv1.2" in out, out


def test_tls13_minimum_refuses_tls12(tls13_broker, pki, clients):
    port = tls13_broker.ports["tls"]
    r = s_client(port, pki, "-tls1_2", hold=0)
    out = _out(r)
    assert r.returncode != 0, out
    assert "New, TLSv1.2" not in out, out
    ok = _out(s_client(port, pki, "-tls1_3", hold=0))
    assert "New, TLSv1.3" in ok, ok
    assert_healthy(tls13_broker, clients, pki)


# ---------------------------------------------------------------------------
# 4. use_identity_as_username
# ---------------------------------------------------------------------------
def test_identity_as_username(identity_broker, pki, clients, cli, uid):
    # The user name taken from the certificate (CN "car-2") is not logged; without [auth] its
    # only effect here is that certificate-less clients are closed after the handshake (see
    # test_identity_listener_refuses_*). test_identity_is_the_username_for_auth_and_acl shows it
    # through allow_anonymous = false and a %u ACL (skipped while the binary has no [auth]).
    mark = identity_broker.log_mark()
    c = tls_client(clients, identity_broker.endpoint("tls"), pki, cert="car-2", client_id=f"car-2-{uid}")
    self_echo(c, "identity")
    log = identity_broker.wait_log(f"client car-2-{uid} connected", mark)
    assert re.search(r"TLS from 127\.0\.0\.1:\d+: TLSv1\.3", log), log
    # mosquitto_sub with car-2's certificate, v5, also works on this listener.
    ep = identity_broker.endpoint("tls", host="localhost")
    crt, key = pki.client("car-2")
    extra = ["--cafile", str(pki.ca), "--cert", str(crt), "--key", str(key)]
    topic = f"tls/ident/{uid}"
    sub = cli.sub(ep, topic, qos=1, version=V5, count=1, wait_secs=10, extra=extra)
    c.publish(topic, b"to-mosquitto-sub", qos=1)
    assert [m["payload"] for m in sub_messages(sub, 1)] == ["to-mosquitto-sub"]


def test_identity_listener_refuses_client_without_certificate(identity_broker, pki, clients):
    mark = identity_broker.log_mark()
    r = mosquitto_pub(identity_broker.endpoint("tls", host="localhost"), pki, cert=None)
    assert r.returncode != 0, f"certificate-less client accepted on a use_identity_as_username listener:\n{_out(r)}"
    assert "received CONNACK" not in _out(r), _out(r)
    # A raw TLS client completes the handshake (certificates are optional on this listener) but
    # gets no CONNACK: the broker closes it.
    assert handshake_then_connect(identity_broker.ports["tls"], pki) == "closed"
    identity_broker.wait_log("no certificate identity", mark)
    assert_healthy(identity_broker, clients, pki, cert="car-3")


NOT_AUTHORIZED = 0x87


def test_identity_is_the_username_for_auth_and_acl(identity_auth_broker, pki, clients, uid):
    """With [auth] allow_anonymous = false and the ACL "pattern / allow readwrite cars/%u/#":
    car-2's certificate gets it in without user name or password, as user "car-2"; a CONNECT
    user name cannot override the certificate's CN."""
    b = identity_auth_broker
    # The auth settings are in force: an anonymous plain-TCP client is refused.
    plain = clients(b.endpoint("plain"), f"anon-{uid}", connect=False)
    with pytest.raises(AssertionError, match="connect refused"):
        plain.connect()

    car2 = tls_client(clients, b.endpoint("tls"), pki, cert="car-2", client_id=f"c2-{uid}")
    assert car2.subscribe("cars/car-2/#", qos=1) == [1]
    assert car2.subscribe("cars/car-1/#", qos=1) == [NOT_AUTHORIZED]
    car2.publish("cars/car-2/telemetry", b"mine", qos=1)
    m = car2.get(5)
    assert (m.topic, m.payload) == ("cars/car-2/telemetry", b"mine")

    # Claims to be car-1 in CONNECT, but the certificate says car-2.
    liar = tls_client(clients, b.endpoint("tls"), pki, cert="car-2", client_id=f"liar-{uid}", username="car-1")
    assert liar.subscribe("cars/car-1/#", qos=1) == [NOT_AUTHORIZED]
    assert liar.subscribe("cars/car-2/#", qos=1) == [1]

    # Another certificate, another user.
    car3 = tls_client(clients, b.endpoint("tls"), pki, cert="car-3", client_id=f"c3-{uid}")
    assert car3.subscribe("cars/car-2/#", qos=1) == [NOT_AUTHORIZED]
    assert car3.subscribe("cars/car-3/#", qos=1) == [1]

    # No certificate: closed after the handshake, never reaching the CONNACK stage.
    assert handshake_then_connect(b.ports["tls"], pki) == "closed"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls1.2", "tls1.3"])
def test_identity_survives_session_resumption(identity_broker, pki, version):
    """A resumed session (no certificate exchanged this time) still carries the client
    certificate's identity: the resumed connection gets its CONNACK instead of being closed
    for lack of an identity."""
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    ctx.load_cert_chain(*(str(p) for p in pki.client("car-2")))
    ctx.maximum_version = version
    port = identity_broker.ports["tls"]
    mark = identity_broker.log_mark()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw1, \
            ctx.wrap_socket(raw1, server_hostname="localhost") as s1:
        s1.sendall(R.connect(f"resume-1-{uuid.uuid4().hex[:6]}"))
        assert s1.recv(4)[:1] == b"\x20"  # CONNACK (reading it also takes in TLS 1.3 tickets)
        session = s1.session
    assert session is not None
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw2, \
            ctx.wrap_socket(raw2, server_hostname="localhost", session=session) as s2:
        assert s2.session_reused, "the broker did not resume the session"
        s2.sendall(R.connect(f"resume-2-{uuid.uuid4().hex[:6]}"))
        try:
            reply = s2.recv(4)
        except (ssl.SSLError, OSError) as e:
            reply = e
        assert reply == b"\x20\x02\x00\x00", f"resumed connection got {reply!r}"
    identity_broker.wait_log(", resumed", mark)


@pytest.mark.parametrize("cert", ["other", "expired"])
def test_identity_listener_refuses_untrusted_certificate(identity_broker, pki, cert):
    mark = identity_broker.log_mark()
    r = mosquitto_pub(identity_broker.endpoint("tls", host="localhost"), pki, cert=cert)
    assert r.returncode != 0, _out(r)
    identity_broker.wait_log("certificate verify failed", mark)


# ---------------------------------------------------------------------------
# 5. bad input on the TLS port
# ---------------------------------------------------------------------------
_rng = random.Random(20240611)
GARBAGE = {
    "http-request": b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "random-1k": bytes([0xAB]) + _rng.randbytes(1023),
    "mqtt-connect-in-clear": R.connect("plain-on-tls"),
    "mqtt-v5-connect-in-clear": R.connect("plain-on-tls-5", version=R.MQTT5),
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_garbage_on_tls_port_is_closed(opt_broker, pki, clients, name):
    existing = tls_client(clients, opt_broker.endpoint("tls"), pki)
    mark = opt_broker.log_mark()
    elapsed = closed_after(opt_broker.ports["tls"], GARBAGE[name], timeout=6)
    assert elapsed is not None, f"{name}: TLS port kept the connection open for 6 s"
    # Not a TLS record at all: OpenSSL rejects it at once, no need to wait for connect_timeout.
    assert elapsed < CONNECT_TIMEOUT, f"{name}: closed only after {elapsed:.2f}s"
    log = opt_broker.wait_log("closed:", mark)
    assert "TLS handshake" in log, log
    assert_healthy(opt_broker, clients, pki, existing=existing)


def test_stalled_handshakes_closed_after_connect_timeout(opt_broker, pki, clients):
    """Clients that stop before / in the middle of the handshake, or after it without sending
    CONNECT, are closed after about connect_timeout (2 s). Run concurrently to save time."""
    existing = tls_client(clients, opt_broker.endpoint("tls"), pki)
    port = opt_broker.ports["tls"]
    hello = client_hello(pki)
    results: dict[str, object] = {}

    def full_handshake_no_connect():
        ctx = ssl.create_default_context(cafile=str(pki.ca))
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=8) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.settimeout(max(0.1, start + 6 - time.monotonic()))
            try:
                while s.recv(1024):
                    pass
            except socket.timeout:
                return None
            except (ssl.SSLError, OSError):
                pass
            return time.monotonic() - start

    cases = {
        "nothing": lambda: closed_after(port, b"", timeout=6),
        "10-bytes-of-client-hello": lambda: closed_after(port, hello[:10], timeout=6),
        "client-hello-then-silence": lambda: closed_after(port, hello, timeout=6),
        "handshake-done-no-connect": full_handshake_no_connect,
    }

    def run(name, fn):
        try:
            results[name] = fn()
        except Exception as e:  # reported below
            results[name] = e

    threads = [threading.Thread(target=run, args=item, daemon=True) for item in cases.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(12)
    problems = []
    for name in cases:
        r = results.get(name, "thread did not finish")
        if not isinstance(r, float):
            problems.append(f"{name}: {r!r} (None = still open after 6 s)")
        elif r < CONNECT_TIMEOUT * 0.5:
            problems.append(f"{name}: closed after {r:.2f}s, long before connect_timeout={CONNECT_TIMEOUT}s")
    assert not problems, "\n".join(problems)
    log = opt_broker.log_text()
    assert "TLS handshake not completed within" in log, opt_broker.log_tail(40)
    assert "no CONNECT within" in log, opt_broker.log_tail(40)
    assert_healthy(opt_broker, clients, pki, existing=existing)


def test_handshake_after_bad_input_on_same_listener(opt_broker, pki, clients):
    """Interleave: garbage, a stalled client and a good client at the same time; the good one
    is served while the stalled one is still pending."""
    port = opt_broker.ports["tls"]
    stalled = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        stalled.sendall(client_hello(pki)[:10])
        assert closed_after(port, GARBAGE["random-1k"], timeout=6) is not None
        t0 = time.monotonic()
        tls_roundtrip(clients, opt_broker.endpoint("tls"), pki, tag="while-stalled")
        assert time.monotonic() - t0 < 5
    finally:
        stalled.close()


def test_client_renegotiation_does_not_hurt_broker(opt_broker, pki, clients):
    """TLS 1.2 client-initiated renegotiation (s_client's "R" command): whether the broker
    refuses it (closing that connection) or performs it, it must not hang or crash."""
    existing = tls_client(clients, opt_broker.endpoint("tls"), pki)
    cmd = [OPENSSL, "s_client", "-connect", f"127.0.0.1:{opt_broker.ports['tls']}", "-CAfile", str(pki.ca), "-tls1_2"]
    shell = "(sleep 0.5; printf 'R\\n'; sleep 1) | " + " ".join(shlex.quote(a) for a in cmd)
    out = _out(subprocess.run(shell, shell=True, capture_output=True, timeout=15))
    assert "New, TLSv1.2" in out and "RENEGOTIATING" in out, out
    assert_healthy(opt_broker, clients, pki, existing=existing)


# ---------------------------------------------------------------------------
# TLS record boundaries vs MQTT packet boundaries
# ---------------------------------------------------------------------------
def test_packets_split_over_many_tls_records(opt_broker, pki):
    """A CONNECT sent one byte per TLS record, then packets split mid-header."""
    c = TLSRawClient(opt_broker.ports["tls"], pki)
    try:
        for b in R.connect(f"bytewise-{uuid.uuid4().hex[:6]}"):
            c.send(bytes([b]))
        assert c.expect(R.CONNACK).rc == 0
        sub = R.subscribe(1, [("tls/bytewise", 1)])
        pub = R.publish("tls/bytewise", b"p" * 300, qos=1, pid=2)
        data = sub + pub
        for i in range(0, len(data), 7):
            c.send(data[i:i + 7])
        got = c.collect(1.0)
        kinds = sorted(p.type for p in got)
        assert kinds == sorted([R.SUBACK, R.PUBACK, R.PUBLISH]), got
        assert [p.payload for p in got if p.type == R.PUBLISH] == [b"p" * 300]
    finally:
        c.close()


def test_many_packets_in_one_tls_record(opt_broker, pki):
    """CONNECT + SUBSCRIBE + 20 PUBLISHes in a single write (one TLS record): all handled,
    including the ones OpenSSL already decrypted and buffered."""
    c = TLSRawClient(opt_broker.ports["tls"], pki)
    try:
        topic = f"tls/pipelined/{uuid.uuid4().hex[:6]}"
        data = R.connect(f"pipe-{uuid.uuid4().hex[:6]}") + R.subscribe(1, [(topic, 1)])
        data += b"".join(R.publish(topic, f"m{i}".encode(), qos=1, pid=10 + i) for i in range(20))
        c.send(data)
        assert c.expect(R.CONNACK).rc == 0
        got = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (sum(p.type == R.PUBACK for p in got) < 20
                                               or sum(p.type == R.PUBLISH for p in got) < 20):
            p = c.try_recv(deadline - time.monotonic())
            if p is None:
                break
            got.append(p)
            if p.type == R.PUBLISH:
                c.ack(p)
        assert sum(p.type == R.SUBACK for p in got) == 1, got
        assert sorted(p.pid for p in got if p.type == R.PUBACK) == list(range(10, 30)), got
        assert [p.payload for p in got if p.type == R.PUBLISH] == [f"m{i}".encode() for i in range(20)]
    finally:
        c.close()


def test_backlogged_output_over_tls_stays_intact(opt_broker, pki):
    """3 MB of distinct QoS 0 payloads to a TLS subscriber that does not read for a while (tiny
    receive buffer): the broker's TLS writes hit WANT_WRITE / partial writes and must resume with
    the same bytes; the subscriber then gets every message, in order, byte-exact."""
    topic = f"tls/backlog/{uuid.uuid4().hex[:6]}"
    sub = TLSRawClient(opt_broker.ports["tls"], pki, rcvbuf=4096)
    pub = TLSRawClient(opt_broker.ports["tls"], pki)
    n, rep = 300, 1700
    try:
        assert sub.connect(f"backlog-sub-{uuid.uuid4().hex[:6]}").rc == 0
        assert sub.subscribe([(topic, 0)]).codes == [0]
        assert pub.connect(f"backlog-pub-{uuid.uuid4().hex[:6]}").rc == 0
        for i in range(n):
            pub.send(R.publish(topic, f"{i:06d}".encode() * rep))
        time.sleep(1.0)  # let the broker's output back up
        payloads = []
        deadline = time.monotonic() + 15
        while len(payloads) < n and time.monotonic() < deadline:
            p = sub.try_recv(min(3.0, deadline - time.monotonic()))
            if p is None:
                break
            if p.type == R.PUBLISH:
                payloads.append(p.payload)
        assert len(payloads) == n, f"got {len(payloads)} of {n} messages"
        bad = [i for i, p in enumerate(payloads) if p != f"{i:06d}".encode() * rep]
        assert not bad, f"corrupted / reordered messages at {bad[:10]}"
    finally:
        sub.close()
        pub.close()
    assert opt_broker.alive()


# ---------------------------------------------------------------------------
# 6. SIGHUP certificate reload
# ---------------------------------------------------------------------------
def test_sighup_reloads_certificate(reload_broker, pki, clients):
    b = reload_broker
    port = b.ports["tls"]
    before = served_certificate(port, pki)
    assert fingerprint(before) == fingerprint(file_certificate(b.server_crt))
    existing = tls_client(clients, b.endpoint("tls"), pki)
    self_echo(existing, "before-reload")

    pki.issue_server_cert(b.server_crt, b.server_key)
    new = file_certificate(b.server_crt)
    assert fingerprint(new) != fingerprint(before)
    mark = b.log_mark()
    b.proc.send_signal(signal.SIGHUP)
    log = b.wait_log(f"reloaded TLS certificates for port {port}", mark)
    assert "failed" not in log, log

    # The connection made before the reload keeps its session and keeps working.
    self_echo(existing, "after-reload")
    # New connections get the new certificate.
    # (The reload is applied on the accepting loop just after the log line: allow a moment.)
    served_new = wait_until(lambda: fingerprint(served_certificate(port, pki)) == fingerprint(new),
                            timeout=5, interval=0.2)
    assert served_new, "new connections still get the old certificate after SIGHUP"
    tls_roundtrip(clients, b.endpoint("tls"), pki, tag="reloaded")
    assert b.alive()


def test_sighup_with_broken_certificate_keeps_old_one(reload_broker, pki, clients):
    b = reload_broker
    port = b.ports["tls"]
    current = served_certificate(port, pki)
    existing = tls_client(clients, b.endpoint("tls"), pki)
    good = b.server_crt.read_bytes()
    try:
        b.server_crt.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        mark = b.log_mark()
        b.proc.send_signal(signal.SIGHUP)
        log = b.wait_log("failed", mark)
        assert re.search(rf"TLS reload for port {port} failed", log), log
        assert f"reloaded TLS certificates for port {port}" not in log, log
        assert b.alive()
        # New connections still work, with the certificate loaded before.
        assert fingerprint(served_certificate(port, pki)) == fingerprint(current)
        tls_roundtrip(clients, b.endpoint("tls"), pki, tag="after-failed-reload")
        self_echo(existing, "after-failed-reload")
        assert_pubsub_works(b, "after-failed-reload")
    finally:
        b.server_crt.write_bytes(good)


# ---------------------------------------------------------------------------
# 7. max_connections per listener
# ---------------------------------------------------------------------------
def test_listener_max_connections(opt_broker, pki, clients):
    b = opt_broker
    port = b.ports["limited"]
    ep = b.endpoint("limited")
    # A failed handshake must give its slot back.
    assert closed_after(port, GARBAGE["http-request"], timeout=6) is not None
    time.sleep(0.2)

    c1 = tls_client(clients, ep, pki)
    c2 = tls_client(clients, ep, pki)
    mark = b.log_mark()

    # Third connection: closed at accept, long before connect_timeout would close it.
    elapsed = closed_after(port, b"", timeout=3)
    assert elapsed is not None and elapsed < 1.0, f"3rd connection not refused at accept (closed after {elapsed})"
    # A full TLS client must not get through either.
    assert handshake_then_connect(port, pki, timeout=4) == "closed"
    b.wait_log("connection limit 2 reached", mark)

    # The limit is per listener: the other listeners still take clients, and the two work.
    assert_pubsub_works(b, "limited-plain")
    tls_roundtrip(clients, b.endpoint("tls"), pki, tag="limited-other")
    self_echo(c1, "limited-1")
    self_echo(c2, "limited-2")

    # Closing one frees a slot.
    c1.disconnect()

    def third_fits():
        return handshake_then_connect(port, pki, timeout=3) == "connack"

    assert wait_until(third_fits, timeout=5, interval=0.2), "slot not released after a client disconnected"
