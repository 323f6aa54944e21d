"""The rule engine end to end: rules loaded from a [rules] dir, republish, WHERE, $events,
SIGHUP reload, dead letters, $SYS/rules metrics, and `turnpike rules check|test`."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, TURNPIKE_BIN, V5, V311, wait_until

pytestmark = pytest.mark.turnpike_only

EXAMPLES = REPO / "rules"


def telemetry(vin: str, speed: float = 88.0, lat: float = 48.14, lon: float = 11.58, battery: int = 80) -> str:
    """One mqbench fleet telemetry message."""
    return json.dumps({"timestamp": int(time.time() * 1e6), "vin": vin, "speed": speed,
                       "pos": {"lat": lat, "lon": lon}, "heading": 90, "battery": battery,
                       "odometer": 12345.6})


def write_rule(d: Path, name: str, text: str) -> Path:
    p = d / f"{name}.sql"
    p.write_text(text)
    return p


def republish_rule(name: str, src: str, dst: str, where: str | None = None) -> str:
    w = f"\nWHERE {where}" if where else ""
    return (f"CREATE RULE {name} AS\nSELECT payload.n AS n, topic\nFROM \"{src}\"{w}\n"
            f"INTO republish(topic = '{dst}', qos = 1);\n")


@pytest.fixture
def rules_dir(tmp_path) -> Path:
    d = tmp_path / "rules"
    d.mkdir()
    return d


@pytest.fixture
def examples_dir(tmp_path) -> Path:
    """A copy of the example rules in rules/."""
    d = tmp_path / "examples"
    shutil.copytree(EXAMPLES, d)
    return d


def start(broker_factory, d: Path, dead_letter: bool = True):
    return broker_factory(rules={"dir": str(d), "dead_letter": dead_letter})


def sighup_and_wait(b, marker: str, timeout: float = 5.0):
    """SIGHUP the broker and wait until the log has one more line containing ``marker``."""
    before = b.log_text().count(marker)
    b.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: b.log_text().count(marker) > before, timeout), \
        f"no new {marker!r} in the log after SIGHUP"
    time.sleep(0.2)  # each loop swaps the rule set in between two messages


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([str(TURNPIKE_BIN), *args], capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------------------
# republish and WHERE
# ---------------------------------------------------------------------------
def test_overspeed_example_republishes_transformed_telemetry(broker_factory, examples_dir, cli, uid):
    b = start(broker_factory, examples_dir)
    vin = f"WVW{uid}"
    sub = cli.sub(b, f"fleet/alerts/{vin}", qos=1, count=1)
    cli.pub(b, f"cars/{vin}/telemetry", telemetry(vin, speed=142.5, lat=48.1), qos=1)
    msgs = sub.wait_messages(1)
    assert len(msgs) == 1, b.log_tail(30)
    m = msgs[0]
    assert m["topic"] == f"fleet/alerts/{vin}"
    assert m["qos"] == 1
    row = json.loads(m["payload"])
    assert set(row) == {"vin", "speed", "lat", "ts"}
    assert row["vin"] == vin and row["speed"] == 142.5 and row["lat"] == 48.1
    assert abs(row["ts"] - time.time() * 1000) < 60_000, "ts is the arrival time in ms"


def test_where_rejects_non_matching_messages(broker_factory, examples_dir, cli, uid):
    b = start(broker_factory, examples_dir)
    vin = f"WVW{uid}"
    sub = cli.sub(b, f"fleet/+/{vin}", qos=1)
    # Inside the geofence, battery fine, 88 km/h: no rule passes.
    cli.pub(b, f"cars/{vin}/telemetry", telemetry(vin, speed=88), qos=1)
    cli.pub(b, f"cars/{vin}/telemetry", telemetry(vin, speed=131), qos=1)
    msgs = sub.wait_messages(1)
    time.sleep(0.5)
    msgs = sub.messages()
    assert [m["topic"] for m in msgs] == [f"fleet/alerts/{vin}"], msgs
    assert json.loads(msgs[0]["payload"])["speed"] == 131


def test_examples_low_battery_geofence_and_batch(broker_factory, examples_dir, cli, uid):
    b = start(broker_factory, examples_dir)
    vin = f"WVW{uid}"
    sub = cli.sub(b, [f"fleet/battery/{vin}", f"fleet/geofence/{vin}", f"fleet/readings/{vin}"], qos=1)
    cli.pub(b, f"cars/{vin}/telemetry", telemetry(vin, battery=9), qos=1)
    cli.pub(b, f"cars/{vin}/telemetry", telemetry(vin, lat=52.52, lon=13.40), qos=1)
    batch = {"vin": vin, "readings": [{"timestamp": 1, "speed": 50, "pos": {"lat": 48.1, "lon": 11.5}, "battery": 70},
                                      {"timestamp": 2},
                                      {"timestamp": 3, "speed": 60, "pos": {"lat": 48.2, "lon": 11.6}, "battery": 69}]}
    cli.pub(b, f"cars/{vin}/telemetry/batch", json.dumps(batch), qos=1)
    msgs = sub.wait_messages(4)
    time.sleep(0.3)
    msgs = sub.messages()
    by_topic: dict[str, list] = {}
    for m in msgs:
        by_topic.setdefault(m["topic"], []).append(json.loads(m["payload"]))
    assert [r["battery"] for r in by_topic[f"fleet/battery/{vin}"]] == [9]
    assert [(r["lat"], r["lon"]) for r in by_topic[f"fleet/geofence/{vin}"]] == [(52.52, 13.40)]
    readings = by_topic[f"fleet/readings/{vin}"]
    assert [(r["reading_ts"], r["speed"]) for r in readings] == [(1, 50), (3, 60)], "INCASE drops the reading without speed"
    assert all(r["vin"] == vin for r in readings)


def test_republished_messages_do_not_retrigger_rules(broker_factory, rules_dir, clients, uid):
    write_rule(rules_dir, "echo", republish_rule("echo", f"a/{uid}/#", f"a/{uid}/out"))
    b = start(broker_factory, rules_dir)
    sub = clients(b, "loop-sub")
    sub.subscribe(f"a/{uid}/#", qos=1)
    pub = clients(b, "loop-pub")
    pub.publish(f"a/{uid}/in", json.dumps({"n": 1}), qos=1)
    got = sub.collect(2)
    assert sorted(m.topic for m in got) == [f"a/{uid}/in", f"a/{uid}/out"]
    sub.expect_none(1.0)


# ---------------------------------------------------------------------------
# SIGHUP reload
# ---------------------------------------------------------------------------
def test_sighup_with_broken_rule_keeps_old_rules(broker_factory, rules_dir, clients, uid):
    write_rule(rules_dir, "first", republish_rule("first", f"h/{uid}/in", f"h/{uid}/first"))
    b = start(broker_factory, rules_dir)
    sub = clients(b, "hup-sub")
    sub.subscribe(f"h/{uid}/+", qos=1)
    pub = clients(b, "hup-pub")
    pub.publish(f"h/{uid}/in", json.dumps({"n": 1}), qos=1)
    assert sorted(m.topic for m in sub.collect(2)) == [f"h/{uid}/first", f"h/{uid}/in"]

    # A valid new rule next to a broken one: neither is activated, the old set stays.
    write_rule(rules_dir, "second", republish_rule("second", f"h/{uid}/in", f"h/{uid}/second"))
    broken = write_rule(rules_dir, "third", "CREATE RULE third AS\nSELECT speedd(payload.n) AS s\n"
                                            f"FROM \"h/{uid}/in\"\nINTO log();\n")
    sighup_and_wait(b, "rules not reloaded")
    log = b.log_text()
    assert f"{broken}:2:8: unknown function 'speedd'" in log
    assert "\nSELECT speedd(payload.n) AS s\n       ^" in log

    pub.publish(f"h/{uid}/in", json.dumps({"n": 2}), qos=1)
    assert sorted(m.topic for m in sub.collect(2)) == [f"h/{uid}/first", f"h/{uid}/in"]
    sub.expect_none(0.5)


@pytest.mark.single_node("SIGHUP to one node's process")
def test_sighup_with_fixed_rule_activates_it(broker_factory, rules_dir, clients, uid):
    write_rule(rules_dir, "first", republish_rule("first", f"h/{uid}/in", f"h/{uid}/first"))
    write_rule(rules_dir, "second", "CREATE RULE second AS SELECT FROM nowhere;\n")
    with pytest.raises(RuntimeError, match="second.sql:1:"):
        start(broker_factory, rules_dir)
    # Start with the good rule only, then add the fixed one.
    (rules_dir / "second.sql").unlink()
    b = start(broker_factory, rules_dir)
    sub = clients(b, "fix-sub")
    sub.subscribe(f"h/{uid}/+", qos=1)
    pub = clients(b, "fix-pub")

    write_rule(rules_dir, "second", republish_rule("second", f"h/{uid}/in", f"h/{uid}/second", where="payload.n > 1"))
    sighup_and_wait(b, "rules: 2 active (first, second)")
    pub.publish(f"h/{uid}/in", json.dumps({"n": 1}), qos=1)
    assert sorted(m.topic for m in sub.collect(2)) == [f"h/{uid}/first", f"h/{uid}/in"]
    pub.publish(f"h/{uid}/in", json.dumps({"n": 2}), qos=1)
    got = sub.collect(3)
    assert sorted(m.topic for m in got) == [f"h/{uid}/first", f"h/{uid}/in", f"h/{uid}/second"]
    second = next(m for m in got if m.topic.endswith("/second"))
    assert json.loads(second.payload) == {"n": 2, "topic": f"h/{uid}/in"}

    # Removing the file removes the rule.
    (rules_dir / "second.sql").unlink()
    sighup_and_wait(b, "rules: 1 active (first)")
    pub.publish(f"h/{uid}/in", json.dumps({"n": 3}), qos=1)
    assert sorted(m.topic for m in sub.collect(2)) == [f"h/{uid}/first", f"h/{uid}/in"]
    sub.expect_none(0.5)


# ---------------------------------------------------------------------------
# $events
# ---------------------------------------------------------------------------
def test_event_rules_fire_on_connect_and_disconnect(broker_factory, examples_dir, clients, uid):
    b = start(broker_factory, examples_dir)
    cid = f"car-{uid}"
    watcher = clients(b, "presence-watcher")
    watcher.subscribe(f"$fleet/presence/{cid}", qos=1)
    everything = clients(b, "hash-watcher")
    everything.subscribe("#", qos=1)
    car = clients(b, cid, version=V311)
    m = watcher.get()
    row = json.loads(m.payload)
    assert m.topic == f"$fleet/presence/{cid}"
    assert not m.retain
    assert row["clientid"] == cid and row["event"] == "client.connected"
    assert abs(row["ts"] - time.time() * 1000) < 60_000
    car.disconnect()
    row = json.loads(watcher.get().payload)
    assert row["clientid"] == cid and row["event"] == "client.disconnected"
    # The example rules change nothing a client did not ask for: a '#' subscriber sees no
    # presence messages, and none is retained for a later subscriber.
    everything.expect_none(0.5)
    late = clients(b, "late-watcher")
    late.subscribe("$fleet/presence/#", qos=1)
    late.expect_none(0.5)
    # connections.sql also logs each event.
    assert wait_until(lambda: f"rule connections: {cid} client.disconnected" in b.log_text())


def test_event_rule_republish_to_watched_topic(broker_factory, rules_dir, clients, uid):
    write_rule(rules_dir, "who", f"""CREATE RULE who AS
