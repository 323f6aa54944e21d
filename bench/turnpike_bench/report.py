"""The results file: bench/results/<date>.md, one table per scenario and case (median and
min–max over the runs, the Turnpike/mosquitto ratio), the method, the disturbance check and the
exact commands. What a scenario adds of its own comes from its hooks (scenarios/__init__.py)."""
import os
import re
import statistics

from .brokers import BROKERS, LABEL, MOSQUITTO_CONF, TURNPIKE_TOML
from .machine import ROOT

WORK_ROOT = None   # the temporary directory of this run, shown as $WORKDIR
BIN_DISPLAY = {}   # copies of the binaries -> the paths they were copied from


def templ(argv):
    s = " ".join(str(a) for a in argv)
    for copy, orig in BIN_DISPLAY.items():
        s = s.replace(copy, orig)
    s = s.replace(str(ROOT) + "/", "")
    if WORK_ROOT:
        s = re.sub(re.escape(str(WORK_ROOT)) + r"/[^/ ]+", "$WORKDIR", s)
    s = re.sub(r"-p \d+", "-p $PORT", s)
    s = re.sub(r"--port \d+", "--port $PORT", s)
    return s


def summarise(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def fmt(f, v):
    if v is None:
        return "–"
    return f.format(v)


def ratio_text(t, m, better):
    from .scenarios import HI, NORATIO
    if t is None or m is None or better == NORATIO:
        return "–"
    if m == 0:
        return "equal (0)" if t == 0 else "–"
    r = t / m
    if better is None:
        return f"{r:.2f}"
    if abs(r - 1) < 0.03:
        who = "about equal"
    elif (r > 1) == (better == HI):
        who = "Turnpike better"
    else:
        who = "mosquitto better"
    return f"{r:.2f} ({who})"


def cell(f, v):
    if v is None:
        return "–"
    if v["min"] == v["max"]:
        return fmt(f, v["median"])
    return f"{fmt(f, v['median'])} ({fmt(f, v['min'])}–{fmt(f, v['max'])})"


def cases_of(per_rep):
    """Every case key of a scenario's runs, in first-seen order."""
    keys = []
    for rep in per_rep:
        for br in BROKERS:
            for ck in rep[br]["cases"]:
                if ck not in keys:
                    keys.append(ck)
    return keys


def comparison_table(w, per_rep, family, ck):
    """Turnpike against mosquitto for one case: median (min–max) and the ratio of medians."""
    from .scenarios import FAMILIES, HI, LO, NORATIO
    w("| metric | Turnpike | mosquitto | ratio T/m | better |")
    w("| --- | --- | --- | --- | --- |")
    for key, label, unit, better, f in FAMILIES[family].metrics:
        s = {br: summarise([rep[br]["cases"].get(ck, {}).get(key) for rep in per_rep])
             for br in BROKERS}
        if all(v is None for v in s.values()):
            continue
        rt = ratio_text(s["turnpike"]["median"] if s["turnpike"] else None,
                        s["mosquitto"]["median"] if s["mosquitto"] else None, better)
        rt_only = rt.split(" (")[0]
        who = rt.split(" (")[1].rstrip(")") if " (" in rt else ""
        direction = {HI: "higher", LO: "lower", None: "", NORATIO: ""}[better]
        u = f" ({unit})" if unit else ""
        w(f"| {label}{u} | {cell(f, s['turnpike'])} | {cell(f, s['mosquitto'])} | {rt_only} | "
          f"{direction + ' is better' if direction else ''}"
          f"{': ' + who if who else ''} |")
    w("")


def write_results(outdir, stem, args, P, info, runs_data, order, started, finished, charts):
    from .scenarios import CASE_LABEL, SCENARIOS, family_of
    from .cli import FOREIGN_MAX
    md = []
    w = md.append
    w(f"# Turnpike vs mosquitto — {started:%Y-%m-%d %H:%M} UTC")
    w("")
    env = " ".join(f"{k}={os.environ[k]}" for k in ("TURNPIKE_BIN", "MQBENCH_BIN")
                   if k in os.environ)
    cmdline = f"{env} bench/run.py" if env else "bench/run.sh"
    w(f"`{cmdline} {' '.join(args.argv)}`".replace(" `", "`") + f" — {args.runs} run(s) of each "
      f"scenario{' (--quick: short runs, small counts; a smoke test, not a measurement)' if args.quick else ''}; "
      f"took {(finished - started).total_seconds() / 60:.1f} min.")
    w("")
    w("## Machine and versions")
    w("")
    w(f"- {info['nproc']} cores: {info['cpu']}; {info['mem']} memory; Linux {info['kernel']}")
    w(f"- open-file limit {info['nofile'][0]} (hard {info['nofile'][1]}); ephemeral ports "
      f"{info['port_range'][0]}–{info['port_range'][1]}")
    w(f"- Turnpike `{info['turnpike_rev']}`, release build, `--threads 2`")
    w(f"- {info['mosquitto']} (Debian package), single-threaded by design")
    w("- load generator: mqbench (this repo, release build), MQTT 5, on the same 2 cores as the "
      "broker: every figure includes the competition between the broker and its clients")
    w("")
    w("## How to read this")
    w("")
    w("Each scenario ran against a fresh broker, Turnpike and mosquitto alternately (the order "
      "flips each repetition), only one broker running at a time, on its own loopback port. "
      "Tables show the **median (min–max)** over the runs; the ratio is Turnpike/mosquitto "
      "of the medians, and says which side is better for that metric (higher is better for "
      "rates, lower for latency, loss, CPU and memory). Broker CPU is utime+stime from "
      "/proc/PID/stat over the load phase (all threads); RSS is VmRSS from /proc/PID/status. "
      "Latency is publish-to-receive, from the send timestamp in the payload.")
    w("")
    w("Equivalent settings: Turnpike `max_inflight = 20`, `max_queued_messages = 1000`, "
      "`max_packet_size = 1048576`, `max_connections = 0`, `sys_interval = 0`; mosquitto "
      "`max_inflight_messages 20`, `max_queued_messages 1000`, `max_packet_size 1048576`, "
      "`max_connections -1`, `sys_interval 0`, `persistence false`, `allow_anonymous true`, "
      "`log_type error`, and `set_tcp_nodelay true` because Turnpike sets TCP_NODELAY on "
      "every socket (mosquitto would otherwise let Nagle's algorithm delay its small writes).")
    w("")
    w("<details><summary>Configuration files ($PORT: a free port per run)</summary>")
    w("")
    w("```toml")
    w("# turnpike.toml")
    w(TURNPIKE_TOML.rstrip())
    w("```")
    w("")
    w("```")
    w("# mosquitto.conf")
    w(MOSQUITTO_CONF.replace("{port}", "$PORT").rstrip())
    w("```")
    for letter in order:
        SCENARIOS[letter].config_details(w)
    w("")
    w("</details>")
    w("")
    for s in SCENARIOS.values():
        if any(x in order for x in s.intro_for):
            for line in s.intro(P, order):
                w(line)
    bullets = [s.bullet(P) for s in SCENARIOS.values() if s.letter in order]
    bullets = [b for b in bullets if b]
    if bullets:
        w("### Other scenarios")
        w("")
        for b in bullets:
            w(b)
        w("")

    # Disturbance
    w("## Disturbance check")
    w("")
    w("Other people's builds and tests may share these 2 cores. Before each broker run the "
      "harness waits (up to 3 min) until the machine is idle (< 0.3 cores busy). During the run "
      "it compares the machine's busy time (/proc/stat) with the CPU time of the harness, the "
      "broker and mqbench (getrusage of the children): the difference is foreign load. A run "
      f"with more than {FOREIGN_MAX} cores of foreign load on average is discarded and run "
      f"again (at most {args.retries} times); quiet runs show 0.00–0.08.")
    w("")
    waits, redone, kept = [], [], []
    for r in runs_data:
        for sc, per in r["scenarios"].items():
            for br, d in per.items():
                where = f"run {r['rep'] + 1} ({sc}) {LABEL[br]}"
                if d.get("waited_for_idle_s"):
                    waits.append(f"{where}: {d['waited_for_idle_s']:.0f} s")
                for x in d.get("discarded", []):
                    redone.append(f"{where}: {x['foreign_cores']:.2f} cores")
                if d.get("foreign_cores", 0) > FOREIGN_MAX:
                    kept.append(f"{where}: {d['foreign_cores']:.2f} cores")
    foreign = [d.get("foreign_cores", 0) for r in runs_data for per in r["scenarios"].values()
               for d in per.values()]
    if foreign:
        w(f"Foreign load in the kept runs: median {statistics.median(foreign):.2f} cores, "
          f"max {max(foreign):.2f}.")
        w("")
    if waits:
        w("Waited for other load to go: " + "; ".join(waits) + ".")
        w("")
    if redone:
        w("Discarded as disturbed and run again: " + "; ".join(redone) + ".")
        w("")
    if kept:
        w("**Still disturbed after the retries** (kept, read with care): " + "; ".join(kept)
          + ".")
    else:
        w("Every kept run was undisturbed.")
    w("")

    # Tables
    for letter in order:
        sc = SCENARIOS[letter]
        title = sc.title.format(**P)
        per_rep = [r["scenarios"].get(letter) for r in runs_data if letter in r["scenarios"]]
        if not per_rep:
            continue
        w(f"## {title}")
        w("")
        sc.section(w, per_rep, runs_data, P)
        all_cases = cases_of(per_rep)
        parts = sc.families
        for fam in parts:
            case_keys = [ck for ck in all_cases if family_of(ck) == fam]
            h = "##"
            if len(parts) > 1:
                h = "###"
                w(f"{h} {sc.family_titles[fam].format(**P)}")
                w("")
            ck_chart = sc.chart_key(fam)
            if charts.get(ck_chart):
                w(f"![{title}]({charts[ck_chart]})")
                w("")
            for ck in case_keys:
                if len(case_keys) > 1:
                    w(f"{h}# {CASE_LABEL.get(ck, ck)}")
                    w("")
                comparison_table(w, per_rep, fam, ck)
            sc.after_family(w, runs_data, fam, case_keys)
        notes = []
        for i, rep in enumerate(per_rep):
            for br in BROKERS:
                for n in rep[br]["notes"]:
                    notes.append(f"run {i + 1}, {LABEL[br]}: {n}")
        if notes:
            w("Notes: " + "; ".join(notes))
            w("")
        for br in BROKERS:
            merged = {}
            for rep in per_rep:
                for k, v in rep[br]["log"].items():
                    merged[k] = merged.get(k, 0) + v
            if merged:
                top = sorted(merged.items(), key=lambda kv: -kv[1])[:4]
                w(f"{LABEL[br]} log ({sum(merged.values())} lines over the runs), most frequent: "
                  + "; ".join(f"{c}× `{t[:160]}`" for t, c in top))
                w("")
        w("<details><summary>Commands</summary>")
        w("")
        w("```")
        first = per_rep[0]
        for br in BROKERS:
            if first[br]["broker_cmd"]:
                w(f"# {LABEL[br]}")
                w(templ(first[br]["broker_cmd"]))
        cmds = {br: list(dict.fromkeys(templ(a) for a in first[br]["argv"])) for br in BROKERS}
        if cmds["turnpike"] == cmds["mosquitto"]:
            w("# clients (the same against both brokers)")
            w("\n".join(cmds["turnpike"]))
        else:
            for br in BROKERS:
                w(f"# clients against {LABEL[br]}")
                w("\n".join(cmds[br]))
        if sc.commands_note:
            w(sc.commands_note)
        w("```")
        w("")
        w("</details>")
        w("")
    path = outdir / f"{stem}.md"
    path.write_text("\n".join(md))
    return path
