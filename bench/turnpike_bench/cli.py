"""bench/run.py's driver: the command line, the repetitions (brokers alternating, each run on a
fresh broker once the machine is idle, disturbed runs redone), the raw JSON, then the charts and
the results file."""
import argparse
import datetime
import json
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from . import brokers, clients, report
from .brokers import BROKERS, LABEL
from .charts import make_charts
from .machine import (ROOT, busy_s, log, machine_busy, machine_info, own_cpu_s, raise_nofile,
                      wait_idle)
from .scenarios import FULL, QUICK, SCENARIOS

FOREIGN_MAX = 0.15     # cores used by other processes, on average over a run, before it is redone

HEAD = """\
Turnpike against mosquitto on loopback: runs each scenario against both brokers, alternately,
and writes bench/results/<date>.md (tables: median and min-max over the runs, Turnpike/mosquitto
ratio), <date>-<scenario>.png charts and <date>.json (every run's raw figures).

Scenarios (bench/turnpike_bench/scenarios/, see bench/README.md):
"""
TAIL = """
Needs: .build/release/{turnpike,mqbench} (swift build -c release; $BENCH_BUILD/release with
BENCH_BUILD set), mosquitto, matplotlib for the charts (bench/run.sh sets all of that up).
Brokers run one at a time, each on a fresh port.
"""


def description():
    lines = [HEAD]
    for letter, sc in SCENARIOS.items():
        doc = " ".join((sys.modules[type(sc).__module__].__doc__ or sc.name).split("\n\n")[0].split())
        doc = doc.split(" ", 1)[1] if doc.startswith(f"({letter})") else doc
        lines.append(textwrap.fill(doc, 96, initial_indent=f"  {letter}  ", subsequent_indent="     "))
    return "\n".join(lines) + "\n" + TAIL


