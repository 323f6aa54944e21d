"""Reload on SIGHUP without dropping a connection: the configuration file with its password and
ACL files, bans and limits. A file that does not load keeps the running configuration and the
log names it (file, line)."""

import json
import signal
import time

import pytest

import rawmqtt as R
from conftest import Broker, wait_until
from test_auth import ACL, make_password_file, pw, raw_connect

pytestmark = [pytest.mark.turnpike_only, pytest.mark.single_node("SIGHUP to one node's process")]

V3, V5 = R.MQTT311, R.MQTT5


@pytest.fixture
def reloadable(broker_factory):
    """Brokers whose turnpike.toml the test rewrites before a reload (conftest's factory)."""
    return broker_factory


def reload(b: Broker, expect: str = "configuration reloaded"):
    """Rewrites turnpike.toml from the broker's settings, sends SIGHUP and waits for `expect`."""
    before = b.log_text().count(expect)
    b._turnpike_config()
    b.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: b.log_text().count(expect) > before, 10), b.log_tail(30)
    time.sleep(0.2)                                    # the loops take the settings in their next iteration


def test_acl_reload_applies_to_a_connected_clients_next_packet(reloadable, tmp_path):
    make_password_file(tmp_path / "passwords")
    acl = tmp_path / "acl.conf"
    base = ACL.replace("allow readwrite cars/#\n", "allow readwrite cars/#\nallow read fleet/#\n")
    acl.write_text(base)
    b = reloadable(auth={"allow_anonymous": False, "password_file": str(tmp_path / "passwords"), "acl_file": str(acl)})
    backend, _ = raw_connect(b, V5, "backend", "backend", pw("backend"))
    assert backend.subscribe([("fleet/#", 1)]).codes == [1]
    car, _ = raw_connect(b, V5, "car-A", "car-A", pw("car-A"))
    assert car.publish("fleet/status", b"before", qos=1).rc == 0x87      # not in the ACL yet
    acl.write_text(base.replace("pattern\n", "pattern\nallow write fleet/status\n"))
    reload(b)
    assert car.publish("fleet/status", b"after", qos=1).rc == 0           # same connection, new ACL
    p = backend.expect(R.PUBLISH)
    assert (p.topic, p.payload) == ("fleet/status", b"after")
    backend.send(R.puback(p.pid, V5))
    # Taken away again: refused on the next packet.
    acl.write_text(base)
    reload(b)
    assert car.publish("fleet/status", b"again", qos=1).rc == 0x87
    car.close()
    backend.close()


def test_broken_acl_file_keeps_the_running_acl(reloadable, tmp_path):
    make_password_file(tmp_path / "passwords")
    acl = tmp_path / "acl.conf"
    acl.write_text(ACL)
    b = reloadable(auth={"allow_anonymous": False, "password_file": str(tmp_path / "passwords"), "acl_file": str(acl)})
    car, _ = raw_connect(b, V5, "car-A", "car-A", pw("car-A"))
    acl.write_text(ACL + "allow readwrite\n")                              # line 9: no filter
    reload(b, expect="configuration not reloaded")
    assert f"{acl}:9:" in b.log_text().rsplit("configuration not reloaded", 1)[1]
    # Still connected, the old ACL still in force.
    assert car.publish("cars/car-A/telemetry", b"ok", qos=1).rc == 0x10  # allowed, no subscribers
    assert car.publish("cars/car-B/telemetry", b"no", qos=1).rc == 0x87
    car.close()


def test_password_file_reload_admits_new_users_and_keeps_connected_ones(reloadable, tmp_path):
    pwfile = tmp_path / "passwords"
    make_password_file(pwfile, users=["car-A"])
    b = reloadable(auth={"allow_anonymous": False, "password_file": str(pwfile)})
    a, _ = raw_connect(b, V3, "car-A", "car-A", pw("car-A"))
    _, ack = raw_connect(b, V5, "car-B", "car-B", pw("car-B"))
    assert ack.rc == 0x86
    make_password_file(pwfile, users=["car-B"])                           # car-A removed, car-B added
    reload(b)
    c, ack = raw_connect(b, V5, "car-B", "car-B", pw("car-B"))
    assert ack.rc == 0
    _, ack = raw_connect(b, V5, "car-A2", "car-A", pw("car-A"))
    assert ack.rc == 0x86
    a.send(R.pingreq())
    assert a.expect(R.PINGRESP).type == R.PINGRESP                       # the connected client stays
    a.close()
    c.close()


