"""(f) TLS: (a) and (b) unchanged with every client on TLS (certificates from
certs/make-dev-certs.sh, made once per bench run), and what TLS costs each broker."""
import subprocess
from pathlib import Path

from .. import report
from ..brokers import (BROKERS, MOSQUITTO_TLS_CONF, TURNPIKE_TLS_LISTENERS, Broker)
from ..machine import ROOT
from . import CASE_LABEL, Scenario, register
from .a_idle import run_idle
from .b_fanin import FANIN_CASES, RAMP_NOTE, run_fanin

# What TLS costs each broker: the same metric over TLS (f) against plain TCP (a, b) in the
# same results, medians of each.
TLS_COST = {
    "idle": [("connect_rate", "connect rate"), ("cpu_ms_per_1k_conn", "CPU per 1,000 connects"),
             ("rss_per_conn_kib", "RSS per connection")],
    "fanin": [("max_lossless", "highest lossless rate"), ("cpu_per_m", "CPU per million"),
              ("lat_p99", "p99 latency at that rate")],
}
PLAIN_OF = {"idle": "a", "fanin": "b"}

TLS_TEXT = (
    "The connection scenario (a) and the fan-in ramp (b), unchanged, with every client on TLS: "
    "each broker gets a second listener with the development certificates "
    "(`certs/make-dev-certs.sh`: RSA 2048 server key signed by a dev CA; both brokers "
    "negotiate TLS 1.3 with TLS_AES_256_GCM_SHA384 through OpenSSL 3) and mqbench connects with "
    "`-S --cacertfile ca.crt`, so every client verifies the server's chain and name as a car "
    "would. Every connect is a full handshake (mqbench does not resume sessions). CPU per 1,000 "
    "connects is then mostly the server's RSA signature (~1 ms, `openssl speed rsa2048`). The "
    "connection part is a reconnect storm: {idle_conns:,} clients offered at {conn_rate:,}/s, "
    "far past what 2 cores can sign, so the clients wait up to 150 s for their CONNACK "
    "(`--connect-timeout 150`; with mqbench's default 10 s about half of them give up in the "
    "queue) and the connect rate is each broker's sustained handshake rate through the storm.")


def tls_cost_table(w, runs_data, family, case_keys):
    plain = PLAIN_OF[family]
    if not any(plain in r["scenarios"] for r in runs_data):
        return
    w(f"What TLS costs, per broker: the metric over TLS divided by the same metric in "
      f"({plain}) of this run (plain TCP).")
    w("")
    w("| case | metric | Turnpike TLS/plain | mosquitto TLS/plain |")
    w("| --- | --- | --- | --- |")
    for ck in case_keys:
        for key, label in TLS_COST[family]:
            cells = []
            for br in BROKERS:
                vals = {}
                for letter in ("f", plain):
                    vals[letter] = report.summarise([r["scenarios"][letter][br]["cases"].get(ck, {})
                                                     .get(key) for r in runs_data
                                                     if letter in r["scenarios"]])
                t, p = vals["f"], vals[plain]
                cells.append(f"{t['median'] / p['median']:.2f}" if t and p and p["median"]
                             else "–")
            w(f"| {CASE_LABEL.get(ck, 'connections')} | {label} | {cells[0]} | {cells[1]} |")
    w("")


@register
class TLS(Scenario):
    letter = "f"
    name = "tls"
    title = "(f) TLS: (a) and (b) with every client on TLS"
    families = ["idle", "fanin"]
    family_titles = {"idle": "{idle_conns:,} idle connections over TLS",
                     "fanin": "fan-in over TLS: 100 publishers -> 1 subscriber"}
    commands_note = RAMP_NOTE
    certs = None     # make-dev-certs.sh's files, in the run's temporary directory

    def setup(self, tmp):
        self.certs = Path(tmp) / "certs"
        subprocess.run([str(ROOT / "certs/make-dev-certs.sh"), str(self.certs)], check=True,
                       capture_output=True)

    def parts(self):
        return [("idle",)] + [("fanin", q, s) for q, s in FANIN_CASES]

    def broker(self, kind, wd, part):
        return Broker(kind, wd, tls=self.certs)

    def run_part(self, part, broker, wd, P):
        if part[0] == "idle":
            return (*run_idle(broker, wd, P), None)
        c, n, a, steps = run_fanin(broker, wd, P, *part[1:])
        return c, n, a, {"case": f"q{part[1]}-{part[2]}", "steps": steps}

    def bullet(self, P):
        return "- (f) (a) and (b) again with every client on TLS; see its section."

    def config_details(self, w):
        w("")
        w("```toml")
        w("# turnpike.toml for (f): the same, plus")
        w(TURNPIKE_TLS_LISTENERS.format(plain="$PLAIN_PORT", port="$PORT",
                                        certs="$WORKDIR/certs").strip())
        w("```")
        w("")
        w("```")
        w("# mosquitto.conf for (f)")
        w(MOSQUITTO_TLS_CONF.format(plain="$PLAIN_PORT", port="$PORT",
                                    certs="$WORKDIR/certs").rstrip())
        w("```")

    def section(self, w, per_rep, runs_data, P):
        w(TLS_TEXT.format(**P))
        w("")

    def after_family(self, w, runs_data, fam, case_keys):
        tls_cost_table(w, runs_data, fam, case_keys)
