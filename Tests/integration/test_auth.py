"""Authentication (password file, JWT, anonymous) and the ACL, end to end.

Password files are made with `turnpike passwd -b` (and one with Debian's mosquitto_passwd);
JWTs are signed here with the standard library (HS256)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

import rawmqtt
from conftest import MOSQUITTO_PUB, MOSQUITTO_SUB, TURNPIKE_BIN, V5, V311, Broker, wait_until

pytestmark = pytest.mark.turnpike_only

ACL = """\
# The backend reads and commands every car; cars reach only their own topics.
user backend
allow readwrite cars/#

pattern
allow write cars/%c/#
allow read cars/%c/cmd
deny readwrite #
"""

USERS = ["backend", "ops", "car-A", "car-B"]
SECRET = "jwt-test-secret"


def pw(user: str) -> str:
    return user + "-pw"


def passwd(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(TURNPIKE_BIN), "passwd", *args], capture_output=True, text=True,
                          input=input, timeout=30)


def make_password_file(path: Path, users=USERS, iterations: int = 1000) -> Path:
    first = True
    for u in users:
        r = passwd(str(path), u, "-b", pw(u), "--iterations", str(iterations), *(["-c"] if first else []))
        assert r.returncode == 0, r.stderr
        first = False
    return path


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def hs256(claims: dict, secret: str = SECRET) -> str:
    signing = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64url(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64url(sig)


def raw_connect(broker: Broker, version: int, client_id: str, username=None, password=None, **kw):
    c = rawmqtt.RawClient(broker.port, broker.host, version=version)
    ack = c.connect(client_id, username=username,
                    password=password.encode() if isinstance(password, str) else password, **kw)
    return c, ack


def paho_connect_rc(broker: Broker, version: int, client_id: str, username: str, password: str) -> int:
    """CONNACK reason code (v5) or return code (v3) as paho reports it."""
    proto = mqtt.MQTTv5 if version == V5 else mqtt.MQTTv311
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=proto)
    c.username_pw_set(username, password)
    got = []
    c.on_connect = lambda cl, ud, flags, rc, props: got.append(rc)
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        assert wait_until(lambda: got, 5), "no CONNACK"
    finally:
        c.disconnect()
        c.loop_stop()
    rc = got[0]
    return rc.value if version == V5 else (0 if not rc.is_failure else {134: 4, 135: 5}.get(rc.value, rc.value))


@pytest.fixture(scope="module")
def auth_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("auth")
    make_password_file(d / "passwords")
    (d / "acl.conf").write_text(ACL)
    return d


@pytest.fixture(scope="module")
def secured(auth_dir):
    """Password file + ACL + $SYS for ops only, no anonymous clients."""
    b = Broker(auth={
        "allow_anonymous": False,
        "password_file": str(auth_dir / "passwords"),
        "acl_file": str(auth_dir / "acl.conf"),
        "sys_readers": ["ops"],
    }).start()
    yield b
    b.stop()
    b.cleanup()


# ---------------------------------------------------------------------------
# Authentication
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("version,expected", [(V5, 0x86), (V311, 4)])
def test_wrong_password_is_refused(secured, version, expected):
    c, ack = raw_connect(secured, version, "car-A", "car-A", "not-the-password")
    assert ack.rc == expected
    with pytest.raises(rawmqtt.ConnectionClosed):
        c.recv(2)
    c.close()
    c, ack = raw_connect(secured, version, "car-A", "nobody", "x")
    assert ack.rc == expected, "unknown user"
    c.close()
    assert paho_connect_rc(secured, version, "car-A", "car-A", "wrong") == expected


def test_wrong_password_with_mosquitto_pub(secured):
    for version, text in (("mqttv311", "bad user name or password"), ("mqttv5", "bad user name or password")):
        r = subprocess.run([MOSQUITTO_PUB, "-h", secured.host, "-p", str(secured.port), "-V", version,
                            "-u", "car-A", "-P", "wrong", "-i", "car-A", "-t", "cars/car-A/x", "-m", "1"],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode != 0
        assert text in (r.stderr + r.stdout).lower(), r.stderr


@pytest.mark.parametrize("version", [V5, V311])
def test_good_password_is_accepted(secured, version):
    c, ack = raw_connect(secured, version, "car-A", "car-A", pw("car-A"))
    assert ack.rc == 0
    c.disconnect()
    assert paho_connect_rc(secured, version, "car-B", "car-B", pw("car-B")) == 0
    r = subprocess.run([MOSQUITTO_PUB, "-h", secured.host, "-p", str(secured.port), "-u", "car-A",
                        "-P", pw("car-A"), "-i", "car-A", "-t", "cars/car-A/telemetry", "-m", "1", "-q", "1"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("version,expected", [(V5, 0x87), (V311, 5)])
def test_anonymous_refused_when_not_allowed(secured, version, expected):
    c, ack = raw_connect(secured, version, "anon")
    assert ack.rc == expected
    c.close()


def test_anonymous_allowed_by_default(broker_factory, auth_dir):
    b = broker_factory(auth={"password_file": str(auth_dir / "passwords")})
    c, ack = raw_connect(b, V5, "anon")
    assert ack.rc == 0
    c.close()
    c, ack = raw_connect(b, V5, "car-A", "car-A", "wrong")
    assert ack.rc == 0x86, "a user name that is given is still checked"
    c.close()


def test_mosquitto_passwd_file_and_default_iterations(broker_factory, tmp_path):
    f = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(f), "legacy", "legacy-pw"], check=True, timeout=10)
    r = passwd(str(f), "modern", "-b", "modern-pw")  # default 210,000 iterations, appended
    assert r.returncode == 0, r.stderr
    lines = f.read_text().splitlines()
    assert lines[0].startswith("legacy:$7$101$") and lines[1].startswith("modern:$7$210000$")
    b = broker_factory(auth={"password_file": str(f), "allow_anonymous": False})
    for user in ("legacy", "modern"):
        c, ack = raw_connect(b, V5, user, user, user + "-pw")
        assert ack.rc == 0, user
        c.close()
        c, ack = raw_connect(b, V311, user, user, "nope")
        assert ack.rc == 4, user
        c.close()


def test_passwd_command(tmp_path):
    f = tmp_path / "pw"
    assert passwd(str(f), "a", "-b", "x").returncode != 0, "no -c and no file"
    assert passwd(str(f), "a", "-c", "-b", "x", "--iterations", "10").returncode == 0
    assert passwd(str(f), "b", "-b", "y", "--iterations", "10").returncode == 0
    assert passwd(str(f), "a", "-b", "z", "--iterations", "10").returncode == 0, "change a password"
    assert [l.split(":")[0] for l in f.read_text().splitlines()] == ["b", "a"]
    assert passwd(str(f), "b", "-D").returncode == 0
    assert [l.split(":")[0] for l in f.read_text().splitlines()] == ["a"]
    assert passwd(str(f), "b", "-D").returncode != 0, "deleting a missing user"
    assert oct(f.stat().st_mode & 0o777) == "0o600"
    # Without -b the password is read twice (from the terminal; here from stdin).
    r = passwd(str(f), "c", "--iterations", "10", input="one\ntwo\n")
    assert r.returncode != 0 and "do not match" in r.stderr
    r = passwd(str(f), "c", "--iterations", "10", input="same\nsame\n")
    assert r.returncode == 0, r.stderr
    assert passwd(str(f), "bad:name", "-b", "x").returncode != 0


def test_bad_files_stop_the_start(tmp_path):
    (tmp_path / "acl.conf").write_text("pattern\nallow read cars/#\nallow subscribe x\n")
    b = Broker(auth={"acl_file": str(tmp_path / "acl.conf")})
    with pytest.raises(RuntimeError, match=r"acl\.conf:3: access must be read, write or readwrite"):
        b.start()
    b.cleanup()
    (tmp_path / "pw").write_text("alice:$7$zz$abc$def\n")
    b = Broker(auth={"password_file": str(tmp_path / "pw")})
    with pytest.raises(RuntimeError, match=r"pw:1: unreadable hash for 'alice'"):
        b.start()
    b.cleanup()
    b = Broker(auth={"acl_default": "deny"})
    with pytest.raises(RuntimeError, match=r"'acl_default' in \[auth\]: needs acl_file"):
        b.start()
    b.cleanup()


# ---------------------------------------------------------------------------
# JWT
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def jwt_broker(tmp_path_factory):
    d = tmp_path_factory.mktemp("jwt")
    (d / "acl.conf").write_text("pattern\nallow write cars/%u/#\nallow read cars/%u/cmd\n")
    b = Broker(auth={"allow_anonymous": False, "jwt_secret": SECRET, "acl_file": str(d / "acl.conf")}).start()
    yield b
    b.stop()
    b.cleanup()


@pytest.mark.parametrize("version", [V5, V311])
def test_jwt_accepted_and_expired_refused(jwt_broker, version):
    now = int(time.time())
    good = hs256({"sub": "car-J", "exp": now + 300})
    c, ack = raw_connect(jwt_broker, version, "jwt-client", "car-J", good)
    assert ack.rc == 0
    # The token's sub is the user name for the ACL (%u).
    assert c.subscribe([("cars/car-J/cmd", 1)]).codes == [1]
    assert c.subscribe([("cars/car-K/cmd", 1)]).codes == [0x87 if version == V5 else 0x80]
    c.close()

    expired = hs256({"sub": "car-J", "exp": now - 300})
    c, ack = raw_connect(jwt_broker, version, "jwt-client", "car-J", expired)
    assert ack.rc == (0x86 if version == V5 else 4)
    c.close()
    early = hs256({"sub": "car-J", "nbf": now + 300})
    forged = hs256({"sub": "car-J", "exp": now + 300}, secret="guess")
    for token in (early, forged):
        c, ack = raw_connect(jwt_broker, version, "jwt-client", "car-J", token)
        assert ack.rc == (0x86 if version == V5 else 4)
        c.close()


def test_jwt_client_id_claim_binds_the_client(jwt_broker):
    token = hs256({"sub": "car-J", "client_id": "car-J", "exp": int(time.time()) + 300})
    c, ack = raw_connect(jwt_broker, V5, "car-J", "x", token)
    assert ack.rc == 0
    c.close()
    c, ack = raw_connect(jwt_broker, V5, "someone-else", "x", token)
    assert ack.rc == 0x87
    c.close()


def test_jwt_with_paho_and_mosquitto_pub(jwt_broker):
    token = hs256({"sub": "car-P", "exp": int(time.time()) + 300})
    assert paho_connect_rc(jwt_broker, V5, "p1", "car-P", token) == 0
    r = subprocess.run([MOSQUITTO_PUB, "-h", jwt_broker.host, "-p", str(jwt_broker.port), "-V", "mqttv5",
                        "-u", "car-P", "-P", token, "-t", "cars/car-P/telemetry", "-m", "1", "-q", "1"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    expired = hs256({"sub": "car-P", "exp": int(time.time()) - 300})
    assert paho_connect_rc(jwt_broker, V5, "p1", "car-P", expired) == 0x86


# ---------------------------------------------------------------------------
# ACL
# ---------------------------------------------------------------------------
def login(broker, version, user, client_id=None):
    c, ack = raw_connect(broker, version, client_id or user, user, pw(user))
    assert ack.rc == 0, (user, ack)
    return c


@pytest.mark.parametrize("version", [V5, V311])
def test_car_cannot_subscribe_to_another_cars_topics(secured, version):
    a = login(secured, version, "car-A")
    denied = 0x87 if version == V5 else 0x80
    assert a.subscribe([("cars/car-B/cmd", 1)]).codes == [denied]
    assert a.subscribe([("cars/+/cmd", 1)]).codes == [denied]
    assert a.subscribe([("cars/#", 1)]).codes == [denied]
    assert a.subscribe([("$share/g/cars/car-B/cmd", 1)]).codes == [denied]
    assert a.subscribe([("cars/car-A/cmd", 1), ("cars/car-B/cmd", 0)]).codes == [1, denied]
    a.close()


@pytest.mark.parametrize("version", [V5, V311])
def test_car_cannot_publish_on_another_cars_topics(secured, version):
    backend = login(secured, V5, "backend", "backend-" + str(version))
    assert backend.subscribe([("cars/#", 1)]).codes == [1]
    a = login(secured, version, "car-A")

    ack = a.publish("cars/car-B/telemetry", b"forged", qos=1)
    assert ack.rc == (0x87 if version == V5 else 0)
    if version == V5:
        a.send(rawmqtt.publish("cars/car-B/cmd", b"forged", 2, 77, version=version))
        rec = a.expect(rawmqtt.PUBREC)
        assert (rec.pid, rec.rc) == (77, 0x87)
    else:
        a.publish("cars/car-B/cmd", b"forged", qos=2)  # acknowledged, dropped
    a.publish("cars/car-B/telemetry", b"forged", qos=0)

    a.publish("cars/car-A/telemetry", b"mine", qos=1)
    p = backend.expect(rawmqtt.PUBLISH)
    assert (p.topic, p.payload) == ("cars/car-A/telemetry", b"mine"), "only the allowed message arrives"
    backend.send(rawmqtt.puback(p.pid, V5))
    assert backend.try_recv(0.5) is None
    a.close()
    backend.close()


def test_car_uses_its_own_topics(secured, cli):
    sub = cli.sub(secured, "cars/car-A/cmd", qos=1, count=1, extra=["-u", "car-A", "-P", pw("car-A"), "-i", "car-A"])
    cli.pub(secured, "cars/car-A/cmd", "unlock", qos=1, extra=["-u", "backend", "-P", pw("backend")])
    assert [m["payload"] for m in sub.wait_messages(1)] == ["unlock"]


def test_will_topic_outside_the_acl_is_refused(secured):
    for version, code in ((V5, 0x87), (V311, 5)):
        c, ack = raw_connect(secured, version, "car-A", "car-A", pw("car-A"),
                             will={"topic": "cars/car-B/lost", "payload": b"x"})
        assert ack.rc == code
        c.close()
    c, ack = raw_connect(secured, V5, "car-A", "car-A", pw("car-A"), will={"topic": "cars/car-A/lost", "payload": b"x"})
    assert ack.rc == 0
    c.close()


@pytest.mark.single_node("$SYS is each node's own")
def test_sys_only_for_sys_readers(secured):
    car = login(secured, V5, "car-A")
    assert car.subscribe([("$SYS/#", 0)]).codes == [0x87]
    assert car.subscribe([("$SYS/broker/uptime", 0)]).codes == [0x87]
    backend = login(secured, V311, "backend")
    assert backend.subscribe([("$SYS/broker/#", 0)]).codes == [0x80], "the ACL's cars/# does not reach $SYS"

    # A denied publish shows up in the counter that ops can read.
    car.publish("elsewhere", b"x", qos=1)
    ops = login(secured, V5, "ops")
    assert ops.subscribe([("$SYS/broker/publish/messages/denied", 0)]).codes == [0]

    def denied():
        p = ops.try_recv(1.5)
        return p is not None and p.type == rawmqtt.PUBLISH and int(p.payload) >= 1
    assert wait_until(denied, 5)
    for c in (car, backend, ops):
        c.close()


def test_mosquitto_sub_sees_denied_subscription(secured):
    r = subprocess.run([MOSQUITTO_SUB, "-h", secured.host, "-p", str(secured.port), "-V", "mqttv5",
                        "-u", "car-A", "-P", pw("car-A"), "-i", "car-A", "-t", "cars/car-B/cmd", "-C", "1", "-W", "2"],
                       capture_output=True, text=True, timeout=10)
    assert "all subscription requests were denied" in r.stderr.lower(), r.stderr