def test_ban_and_limits_reload(reloadable):
    b = reloadable()
    keep = R.RawClient(b.port, b.host, version=V5)
    assert keep.connect("keeper").rc == 0
    b.bans = {"client_ids": ["stolen-car"]}
    b.limits["max_packet_size"] = 1024
    reload(b)
    c = R.RawClient(b.port, b.host, version=V5)
    assert c.connect("stolen-car").rc == 0x8A                              # Banned
    c = R.RawClient(b.port, b.host, version=V5)
    ack = c.connect("small")
    assert ack.rc == 0 and ack.props.get("MaximumPacketSize") == 1024, ack.props
    c.close()
    keep.send(R.pingreq())
    assert keep.expect(R.PINGRESP).type == R.PINGRESP
    keep.close()


def test_a_connected_client_keeps_what_its_connack_offered(reloadable):
    """A reload that raises max_topic_alias and lowers receive_maximum applies to new connections;
    one already connected is held to what its CONNACK said (alias 15 of an offered 10 is refused
    with 0x94, not looked up in a table sized for 10)."""
    b = reloadable(max_topic_alias=10)
    old = R.RawClient(b.port, b.host, version=V5)
    ack = old.connect("old")
    assert ack.props.get("TopicAliasMaximum") == 10 and ack.props.get("ReceiveMaximum") == 128
    old.send(R.publish("a/b", b"x", qos=0, version=V5, properties={"TopicAlias": 1}))   # its alias table exists
    b.limits["max_topic_alias"] = 20
    b.limits["receive_maximum"] = 2
    reload(b)
    new = R.RawClient(b.port, b.host, version=V5)
    ack = new.connect("new")
    assert ack.props.get("TopicAliasMaximum") == 20 and ack.props.get("ReceiveMaximum") == 2, ack.props
    for n in range(3):                                   # 3 unreleased QoS 2 are within the offered 128
        old.send(R.publish("a/b", b"x", qos=2, pid=n + 1, version=V5))
        assert old.expect(R.PUBREC).pid == n + 1
    old.send(R.publish("a/b", b"x", qos=0, version=V5, properties={"TopicAlias": 15}))
    d = old.expect(R.DISCONNECT)
    assert d.rc == 0x94, d
    new.send(R.publish("a/b", b"x", qos=0, version=V5, properties={"TopicAlias": 15}))
    new.send(R.pingreq())
    assert new.expect(R.PINGRESP).type == R.PINGRESP      # 15 is within the 20 it was offered
    assert_still_serving(b)


def test_settings_that_need_a_restart_are_named(reloadable):
    b = reloadable()
    b.limits["sys_interval"] = 5
    reload(b, expect="take effect at the next restart")
    assert "changes to sys_interval take effect at the next restart" in b.log_text()
    assert_still_serving(b)


def test_broken_config_file_keeps_everything(reloadable):
    b = reloadable()
    b.extra_toml = "\n[limits]\nmax_inflight = \n"
    reload(b, expect="configuration not reloaded")
    tail = b.log_text().rsplit("configuration not reloaded", 1)[1]
    assert "turnpike.toml:" in tail, tail
    assert_still_serving(b)


def assert_still_serving(b):
    c = R.RawClient(b.port, b.host, version=V5)
    assert c.connect("after-reload").rc == 0
    c.close()


# ---------------------------------------------------------------------------
# Bridges
# ---------------------------------------------------------------------------
from test_bridges import TELEMETRY_RULE, Receiver, bridge_metrics, publish_all  # noqa: E402
from conftest import free_port  # noqa: E402


def webhook_table(port, extra=""):
    return f'\n[bridges.webhook.crm]\nurl = "http://127.0.0.1:{port}"\nretry_backoff = 50\n{extra}\n'


@pytest.fixture
def rules_dir(tmp_path):
    d = tmp_path / "rules"
    d.mkdir()
    return d


def test_changed_bridge_hands_its_records_to_the_new_one(reloadable, rules_dir):
    """200 records retrying against an address nobody answers; the reload points the bridge at a
    receiver: the new bridge gets every one of them, each delivered once."""
    (rules_dir / "to_crm.sql").write_text(TELEMETRY_RULE)
    dead = free_port()
    b = reloadable(rules={"dir": str(rules_dir)}, extra_toml=webhook_table(dead))
    publish_all(b, 4, 50)
    m = bridge_metrics(b, lambda m: m["matched"] == 200 and m["retried"] > 0)
    assert m["matched"] == 200 and m["success"] == 0, m
    r = Receiver().start()
    try:
        b.extra_toml = webhook_table(r.port)
        reload(b, expect="bridges reloaded")
        assert "bridges reloaded: none started, webhook.crm replaced, none to stop" in b.log_text()
        got = r.wait_delivered(200, timeout=30)
        assert sorted((json.loads(q["body"])["vin"], json.loads(q["body"])["seq"]) for q in got) == \
            sorted((f"car{i}", n) for i in range(4) for n in range(50))
        m = bridge_metrics(b, lambda m: m["success"] == 200)
        assert m["success"] == 200 and m["queuing"] == 0 and m["inflight"] == 0, m
        # And it keeps taking new records.
        publish_all(b, 1, 10, topic="cars/{cid}/telemetry")
        assert len(r.wait_delivered(210, timeout=20)) == 210
    finally:
        r.stop()


