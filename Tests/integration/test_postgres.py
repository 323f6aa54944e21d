"""PostgreSQL bridges: rules insert into a real PostgreSQL 15 (Debian's server, started per test
in a temp dir on a free loopback port, as /work/shared/COMPONENTS.md does it), read back with
psql; what landed is compared exactly with what was published."""

import json
import subprocess
import threading
import time

import pytest

import rawmqtt as R
from servers import Postgres
from test_bridges import bridge_metrics, publish_all, start_bridged, stop_all

pytestmark = [pytest.mark.turnpike_only, pytest.mark.single_node("reads one node's bridge counters; each node runs its own bridges")]

V5 = R.MQTT5
SCHEMA = """
CREATE TABLE telemetry (vin text NOT NULL, speed int CHECK (speed >= 0), seq int, note text);
CREATE TABLE x (id int);
"""


@pytest.fixture
def pg():
    p = Postgres().start()
    p.sql(SCHEMA)
    yield p
    p.close()


@pytest.fixture
def bridged(tmp_path):
    """A broker with [bridges.postgres.warehouse] at `dsn` and the rule files given."""
    made = []

    def make(dsn, rules: dict[str, str], bridge_keys: str = "", **kw):
        table = f'\n[bridges.postgres.warehouse]\ndsn = "{dsn}"\nretry_backoff = 100\n{bridge_keys}\n'
        return start_bridged(tmp_path, made, table, rules, **kw)

    yield make
    stop_all(made)


TELEMETRY_RULE = """
CREATE RULE to_pg AS
SELECT clientid AS vin, payload.speed AS speed, payload.seq AS seq
FROM "cars/+/telemetry"
INTO postgres.warehouse (statement = 'INSERT INTO telemetry (vin, speed, seq) VALUES (${vin}, ${speed}, ${seq})');
"""


def check_rows(pg, cars, per_car):
    """Every (vin, seq) exactly once, with its speed."""
    rows = [line.split("|") for line in pg.sql("SELECT vin, speed, seq FROM telemetry").decode().splitlines()]
    assert len(rows) == cars * per_car, len(rows)
    seen = {(vin, int(seq)) for vin, speed, seq in rows}
    assert len(seen) == cars * per_car                 # none twice
    assert seen == {(f"car{i}", n) for i in range(cars) for n in range(per_car)}
    assert all(int(speed) == 100 + int(seq) % 50 for _, speed, seq in rows)


def test_postgres_end_to_end_exact(pg, bridged):
    """20 cars × 500 QoS 1 telemetry messages: exactly 10,000 rows."""
    b = bridged(pg.dsn, {"to_pg": TELEMETRY_RULE})
    t0 = time.monotonic()
    publish_all(b, 20, 500)
    m = bridge_metrics(b, lambda m: m["success"] == 10_000, bridge="postgres.warehouse", timeout=30)
    print(f"10,000 rows committed in {time.monotonic() - t0:.2f} s (publish included)")
    assert m["matched"] == 10_000 and m["success"] == 10_000 and m["failed"] == 0 and m["dropped"] == 0, m
    assert m["status"] == 1, m
    assert pg.count() == 10_000
    check_rows(pg, 20, 500)


INJECTIONS = [
    "it's",
    "O''Brien",
    "back\\slash \\' \\\\",
    "'); DROP TABLE x; --",
    "\"; DROP TABLE x; --",
    "$1 $$ ${vin} E'\\x41'",
    "Zürich – 東京 🚗",
]


def test_postgres_values_are_parameters_never_sql(pg, bridged):
    """Payload strings with quotes, backslashes, SQL and non-ASCII land byte-exact as data."""
    rule = """
CREATE RULE notes AS
SELECT clientid AS vin, payload.note AS note, payload.seq AS seq FROM "notes/+"
INTO postgres.warehouse (statement = 'INSERT INTO telemetry (vin, speed, seq, note) VALUES (${vin}, 0, ${seq}, ${note})');
"""
    b = bridged(pg.dsn, {"notes": rule})
    c = R.RawClient(b.port, b.host)
    assert c.connect("car'; DROP TABLE x; --").rc == 0
    for i, note in enumerate(INJECTIONS):
        c.publish("notes/a", json.dumps({"note": note, "seq": i}).encode(), qos=1)
    c.publish("notes/a", json.dumps({"seq": 99}).encode(), qos=1)     # no note: NULL
    m = bridge_metrics(b, lambda m: m["success"] == len(INJECTIONS) + 1, bridge="postgres.warehouse")
    assert m["success"] == len(INJECTIONS) + 1 and m["failed"] == 0, m
    assert pg.count("x") == 0                                           # still there
    got = pg.sql("SELECT encode(convert_to(coalesce(note, '<NULL>'), 'UTF8'), 'hex') FROM telemetry ORDER BY seq").decode().split()
    assert [bytes.fromhex(h).decode() for h in got] == INJECTIONS + ["<NULL>"]
    assert pg.sql("SELECT DISTINCT vin FROM telemetry").decode().strip() == "car'; DROP TABLE x; --"
    assert pg.sql("SELECT count(*) FROM telemetry WHERE note IS NULL").strip() == b"1"


