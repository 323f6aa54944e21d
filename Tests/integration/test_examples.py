"""The fleet example (examples/fleet: turnpike.toml, schema.sql, rules/) against real servers:
Kafka (noida-db), PostgreSQL 15 and an HTTP receiver, driven by mosquitto_pub. Only the three
addresses in the example's config are changed (to the servers this test started); the rule
files are used as they are."""

import json
import re
import shutil
import subprocess
import time

import pytest

from conftest import REPO, TURNPIKE_BIN, free_port
from test_bridges import Receiver
from test_kafka import Noida
from test_postgres import Postgres

pytestmark = pytest.mark.turnpike_only

EXAMPLE = REPO / "examples" / "fleet"


def telemetry(vin, speed, battery, n):
    return json.dumps({"timestamp": 1_764_000_000_000_000 + n, "vin": vin, "speed": speed,
                       "pos": {"lat": 48.1 + n / 1000, "lon": 11.5}, "heading": 90, "battery": battery,
                       "odometer": 1000 + n})


def test_fleet_example_delivers_into_kafka_postgres_and_the_webhook(tmp_path):
    k = Noida(tmp_path / "noida").start()
    pg = Postgres().start()
    r = Receiver().start()
    proc = None
    try:
        pg.sql((EXAMPLE / "schema.sql").read_text())
        cfg = (EXAMPLE / "turnpike.toml").read_text()
        cfg, n1 = re.subn(r'bootstrap_servers = "[^"]*"', f'bootstrap_servers = "{k.bootstrap}"', cfg)
        cfg, n2 = re.subn(r'dsn = "[^"]*"', f'dsn = "{pg.dsn}"', cfg)
        cfg, n3 = re.subn(r'url = "http://127.0.0.1:8080/hooks"', f'url = "http://127.0.0.1:{r.port}/hooks"', cfg)
        assert (n1, n2, n3) == (1, 1, 1)
        (tmp_path / "turnpike.toml").write_text(cfg)
        shutil.copytree(EXAMPLE / "rules", tmp_path / "rules")
        port = free_port()
        log = open(tmp_path / "broker.log", "wb")
        proc = subprocess.Popen([str(TURNPIKE_BIN), "serve", "--config", str(tmp_path / "turnpike.toml"),
                                 "--bind", "127.0.0.1", "--port", str(port), "--data", str(tmp_path / "data")],
                                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while "rules: 3 active" not in (tmp_path / "broker.log").read_text():
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "broker.log").read_text()
            time.sleep(0.05)
        sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-V", "mqttv5", "-q", "1",
                                "-t", "fleet/alerts/#", "-v", "-C", "10", "-W", "30"], stdout=subprocess.PIPE)
        time.sleep(0.5)
        # Car A speeds 10 times (and its battery is fine); car B has a weak battery 5 times.
        cars = {"VIN-A": [telemetry("VIN-A", 140 + n, 80, n) for n in range(10)],
                "VIN-B": [telemetry("VIN-B", 90, 5, n) for n in range(5)]}
        for vin, lines in cars.items():
            p = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-V", "mqttv5", "-q", "1",
                                "-i", vin, "-t", f"cars/{vin}/telemetry", "-l"],
                               input="\n".join(lines) + "\n", text=True, capture_output=True, timeout=30)
            assert p.returncode == 0, p.stderr     # every PUBACK came (telemetry waits for Kafka)

        # Kafka: every message on `telemetry`, the overspeed ones on `alerts.overspeed`, keyed by car.
        rows = k.read("telemetry", 15)
        assert sorted(key.decode() for key, _ in rows) == ["VIN-A"] * 10 + ["VIN-B"] * 5
        a_speeds = [json.loads(v)["speed"] for key, v in rows if key == b"VIN-A"]
        assert a_speeds == [140 + n for n in range(10)]          # a car's records in publish order
        alerts = k.read("alerts.overspeed", 10)
        assert [(key.decode(), json.loads(v)["speed"]) for key, v in alerts] == [("VIN-A", 140 + n) for n in range(10)]

        # PostgreSQL: one row per overspeed message.
        deadline = time.monotonic() + 20
        while pg.count("overspeed") < 10 and time.monotonic() < deadline:
            time.sleep(0.2)
        got = [line.split("|") for line in pg.sql("SELECT vin, speed, lat FROM overspeed ORDER BY speed").decode().splitlines()]
        assert [(vin, float(speed), float(lat)) for vin, speed, lat in got] == \
            [("VIN-A", 140.0 + n, 48.1 + n / 1000) for n in range(10)], got

        # Webhook: one POST per weak-battery message, templated path and body.
        hooks = r.wait_delivered(5, timeout=20)
        assert [(q["method"], q["path"]) for q in hooks] == [("POST", "/hooks/battery/VIN-B")] * 5
        assert all(json.loads(q["body"])["battery"] == 5 and q["headers"]["authorization"] == "Bearer change-me" for q in hooks)

        # Republish: the alerts on fleet/alerts/<vin>.
        out, _ = sub.communicate(timeout=40)
        assert out.decode().count("fleet/alerts/VIN-A ") == 10
    finally:
        if proc:
            proc.terminate()
            proc.wait(10)
        r.stop()
        pg.close()
        k.stop()