def test_bridge_added_and_removed_with_its_rule(reloadable, rules_dir):
    r = Receiver().start()
    try:
        b = reloadable(rules={"dir": str(rules_dir)})
        (rules_dir / "to_crm.sql").write_text(TELEMETRY_RULE)
        b.extra_toml = webhook_table(r.port)
        reload(b, expect="bridges reloaded")
        assert "bridges reloaded: webhook.crm started, none replaced, none to stop" in b.log_text()
        assert wait_until(lambda: "rules: 1 active (to_crm)" in b.log_text(), 5)
        publish_all(b, 2, 5)
        assert len(r.wait_delivered(10, timeout=20)) == 10
        (rules_dir / "to_crm.sql").unlink()
        b.extra_toml = ""
        reload(b, expect="bridge webhook.crm stopped")
        publish_all(b, 2, 5)
        time.sleep(0.5)
        assert len(r.delivered()) == 10
    finally:
        r.stop()


def test_bridge_removal_refused_while_a_rule_names_it(reloadable, rules_dir):
    r = Receiver().start()
    try:
        (rules_dir / "to_crm.sql").write_text(TELEMETRY_RULE)
        b = reloadable(rules={"dir": str(rules_dir)}, extra_toml=webhook_table(r.port))
        b.extra_toml = ""
        reload(b, expect="bridges not reloaded")
        assert "to_crm.sql" in b.log_text().rsplit("bridges not reloaded", 1)[1]
        publish_all(b, 1, 5)
        assert len(r.wait_delivered(5, timeout=20)) == 5    # the bridge still runs
    finally:
        r.stop()


# ---------------------------------------------------------------------------
# POST /api/v5/reload: the same reload, through the admin listener
# ---------------------------------------------------------------------------
import threading  # noqa: E402

import requests  # noqa: E402

KEY, SECRET = "ops", "reload-secret"


def admin_table(port):
    return f'\n[admin]\nport = {port}\napi_key = "{KEY}"\napi_secret = "{SECRET}"\n'


def with_admin(reloadable, **kw) -> Broker:
    port = free_port()
    kw["extra_toml"] = admin_table(port) + kw.get("extra_toml", "")
    b = reloadable(**kw)
    b.admin_port = port
    assert wait_until(lambda: _answers(port), 10), b.log_tail()
    return b


def _answers(port) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/api/v5/status", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def api_reload(b: Broker, body=None) -> requests.Response:
    """Rewrites turnpike.toml from the broker's settings and asks the admin listener to reload."""
    b._turnpike_config()
    kw = {"json": body} if body is not None else {}
    return requests.post(f"http://127.0.0.1:{b.admin_port}/api/v5/reload", auth=(KEY, SECRET), timeout=20, **kw)


def acl_broker_with_car(reloadable, tmp_path):
    """A broker with the admin listener, a password file and ACL (returned to be rewritten), and
    car-A connected to it."""
    make_password_file(tmp_path / "passwords")
    acl = tmp_path / "acl.conf"
    acl.write_text(ACL)
    b = with_admin(reloadable, auth={"allow_anonymous": False, "password_file": str(tmp_path / "passwords"),
                                     "acl_file": str(acl)})
    car, _ = raw_connect(b, V5, "car-A", "car-A", pw("car-A"))
    return b, acl, car


def test_api_reload_applies_an_acl_to_a_connected_client(reloadable, tmp_path):
    b, acl, car = acl_broker_with_car(reloadable, tmp_path)
    assert car.publish("fleet/status", b"before", qos=1).rc == 0x87
    acl.write_text(ACL.replace("pattern\n", "pattern\nallow write fleet/status\n"))
    r = api_reload(b)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["applied"] is True and j["config"]["status"] == "applied" and j["config"]["restart_needed"] == []
    assert j["rules"]["status"] == "applied" and j["bridges"]["status"] == "unchanged" and j["tls"]["status"] == "applied"
    time.sleep(0.2)                                    # the loops take the settings in their next iteration
    assert car.publish("fleet/status", b"after", qos=1).rc == 0x10      # allowed now (no subscriber)
    assert "POST /api/v5/reload: reloading" in b.log_text()
    car.close()