def test_postgres_constraint_violation_is_dead_lettered(pg, bridged, uid):
    """A NOT NULL and a CHECK violation: those records go to $dlq/bridges/postgres.warehouse with
    the error; the others of the same transactions are committed, once."""
    rule = """
CREATE RULE to_pg AS
SELECT payload.vin AS vin, payload.speed AS speed, payload.seq AS seq FROM "cars/+/telemetry"
INTO postgres.warehouse (statement = 'INSERT INTO telemetry (vin, speed, seq) VALUES (${vin}, ${speed}, ${seq})');
"""
    b = bridged(pg.dsn, {"to_pg": rule}, bridge_keys="batch_time = 200\n")
    dlq = R.RawClient(b.port, b.host, version=V5)
    assert dlq.connect(f"dlq-{uid}").rc == 0
    dlq.subscribe([("$dlq/bridges/postgres.warehouse", 1)])
    c = R.RawClient(b.port, b.host)
    assert c.connect("car0").rc == 0
    bad = {3: {"speed": 10, "seq": 3}, 7: {"vin": "car0", "speed": -5, "seq": 7}}   # no vin; speed < 0
    for n in range(10):
        c.publish("cars/car0/telemetry", json.dumps(bad.get(n, {"vin": "car0", "speed": 50, "seq": n})).encode(), qos=1)
    errors = {}
    for _ in range(2):
        m = dlq.expect(R.PUBLISH, 10)
        props = dict(m.props.get("UserProperty", []))
        assert props.get("rule") == "to_pg"
        errors[json.loads(m.payload)["seq"]] = props["error"]
    assert "SQLSTATE 23502" in errors[3] and "not-null" in errors[3], errors
    assert "SQLSTATE 23514" in errors[7] and "check constraint" in errors[7], errors
    m = bridge_metrics(b, lambda m: m["success"] == 8 and m["failed"] == 2, bridge="postgres.warehouse")
    assert m["success"] == 8 and m["failed"] == 2 and m["retried"] == 0, m
    assert sorted(int(s) for s in pg.sql("SELECT seq FROM telemetry").split()) == [0, 1, 2, 4, 5, 6, 8, 9]


def test_postgres_down_mid_stream_loses_nothing(pg, bridged):
    """PostgreSQL stopped (-m fast) while 20 cars publish, started again: every record is in the
    table afterwards, none twice, and the buffer's retries did it."""
    b = bridged(pg.dsn, {"to_pg": TELEMETRY_RULE})

    def paced(cid, n):
        if n % 25 == 0:
            time.sleep(0.05)
        return json.dumps({"speed": 100 + n % 50, "seq": n}).encode()

    pub = threading.Thread(target=publish_all, args=(b, 20, 500), kwargs={"payload": paced})
    pub.start()
    time.sleep(0.4)
    pg.stop()                                           # mid-stream
    pub.join(60)
    m = bridge_metrics(b, lambda m: m["retried"] > 0, bridge="postgres.warehouse", timeout=10)
    assert m["retried"] > 0 and m["success"] < 10_000, m
    pg.start()
    m = bridge_metrics(b, lambda m: m["success"] == 10_000, bridge="postgres.warehouse", timeout=40)
    assert m["matched"] == 10_000 and m["success"] == 10_000 and m["failed"] == 0 and m["dropped"] == 0, m
    check_rows(pg, 20, 500)


def test_postgres_pool_commits_on_every_connection(pg, bridged):
    """pool_size = 4, small batches: four connections each carry transactions at once; every row
    lands exactly once, and the rows came through four server backends."""
    pg.sql("ALTER TABLE telemetry ADD COLUMN backend int DEFAULT pg_backend_pid()")
    b = bridged(pg.dsn, {"to_pg": TELEMETRY_RULE}, bridge_keys="pool_size = 4\nbatch_size = 20\n")
    publish_all(b, 20, 500)
    m = bridge_metrics(b, lambda m: m["success"] == 10_000, bridge="postgres.warehouse", timeout=30)
    assert m["matched"] == 10_000 and m["success"] == 10_000 and m["failed"] == 0 and m["retried"] == 0, m
    check_rows(pg, 20, 500)
    assert pg.sql("SELECT count(DISTINCT backend) FROM telemetry").strip() == b"4"
    assert pg.sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                  "AND pid <> pg_backend_pid()").strip() == b"4"