def main():
    letters = ",".join(SCENARIOS)
    ap = argparse.ArgumentParser(prog="bench/run.py", description=description(),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="repetitions of each scenario (3)")
    ap.add_argument("--scenarios", default=letters,
                    help=f"comma-separated letters out of {letters} (all)")
    ap.add_argument("--quick", action="store_true",
                    help="short runs and small counts: a smoke test (~2 min with --runs 1)")
    ap.add_argument("--out", default=str(ROOT / "bench/results"), help="results directory")
    ap.add_argument("--retries", type=int, default=None,
                    help="runs again a broker's run that something else disturbed (more than "
                         f"{FOREIGN_MAX} cores busy outside the benchmark), at most this often "
                         "(2; 0 with --quick)")
    args = ap.parse_args()
    args.argv = sys.argv[1:]
    if args.retries is None:
        args.retries = 0 if args.quick else 2
    order = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    for s in order:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s!r}")
    P = QUICK if args.quick else FULL

    for path in (brokers.TURNPIKE, clients.MQBENCH, Path(brokers.MOSQUITTO)):
        if not Path(path).exists():
            sys.exit(f"missing {path}: run bench/run.sh (builds release, installs mosquitto)")
    hard = raise_nofile()
    if hard < P["idle_conns"] + 200:
        log(f"open-file limit {hard}: the idle scenario needs {P['idle_conns'] + 200}")

    outdir = Path(args.out)
    outdir.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    # (g) alone has a results file of its own: <date>-bridges.md.
    stem = f"{started:%Y-%m-%d}" + ("-bridges" if order == ["g"] else "")
    base = stem
    k = 2
    while (outdir / f"{stem}.md").exists() or (outdir / f"{stem}.json").exists():
        stem = f"{base}-{k}"
        k += 1
    info = machine_info(brokers.TURNPIKE, brokers.MOSQUITTO)
    log(f"results -> {outdir / stem}.md; Turnpike {info['turnpike_rev']}, {info['mosquitto']}")

    runs_data = []
    with tempfile.TemporaryDirectory(prefix="turnpike-bench-") as tmp:
        report.WORK_ROOT = tmp
        # Run copies: a rebuild of .build/release during the run must not change what runs.
        (Path(tmp) / "bin").mkdir()
        for mod, name in ((brokers, "TURNPIKE"), (clients, "MQBENCH")):
            orig = getattr(mod, name)
            copy = Path(tmp) / "bin" / orig.name
            shutil.copy2(orig, copy)
            report.BIN_DISPLAY[str(copy)] = str(orig)
            setattr(mod, name, copy)
        for letter in order:
            SCENARIOS[letter].setup(tmp)
        for rep in range(args.runs):
            rd = {"rep": rep, "scenarios": {}}
            runs_data.append(rd)
            kinds = BROKERS if rep % 2 == 0 else BROKERS[::-1]
            for letter in order:
                sc = SCENARIOS[letter]
                title = sc.title.format(**P)
                rd["scenarios"][letter] = {}
                for kind in kinds:
                    discarded = []
                    for attempt in range(1 + args.retries):
                        wd = Path(tmp) / f"r{rep}-{letter}-{kind}-{attempt}"
                        wd.mkdir()
                        waited, busy = wait_idle()
                        if waited:
                            log(f"  waited {waited:.0f} s for the machine to be idle "
                                f"({busy:.2f} cores busy at the end)")
                        t0 = time.time()
                        log(f"run {rep + 1}/{args.runs} {title} — {LABEL[kind]}"
                            + (f" (attempt {attempt + 1})" if attempt else ""))
                        b0, o0 = busy_s(), own_cpu_s()
                        d = sc.run(kind, wd, P)
                        b1, o1 = busy_s(), own_cpu_s()
                        d["seconds"] = time.time() - t0
                        # CPU the machine spent on something else than the harness, the broker
                        # and mqbench (in cores, averaged over the run; includes a little kernel
                        # network work that is charged to no process).
                        # (g) reports the CPU of the PostgreSQL server it ran (not a child).
                        d["foreign_cores"] = max(0.0, (b1 - b0) - (o1 - o0)
                                                 - d.get("sink_cpu_s", 0.0)) / d["seconds"]
                        d["waited_for_idle_s"] = waited
                        d["background_after"] = machine_busy(0.5)
                        if d["foreign_cores"] <= FOREIGN_MAX or attempt == args.retries:
                            break
                        log(f"  disturbed: {d['foreign_cores']:.2f} cores busy outside the "
                            f"benchmark on average; running it again")
                        discarded.append({"foreign_cores": d["foreign_cores"],
                                          "cases": d["cases"]})
                        time.sleep(1.0)
                    d["discarded"] = discarded
                    rd["scenarios"][letter][kind] = d
                    summary = ", ".join(f"{ck}: " + ", ".join(
                        f"{mk}={mv:.4g}" for mk, mv in list(m.items())[:4] if mv is not None)
                        for ck, m in d["cases"].items())
                    log(f"  {LABEL[kind]} done in {d['seconds']:.0f} s (foreign load "
                        f"{d['foreign_cores']:.2f} cores): {summary}")
                    for n in d["notes"]:
                        log(f"  note: {n}")
                    time.sleep(1.0)     # let the sockets of the last run close
            # Raw figures after every repetition, so an interrupted run keeps what it measured.
            (outdir / f"{stem}.json").write_text(json.dumps(
                {"info": info, "params": P, "runs": runs_data}, indent=1, default=str))
    finished = datetime.datetime.now(datetime.timezone.utc)
    charts = make_charts(outdir, stem, runs_data, order, P)
    path = report.write_results(outdir, stem, args, P, info, runs_data, order, started, finished,
                                charts)
    (outdir / f"{stem}.json").write_text(json.dumps(
        {"info": info, "params": P, "runs": runs_data}, indent=1, default=str))
    log(f"wrote {path} in {(finished - started).total_seconds() / 60:.1f} min")