def test_api_reload_with_a_broken_acl_answers_the_error_and_keeps_the_old_acl(reloadable, tmp_path):
    b, acl, car = acl_broker_with_car(reloadable, tmp_path)
    acl.write_text(ACL + "allow readwrite\n")                              # line 9: no filter
    r = api_reload(b)
    assert r.status_code == 400, r.text
    j = r.json()
    assert j["code"] == "RELOAD_FAILED" and j["applied"] is False
    assert j["config"]["status"] == "failed" and f"{acl}:9:" in j["config"]["error"], j
    assert f"{acl}:9:" in j["message"] and "the running configuration stays" in j["message"]
    assert j["bridges"]["status"] == "skipped"
    assert car.publish("cars/car-A/telemetry", b"ok", qos=1).rc == 0x10  # the old ACL still in force
    assert car.publish("cars/car-B/telemetry", b"no", qos=1).rc == 0x87
    car.close()


def test_api_reload_with_a_broken_config_file(reloadable):
    b = with_admin(reloadable)
    keep = R.RawClient(b.port, b.host, version=V5)
    assert keep.connect("keeper").rc == 0
    admin = b.extra_toml
    b.extra_toml = admin + "\n[limits]\nmax_inflight = \n"
    r = api_reload(b)
    assert r.status_code == 400 and "turnpike.toml:" in r.json()["config"]["error"], r.text
    b.extra_toml = admin
    assert api_reload(b).status_code == 200                               # fixed: applies again
    keep.send(R.pingreq())
    assert keep.expect(R.PINGRESP).type == R.PINGRESP                     # connected throughout


def test_api_reload_reports_rules_bridges_and_restart_settings(reloadable, rules_dir):
    rcv = Receiver().start()
    try:
        b = with_admin(reloadable, rules={"dir": str(rules_dir)})
        admin = b.extra_toml
        (rules_dir / "to_crm.sql").write_text(TELEMETRY_RULE)
        b.extra_toml = admin + webhook_table(rcv.port)
        b.limits["sys_interval"] = 7
        j = api_reload(b).json()
        assert j["applied"] is True, j
        assert j["bridges"] == {"status": "applied", "started": ["webhook.crm"], "replaced": [], "stopped": []}, j
        assert j["rules"]["active"] == ["to_crm"] and j["config"]["restart_needed"] == ["sys_interval"], j
        publish_all(b, 1, 3)
        assert len(rcv.wait_delivered(3, timeout=20)) == 3
        # A rule file that does not parse: the error with file:line:col, the old rule stays.
        (rules_dir / "broken.sql").write_text("CREATE RULE broken AS\nSELECT FROM\n")
        r = api_reload(b)
        assert r.status_code == 400, r.text
        j = r.json()
        assert j["rules"]["status"] == "failed" and f"{rules_dir / 'broken.sql'}:2:" in j["rules"]["error"], j
        assert j["rules"]["active"] == ["to_crm"] and j["config"]["status"] == "applied"
        (rules_dir / "broken.sql").unlink()
        # The bridge removed with its rule: stopped.
        (rules_dir / "to_crm.sql").unlink()
        b.extra_toml = admin
        j = api_reload(b).json()
        assert j["bridges"]["stopped"] == ["webhook.crm"] and j["rules"]["active"] == [], j
        assert api_reload(b, {"dry_run": True}).status_code == 400           # no options
    finally:
        rcv.stop()


def test_api_reloads_and_sighup_take_turns(reloadable):
    """Reloads from the API and from SIGHUP at once: every one answers, and each runs whole
    before the next begins (the log never shows a reload starting inside another)."""
    b = with_admin(reloadable)
    b._turnpike_config()
    codes = []

    def post():
        for _ in range(3):
            codes.append(requests.post(f"http://127.0.0.1:{b.admin_port}/api/v5/reload", auth=(KEY, SECRET), timeout=20).status_code)

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for _ in range(3):
        b.proc.send_signal(signal.SIGHUP)
        time.sleep(0.05)
    for t in threads:
        t.join(30)
    assert codes == [200] * 6
    assert wait_until(lambda: b.log_text().count("reloading the configuration") == 9, 10), b.log_tail(60)
    events = [("start" if "reloading the configuration" in l else "end") for l in b.log_text().splitlines()
              if "reloading the configuration" in l or "rules: 0 active" in l]
    events = events[events.index("start"):]                               # from the first reload on
    assert events == ["start", "end"] * 9, events
