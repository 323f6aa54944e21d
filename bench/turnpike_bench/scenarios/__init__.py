"""The scenario registry. Each module of this package (a_idle.py, b_fanin.py, …) defines one
scenario (a subclass of Scenario) and registers it with @register; the modules are imported in
name order, so a new scenario is one new file here. A scenario says which metric families its
cases fall into (a family = one kind of table and chart: its metrics, labels and which side is
better); families are registered with family()."""
import importlib
import pkgutil

from ..brokers import Broker
from ..machine import log

HI, LO, INFO = "higher", "lower", None
NORATIO = "no ratio"   # for information, and no Turnpike/mosquitto ratio (e.g. a percentage near 0)

SCENARIOS = {}     # letter -> Scenario, in registration (= file name) order
FAMILIES = {}      # name -> Family
CASE_LABEL = {}    # case key -> label (sub-headings, chart ticks)
# Parameters of every scenario: FULL for real runs, QUICK for --quick. One dict each (scenarios
# recognise --quick as `P is QUICK`), filled by the scenarios as they register.
FULL = {}
QUICK = {}


class Family:
    """A kind of table: metrics [(key, label, unit, better, format)], the keys drawn in its
    chart, and which case keys belong to it."""

    def __init__(self, name, metrics, chart_metrics, match=None):
        self.name = name
        self.metrics = metrics
        self.chart_metrics = chart_metrics
        self.match = match or (lambda ck: ck == name)


def family(name, metrics, chart_metrics, match=None):
    FAMILIES[name] = Family(name, metrics, chart_metrics, match)
    return FAMILIES[name]


def family_of(case):
    for f in FAMILIES.values():
        if f.match(case):
            return f.name
    return case


def register(cls):
    s = cls()
    SCENARIOS[s.letter] = s
    FULL.update(s.full)
    QUICK.update(s.quick)
    CASE_LABEL.update(s.case_labels)
    return cls


def per_million(cpu, delivered):
    return cpu / delivered * 1e6 if delivered else None


def loss_pct(sent, received):
    return 100.0 * (sent - received) / sent if sent else None


class Scenario:
    """One scenario. run() runs it against one broker kind and returns the dict the results
    JSON keeps per broker and run; by default each of parts() gets a fresh broker and
    run_part() measures it."""
    letter = "?"
    name = "?"              # the results' name for it; also its family unless `families` says
    title = ""              # table heading, format(**P)
    families = None         # metric families of its cases (default: [name])
    family_titles = {}      # family -> sub-heading, when it has several (format(**P))
    full = {}               # its parameters, real runs
    quick = {}              # … and --quick
    case_labels = {}
    charts = True           # a PNG per family
    intro_for = ()          # letters whose presence puts intro() under "How to read this"
    commands_note = None    # a comment line after the commands of its section

    def __init__(self):
        if self.families is None:
            self.families = [self.name]

    def setup(self, tmp):
        """Once per bench run, before any run (e.g. certificates in the temporary directory)."""

    def parts(self):
        """What runs on a fresh broker each: a list of specs for run_part()."""
        return [(self.name,)]

    def broker(self, kind, wd, part):
        return Broker(kind, wd)

    def run_part(self, part, broker, wd, P):
        """Returns (cases {case: {metric: value}}, notes, argv lists, ramp steps or None)."""
        raise NotImplementedError

    def run(self, kind, wd, P):
        cases, notes, argv, extra = {}, [], [], []
        brokers_cmd = None
        crash_notes = []
        logs = {}
        bg = []
        for part in self.parts():
            b = self.broker(kind, wd, part).start()
            bg.append(b.background_cores)
            brokers_cmd = b.command
            try:
                c, n, a, steps = self.run_part(part, b, wd, P)
                if steps is not None:
                    extra.append(steps)
                cases.update(c)
                notes += n
                argv += a
            except Exception as e:  # a failed run is reported, not fatal
                notes.append(f"run failed: {e}")
                log(f"  {kind} {self.name}: run failed: {e}")
            finally:
                crashed, note = b.stop()
                if note:
                    notes.append(note)
                if crashed:
                    crash_notes.append(note)
                for k, v in b.log_summary().items():
                    logs[k] = logs.get(k, 0) + v
        return {"cases": cases, "notes": notes, "argv": argv, "broker_cmd": brokers_cmd,
                "crashed": crash_notes, "log": logs, "background_cores": max(bg), "steps": extra}

    # The results file
    def chart_key(self, fam):
        return self.letter if len(self.families) == 1 else f"{self.letter}-{fam}"

    def intro(self, P, order):
        """Lines under "How to read this" (when a letter of intro_for is in the run)."""
        return []

    def bullet(self, P):
        """Its item under "Other scenarios" (None: it has none)."""
        return None

    def config_details(self, w):
        """More configuration in the <details> block of the results file."""

    def section(self, w, per_rep, runs_data, P):
        """What its section shows before the family tables."""

    def after_family(self, w, runs_data, fam, case_keys):
        """What follows one family's tables."""


for _m in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_m}")