def test_postgres_refused_rows_inside_a_pipeline(pg, bridged, uid):
    """One pipelined batch (batch_time holds the 30 records together) with refused rows at its
    start, in its middle and at its end, and a second rule whose statement names a missing table
    (it cannot be prepared): those are dead-lettered, each once; the rest of the batch is
    committed once, through the statement prepared in the first pass."""
    bad_rule = """
CREATE RULE to_missing AS
SELECT payload.vin AS vin, payload.seq AS seq FROM "cars/+/telemetry" WHERE payload.seq = 5 OR payload.seq = 15 OR payload.seq = 25
INTO postgres.warehouse (statement = 'INSERT INTO no_such_table (vin, seq) VALUES (${vin}, ${seq})');
"""
    rule = """
CREATE RULE to_pg AS
SELECT payload.vin AS vin, payload.speed AS speed, payload.seq AS seq FROM "cars/+/telemetry"
INTO postgres.warehouse (statement = 'INSERT INTO telemetry (vin, speed, seq) VALUES (${vin}, ${speed}, ${seq})');
"""
    b = bridged(pg.dsn, {"to_pg": rule, "to_missing": bad_rule}, bridge_keys="batch_time = 300\npool_size = 2\n")
    dlq = R.RawClient(b.port, b.host, version=V5)
    assert dlq.connect(f"dlq-{uid}").rc == 0
    dlq.subscribe([("$dlq/bridges/postgres.warehouse", 1)])
    c = R.RawClient(b.port, b.host)
    assert c.connect("car0").rc == 0
    refused = {0: {"vin": "car0", "speed": -1, "seq": 0}, 14: {"speed": 1, "seq": 14},
               29: {"vin": "car0", "speed": "fast", "seq": 29}}       # CHECK, NOT NULL, bad integer
    for n in range(30):
        c.publish("cars/car0/telemetry", json.dumps(refused.get(n, {"vin": "car0", "speed": 50, "seq": n})).encode(), qos=1)
    errors = {}
    for _ in range(6):                                  # 3 refused rows + 3 rows for the missing table
        m = dlq.expect(R.PUBLISH, 10)
        props = dict(m.props.get("UserProperty", []))
        errors[(props["rule"], json.loads(m.payload)["seq"])] = props["error"]
    assert dlq.try_recv(1.0) is None                    # nothing twice
    assert "SQLSTATE 23514" in errors[("to_pg", 0)], errors
    assert "SQLSTATE 23502" in errors[("to_pg", 14)], errors
    assert "SQLSTATE 22P02" in errors[("to_pg", 29)], errors
    for seq in (5, 15, 25):
        assert "SQLSTATE 42P01" in errors[("to_missing", seq)] and "no_such_table" in errors[("to_missing", seq)], errors
    m = bridge_metrics(b, lambda m: m["success"] == 27 and m["failed"] == 6, bridge="postgres.warehouse")
    assert m["success"] == 27 and m["failed"] == 6 and m["retried"] == 0, m
    assert sorted(int(s) for s in pg.sql("SELECT seq FROM telemetry").split()) == [n for n in range(30) if n not in refused]


@pytest.mark.parametrize("keys,message", [
    ('pool_size = 1\n', "[bridges.postgres.warehouse] needs dsn"),
    ('dsn = "host=127.0.0.1"\npool_size = 0\n', "invalid value for 'pool_size' in [bridges.postgres.warehouse]: expected 1 to 64"),
    ('dsn = "host=127.0.0.1"\ninflight_window = 4\n', "'inflight_window' in [bridges.postgres.warehouse]: a PostgreSQL bridge has one transaction in flight per connection; set pool_size"),
    ('dsn = "host=127.0.0.1 nosuchoption=1"\n', "invalid value for 'dsn' in [bridges.postgres.warehouse]: invalid connection option \"nosuchoption\""),
    ('dsn = "host=127.0.0.1"\nstatement = "x"\n', "unknown key 'statement' in [bridges.postgres.warehouse]"),
])
def test_bad_postgres_config_is_refused(tmp_path, keys, message):
    from conftest import TURNPIKE_BIN
    cfg = tmp_path / "turnpike.toml"
    cfg.write_text("[bridges.postgres.warehouse]\n" + keys)
    r = subprocess.run([str(TURNPIKE_BIN), "serve", "--config", str(cfg), "--port", "0", "--data", str(tmp_path / "d")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and f"{cfg}: " in r.stderr and message in r.stderr, r.stderr
