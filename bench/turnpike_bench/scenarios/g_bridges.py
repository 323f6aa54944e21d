"""(g) bridges: 1,000 cars -> one rule -> a Kafka or PostgreSQL bridge with real servers; the
measurements and the table are bench/bridges.py's."""
import sys

from ..machine import ROOT
from . import QUICK, Scenario, register

sys.path.insert(0, str(ROOT / "bench"))
import bridges  # noqa: E402

BRIDGES_TEXT = (
    "1,000 cars (`mqbench pub -c 1000 -q 1 -s 256 --json-payload`: JSON telemetry with the send "
    "time in µs) on `cars/<n>/telemetry`, one rule (`SELECT clientid AS vin, payload.timestamp AS "
    "ts, payload.speed AS speed … INTO kafka.bench (topic = …)` or `INTO postgres.bench "
    "(statement = 'INSERT … VALUES (${vin}, ${ts}, ${speed})')`) to a real sink on loopback: "
    "noida-db 0.2.3 (Kafka protocol, acks = all, idempotent producer) or PostgreSQL 15 (fsync on). "
    "The bridges have `on_full = \"backpressure\"`, so nothing is dropped: *max* runs publish as "
    "fast as the cars' windows allow (-I 0 -F 20) and the sink's pace slows them, so records/s "
    "is the bridge's throughput; *paced* runs offer the target rate (Kafka 50,000/s, "
    "PostgreSQL 20,000/s) for latency below saturation. Records/s = records landed / (last "
    "landed − first sent); every run checks that exactly cars × -L records landed (kcat reads "
    "the topic back; `count(*)`). Broker CPU = utime+stime of the broker (all threads) from "
    "all cars connected to all records landed, per record. Publish→sink: Kafka's record "
    "timestamp (CreateTime: librdkafka stamps it when the bridge produces the record, so it "
    "leaves out the producer's linger and the broker's ack, 1 ms resolution) or a PostgreSQL "
    "`DEFAULT clock_timestamp()` column (when the INSERT ran, before its COMMIT), minus the "
    "send time in the payload. PUBACK p99 is the cars' PUBLISH→PUBACK: with `ack = "
    "'after_sink'` it includes the sink's confirmation (Kafka's acks = all, PostgreSQL's "
    "COMMIT). **mosquitto has no Kafka or PostgreSQL bridge**: its rows are the same 1,000-car "
    "QoS 1 load with one plain QoS 0 subscriber on `cars/+/telemetry` — a broker without a sink — "
    "max and paced at 50,000/s, and Turnpike runs that reference too; records/s there is what "
    "the subscriber received, CPU per message per acknowledged publish, and the CPU ratio "
    "compares each row with mosquitto's reference at the same pacing.")


@register
class Bridges(Scenario):
    letter = "g"
    name = "bridges"
    title = "(g) bridges: 1,000 cars, QoS 1, 256 B -> one rule -> Kafka / PostgreSQL"
    families = []        # one table of its own (bridges.write_table), no chart
    charts = False

    def run(self, kind, wd, P):
        return bridges.run_scenario(kind, wd, quick=P is QUICK)

    def bullet(self, P):
        return "- (g) see its section."

    def section(self, w, per_rep, runs_data, P):
        w(BRIDGES_TEXT)
        w("")
        bridges.write_table(w, per_rep)
