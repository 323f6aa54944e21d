"""The machine: where the binaries are, /proc readings (CPU, memory, idle cores), free ports,
logging, and the versions the results file names. Shared by run.py and the other bench scripts."""
import os
import platform
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
# The release build the scripts run: `.build/release`, or $BENCH_BUILD/release when bench/run.sh
# was given a scratch path (BENCH_BUILD=dir: `swift build --scratch-path dir`).
BUILD = Path(os.environ["BENCH_BUILD"]) / "release" if os.environ.get("BENCH_BUILD") else ROOT / ".build/release"
CLK_TCK = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"
# Source addresses for the scenarios with thousands of clients: one address's even ephemeral
# ports (~14k, which connect() prefers) run out at 19,000 clients and connects stall for seconds.
IFADDRS = ",".join(f"127.0.0.{i}" for i in range(1, 9))


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# One process, from /proc

def proc_stat(pid):
    """The fields of /proc/PID/stat after the command name (field 3 is index 0)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def proc_cpu_s(pid, children=False):
    """utime+stime of `pid` (all threads); with `children`, plus the CPU of the children it has
    waited for (cutime+cstime: mqbench's worker processes)."""
    fields = proc_stat(pid)
    n = 15 if children else 13
    return sum(int(x) for x in fields[11:n]) / CLK_TCK    # utime stime [cutime cstime]


def proc_status(pid, key):
    """A field of /proc/PID/status in its unit (kB for the Vm* ones), 0 when absent."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def proc_write_bytes(pid):
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    return 0


def smaps_rollup(pid):
    """/proc/PID/smaps_rollup in kB: Rss, Anonymous, Pss_File, … (empty when unreadable)."""
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                    out[parts[0][:-1]] = int(parts[1])
    except OSError:
        pass
    return out


# ---------------------------------------------------------------------------------------------
# The whole machine

def machine_busy(seconds):
    """Non-idle CPU of the whole machine over `seconds`, in cores (0..nproc)."""
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + v[4]
        return sum(v) - idle
    a = snap()
    time.sleep(seconds)
    return (snap() - a) / CLK_TCK / seconds


def wait_idle(limit=180, threshold=0.3):
    """Waits (at most `limit` s) until the machine is idle: other people's builds and tests
    share these 2 cores. Returns (seconds waited, cores busy at the last look)."""
    t0 = time.time()
    busy = machine_busy(1.0)
    while busy > threshold and time.time() - t0 < limit:
        busy = machine_busy(2.0)
    waited = time.time() - t0 - 1.0
    return (waited if waited > 0.5 else 0.0), busy


def busy_s():
    """Non-idle CPU seconds of the whole machine since boot."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / CLK_TCK


def own_cpu_s():
    """CPU seconds of this process and of every child it has waited for (brokers, mqbench
    and mqbench's workers)."""
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def raise_nofile():
    """Soft open-file limit up to the hard one; returns the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def machine_info(turnpike, mosquitto):
    """Machine, kernel and versions for the results file; `turnpike` is the binary run."""
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass

    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                                  timeout=10).stdout.strip()
        except Exception:
            return "?"
    rev = out(["git", "rev-parse", "--short", "HEAD"])
    dirty = out(["git", "status", "--porcelain", "--untracked-files=no", "--", "Sources"])
    mosq = subprocess.run([mosquitto, "-h"], capture_output=True, text=True).stdout.splitlines()
    rev = rev + (" (with uncommitted changes in Sources/)" if dirty else "")
    if os.environ.get("BENCH_TURNPIKE_REV"):
        rev = os.environ["BENCH_TURNPIKE_REV"]
    elif "TURNPIKE_BIN" in os.environ:
        rev = f"{turnpike} (TURNPIKE_BIN; work tree at {rev})"
    return {
        "nproc": os.cpu_count(), "cpu": cpu, "mem": mem, "kernel": platform.release(),
        "turnpike_rev": rev,
        "mosquitto": mosq[0] if mosq else "?",
        "python": platform.python_version(),
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
        "port_range": Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split(),
    }


class CpuSampler:
    """Samples utime+stime of some processes every `interval` s on a thread of its own, so that
    the cores they used over a window inside a run can be read afterwards (a process that exited
    keeps its last sample)."""

    def __init__(self, pids, interval=0.1):
        import threading
        self.pids = dict(pids)          # name -> pid
        self.interval = interval
        self.samples = []               # (time, {name: cpu seconds})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        last = {}
        while not self._stop.is_set():
            t = time.time()
            for name, pid in self.pids.items():
                try:
                    last[name] = proc_cpu_s(pid, children=True)
                except (OSError, IndexError, ValueError):
                    pass
            self.samples.append((t, dict(last)))
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._thread.join(5)

    def cores(self, names, t0, t1):
        """Cores the processes `names` used together between t0 and t1 (the samples nearest
        inside that window), or None without two samples in it."""
        inside = [(t, s) for t, s in self.samples if t0 <= t <= t1]
        if len(inside) < 2 or inside[-1][0] - inside[0][0] < 0.3:
            return None
        (ta, a), (tb, b) = inside[0], inside[-1]
        return sum(b.get(n, 0) - a.get(n, 0) for n in names) / (tb - ta)
