"""PostgreSQL bridges: rules insert into a real PostgreSQL 15 (Debian's server, started per test
in a temp dir on a free loopback port, as /work/shared/COMPONENTS.md does it), read back with
psql; what landed is compared exactly with what was published."""

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

import rawmqtt as R
from conftest import free_port
from test_bridges import bridge_metrics, publish_all, start_bridged, stop_all

pytestmark = pytest.mark.turnpike_only

V5 = R.MQTT5
PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
PSQL = shutil.which("psql") or "/usr/bin/psql"

SCHEMA = """
CREATE TABLE telemetry (vin text NOT NULL, speed int CHECK (speed >= 0), seq int, note text);
CREATE TABLE x (id int);
"""


def as_postgres(*cmd, **kw):
    """Runs a server command as the postgres user when we are root (initdb refuses root)."""
    if os.geteuid() == 0:
        cmd = ("runuser", "-u", "postgres", "--") + cmd
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


class Postgres:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tp-pg-")
        os.chmod(self.dir, 0o755)                       # mktemp's 0700 makes initdb fail
        self.data = os.path.join(self.dir, "pg", "data")
        os.mkdir(os.path.join(self.dir, "pg"))
        if os.geteuid() == 0:
            shutil.chown(os.path.join(self.dir, "pg"), "postgres", "postgres")
        self.port = free_port()
        as_postgres(f"{PG_BIN}/initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    @property
    def dsn(self):
        return f"host=127.0.0.1 port={self.port} dbname=postgres user=postgres"

    def start(self):
        as_postgres(f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "pg", "log"),
                    "-o", f"-p {self.port} -k {self.dir}/pg -c listen_addresses=127.0.0.1", "-w", "start", timeout=30)
        return self

    def stop(self):
        as_postgres(f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop", timeout=30)

    def sql(self, text):
        r = subprocess.run([PSQL, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
                            "-U", "postgres", "-d", "postgres", "-c", text], check=True, capture_output=True, timeout=30)
        return r.stdout

    def count(self, table="telemetry"):
        return int(self.sql(f"SELECT count(*) FROM {table}"))

    def close(self):
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass                                        # already stopped
        shutil.rmtree(self.dir, ignore_errors=True)


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


@pytest.mark.parametrize("keys,message", [
    ('pool_size = 1\n', "[bridges.postgres.warehouse] needs dsn"),
    ('dsn = "host=127.0.0.1"\npool_size = 4\n', "invalid value for 'pool_size' in [bridges.postgres.warehouse]: expected 1"),
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