SELECT clientid, event, reason
FROM "$events/client_disconnected"
INTO republish(topic = 'ev/{uid}/${{clientid}}', payload = '${{event}} ${{reason}}');
""")
    b = start(broker_factory, rules_dir)
    watcher = clients(b, "ev-watcher")
    watcher.subscribe(f"ev/{uid}/#", qos=0)
    c = clients(b, f"ev-{uid}")
    c.disconnect()
    m = watcher.get()
    assert m.topic == f"ev/{uid}/ev-{uid}"
    assert m.payload == b"client.disconnected normal"


# ---------------------------------------------------------------------------
# dead letters
# ---------------------------------------------------------------------------
STRICT = """CREATE RULE strict AS
SELECT abs(payload.x) AS x
FROM "dl/{uid}/in"
INTO republish(topic = 'dl/{uid}/out');
"""


def test_failed_evaluation_goes_to_dead_letter_topic(broker_factory, rules_dir, clients, uid):
    path = write_rule(rules_dir, "strict", STRICT.format(uid=uid))
    b = start(broker_factory, rules_dir, dead_letter=True)
    dlq = clients(b, "dlq-sub", version=V5)
    dlq.subscribe("$dlq/rules/strict", qos=1)
    out = clients(b, "out-sub")
    out.subscribe(f"dl/{uid}/out", qos=1)
    pub = clients(b, f"dl-pub-{uid}")

    pub.publish(f"dl/{uid}/in", b"not json at all", qos=1)
    m = dlq.get()
    assert m.topic == "$dlq/rules/strict"
    assert m.payload == b"not json at all", "the original payload, unchanged"
    props = dict(m.prop("UserProperty", []))
    assert "error" in props, m.props
    assert props["error"].startswith(f"{path}:2:8: abs: expected a number, got undefined"), props["error"]
    assert props.get("topic") == f"dl/{uid}/in"
    out.expect_none(0.3)

    pub.publish(f"dl/{uid}/in", json.dumps({"x": -3}), qos=1)
    assert json.loads(out.get().payload) == {"x": 3}
    dlq.expect_none(0.5)


def test_no_dead_letters_when_disabled(broker_factory, rules_dir, clients, uid):
    write_rule(rules_dir, "strict", STRICT.format(uid=uid))
    b = start(broker_factory, rules_dir, dead_letter=False)
    dlq = clients(b, "dlq-sub", version=V5)
    dlq.subscribe("$dlq/rules/#", qos=1)
    pub = clients(b, "dl-pub")
    pub.publish(f"dl/{uid}/in", b"not json", qos=1)
    dlq.expect_none(1.0)


# ---------------------------------------------------------------------------
# $SYS/rules metrics
# ---------------------------------------------------------------------------
@pytest.mark.single_node("$SYS is each node's own")
def test_sys_rules_metrics_count_up(broker_factory, rules_dir, clients, uid):
    write_rule(rules_dir, "speedy", republish_rule("speedy", f"m/{uid}/in", f"m/{uid}/out", where="payload.n > 10"))
    b = start(broker_factory, rules_dir)
    mon = clients(b, "sys-mon")
    mon.subscribe("$SYS/rules/speedy/#", qos=0)
    latest: dict[str, int] = {}

    def wait_for(pred, timeout=6.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in mon.drain(0.1):
                latest[m.topic.rsplit("/", 1)[1]] = int(m.payload)
            if pred():
                return
        raise AssertionError(f"metrics never satisfied the condition: {latest}")

    wait_for(lambda: "matched" in latest and "passed" in latest)
    assert latest["matched"] == 0 and latest["passed"] == 0
    pub = clients(b, "sys-pub")
    pub.publish(f"m/{uid}/in", json.dumps({"n": 50}), qos=1)
    wait_for(lambda: latest.get("matched") == 1 and latest.get("passed") == 1)
    pub.publish(f"m/{uid}/in", json.dumps({"n": 5}), qos=1)
    pub.publish(f"m/{uid}/in", json.dumps({"n": 60}), qos=1)
    pub.publish(f"m/{uid}/other", json.dumps({"n": 70}), qos=1)  # FROM does not match
    wait_for(lambda: latest.get("matched") == 3 and latest.get("passed") == 2)
    wait_for(lambda: latest.get("failed.no_result") == 1 and latest.get("actions.success") == 2)


# ---------------------------------------------------------------------------
# start-up
# ---------------------------------------------------------------------------
def test_startup_with_broken_rule_file_fails(broker_factory, rules_dir):
    path = write_rule(rules_dir, "broken", 'CREATE RULE broken AS\nSELECT speedd(payload.n) AS s\nFROM "x/#"\nINTO log();\n')
    with pytest.raises(RuntimeError) as e:
        start(broker_factory, rules_dir)
    text = str(e.value)
    assert "exited with" in text and "during startup" in text
    assert f"{path}:2:8: unknown function 'speedd'" in text
    assert "\nSELECT speedd(payload.n) AS s\n       ^" in text


def test_startup_with_missing_explicit_rules_dir_fails(broker_factory, tmp_path):
    with pytest.raises(RuntimeError, match="no such file or directory"):
        start(broker_factory, tmp_path / "nope")


def test_startup_without_rules_table_has_no_rules(broker_factory):
    b = broker_factory()
    assert wait_until(lambda: "rules: 0 active" in b.log_text()), b.log_tail(20)


# ---------------------------------------------------------------------------
# turnpike rules check / test
# ---------------------------------------------------------------------------
def test_rules_check_examples_ok():
    r = run_cli("rules", "check", str(EXAMPLES))
    assert r.returncode == 0, r.stderr
    names = sorted(p.stem for p in EXAMPLES.glob("*.sql"))
    assert r.stdout.strip() == f"ok: {len(names)} rules ({', '.join(names)})"
    for name in ("overspeed", "low_battery", "geofence_exit", "batch_readings", "connections"):
        assert name in names


def test_rules_check_reports_every_error_with_caret(tmp_path):
    d = tmp_path / "r"
    d.mkdir()
    write_rule(d, "a_ok", 'CREATE RULE ok AS SELECT * FROM "x/#" INTO log();\n')
    write_rule(d, "b_broken", 'CREATE RULE broken AS\nSELECT speedd(payload.n) AS s\nFROM "x/#"\nINTO log();\n')
    write_rule(d, "c_bridge", "CREATE RULE bridged AS SELECT * FROM \"x/#\"\n"
                              "INTO log(),\n     kafka.fleet(topic = 'alerts');\n")
    write_rule(d, "d_dup", 'CREATE RULE ok AS SELECT * FROM "y/#" INTO log();\n')
    r = run_cli("rules", "check", str(d))
    assert r.returncode == 1
    out = r.stdout + r.stderr
    assert f"{d}/b_broken.sql:2:8: unknown function 'speedd'\nSELECT speedd(payload.n) AS s\n       ^" in out
    assert f"{d}/c_bridge.sql:3:6: bridge 'kafka.fleet' is not configured" in out
    assert "\n     kafka.fleet(topic = 'alerts');\n     ^" in out
    assert f"{d}/d_dup.sql:1:13: duplicate rule name 'ok'" in out
    assert "ok:" not in r.stdout

    # One file, and a missing path.
    r = run_cli("rules", "check", str(d / "a_ok.sql"))
    assert r.returncode == 0 and r.stdout.strip() == "ok: 1 rule (ok)"
    r = run_cli("rules", "check", str(tmp_path / "missing"))
    assert r.returncode == 1 and "no such file or directory" in r.stderr


def test_rules_test_prints_row_and_rendered_actions():
    payload = json.dumps({"timestamp": 1700000000000000, "vin": "WVW1", "speed": 142.5,
                          "pos": {"lat": 48.1, "lon": 11.5}, "heading": 90, "battery": 80, "odometer": 1})
    r = run_cli("rules", "test", str(EXAMPLES / "overspeed.sql"), "--topic", "cars/WVW1/telemetry",
                "--payload", payload, "--clientid", "WVW1")
    assert r.returncode == 0, r.stderr
    m = re.search(r"^row 1: (\{.*\})$", r.stdout, re.M)
    assert m, r.stdout
    row = json.loads(m.group(1))
    assert row["vin"] == "WVW1" and row["speed"] == 142.5 and row["lat"] == 48.1
    assert re.search(r"^  republish$", r.stdout, re.M)
    assert re.search(r"^    topic\s+= fleet/alerts/WVW1$", r.stdout, re.M)
    assert re.search(r"^    qos\s+= 1$", r.stdout, re.M)

    # WHERE rejects: no rows, still success.
    r = run_cli("rules", "test", str(EXAMPLES / "overspeed.sql"), "--topic", "cars/WVW1/telemetry",
                "--payload", '{"speed": 80}')
    assert r.returncode == 0 and "no rows" in r.stdout

    # FROM does not match the topic.
    r = run_cli("rules", "test", str(EXAMPLES / "overspeed.sql"), "--topic", "cars/WVW1/status", "--payload", "{}")
    assert r.returncode == 1 and "does not match topic 'cars/WVW1/status'" in r.stderr


def test_rules_test_bridge_actions_and_evaluation_errors(tmp_path):
    rule = write_rule(tmp_path, "bridged", "CREATE RULE bridged AS\nSELECT abs(payload.x) AS x, clientid\n"
                                           "FROM \"t/#\"\nINTO kafka.fleet(topic = 'alerts', key = '${clientid}'),\n"
                                           "     republish(topic = 'out/${clientid}');\n")
    r = run_cli("rules", "test", str(rule), "--topic", "t/1", "--payload", '{"x": -2}', "--clientid", "c7")
    assert r.returncode == 0, r.stderr
    assert 'row 1: {"x":2,"clientid":"c7"}' in r.stdout
    assert re.search(r"^  kafka\.fleet \(not sent\)\n    topic = alerts\n    key\s+= c7$", r.stdout, re.M), r.stdout
    assert re.search(r"^    topic\s+= out/c7$", r.stdout, re.M)

    r = run_cli("rules", "test", str(rule), "--topic", "t/1", "--payload", "not json")
    assert r.returncode == 1
    assert f"{rule}:2:8: abs: expected a number, got undefined" in r.stderr
