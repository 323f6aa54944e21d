"""mqbench processes: started with a scenario's flags, watched through their live lines on
stderr, and read back from their --json report; each one's own CPU is kept when it exits."""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from .machine import BUILD, HOST, proc_cpu_s

MQBENCH = Path(os.environ.get("MQBENCH_BIN", BUILD / "mqbench"))


def common(broker):
    if broker.tls:     # the clients verify the server, as a car would
        return ["-h", HOST, "-p", broker.port, "-S", "--cacertfile", f"{broker.tls}/ca.crt"]
    return ["-h", HOST, "-p", broker.port]


class Client:
    """One mqbench process; its report (--json) goes to a file, its live lines to another."""
    READY = re.compile(r"mqbench \w+: all (\d+) clients connected(?: and subscribed)? in ([\d.]+) s")
    WORKERS = re.compile(r"running (\d+) worker processes")
    LIVE = re.compile(r"mqbench \w+ (\d+)s connected \S+ pub/s (\d+) recv/s (\d+) errors (\d+)")

    def __init__(self, workdir, name, args):
        self.argv = [str(MQBENCH)] + [str(a) for a in args] + ["--json"]
        self.out = Path(workdir) / f"{name}.json"
        self.err = Path(workdir) / f"{name}.err"
        self.started = time.time()
        self.rusage = None
        self.proc = subprocess.Popen(self.argv, stdout=open(self.out, "w"),
                                     stderr=open(self.err, "w"), stdin=subprocess.DEVNULL,
                                     start_new_session=True)

    # The process is reaped here with wait4, not by Popen, so that its CPU (and that of the
    # worker processes it waited for) stays readable after it exited.
    def poll(self):
        """Its exit status, or None while it runs."""
        if self.proc.returncode is not None:
            return self.proc.returncode
        try:
            pid, status, ru = os.wait4(self.proc.pid, os.WNOHANG)
        except ChildProcessError:
            return self.proc.poll()
        if pid == 0:
            return None
        self.rusage = ru
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        return self.proc.returncode

    def wait(self, timeout):
        deadline = time.time() + timeout
        while self.poll() is None:
            if time.time() > deadline:
                raise subprocess.TimeoutExpired(self.argv, timeout)
            time.sleep(0.01)
        return self.proc.returncode

    def cpu_s(self):
        """utime+stime so far (all threads, and its worker processes once they exited); after
        it exited, its whole life's."""
        if self.poll() is None:
            try:
                return proc_cpu_s(self.proc.pid, children=True)
            except OSError:
                self.wait(5)
        return self.rusage.ru_utime + self.rusage.ru_stime if self.rusage else 0.0

    def stderr(self):
        try:
            return self.err.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_ready(self, timeout):
        """Seconds each process (main or worker) took to connect all its clients, or None."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.stderr()
            m = self.WORKERS.search(text)
            expected = int(m.group(1)) if m else 1
            ready = [float(t) for _, t in self.READY.findall(text)]
            if len(ready) >= expected and (m or ready):
                return ready
            if self.poll() is not None:
                return None
            time.sleep(0.02)
        return None

    def publishing_s(self, report):
        """Seconds the clients published: with -w, the run less the connect phase (which a
        TLS handshake per client makes long enough to matter at a few seconds per step)."""
        ready = [float(t) for _, t in self.READY.findall(self.stderr())]
        return report["duration_s"] - (max(ready) if ready else 0.0)

    CONN = re.compile(r"(?:\[w(\d+)\] )?mqbench conn (\d+)s connected (\d+)/(\d+) pub/s \d+ "
                      r"recv/s \d+ errors (\d+)")

    def connect_progress(self):
        """Per process (main or worker): [(second, connected, of, errors)] from the live lines."""
        per = {}
        for w, sec, conn, total, err in self.CONN.findall(self.stderr()):
            per.setdefault(w or "0", []).append((int(sec), int(conn), int(total), int(err)))
        return per

    def wait_connects_settled(self, timeout):
        """Until every client connected or failed (or `timeout`). Returns (seconds until all
        connected, or None), and whether it settled."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            ready = self.wait_ready(0.5)
            if ready is not None:
                return max(ready), True
            text = self.stderr()
            m = self.WORKERS.search(text)
            expected = int(m.group(1)) if m else 1
            per = self.connect_progress()
            if len(per) >= expected and all(v[-1][1] + v[-1][3] >= v[-1][2] for v in per.values()):
                return None, True
            if self.poll() is not None:
                return None, False
        return None, False

    def last_connect_s(self):
        """When the last client that connected did so: per process, the first live line that
        shows its final connected count (1 s resolution); the latest of those."""
        times = []
        for lines in self.connect_progress().values():
            final = max(c for _, c, _, _ in lines)
            times.append(next(sec for sec, c, _, _ in lines if c == final))
        return max(times) if times else None

    def live_lines(self):
        return [tuple(int(x) for x in m) for m in self.LIVE.findall(self.stderr())]

    def wait_quiet(self, since_line, max_wait):
        """After the publishers stopped: waits until a live line reports nothing received for
        a whole second (or max_wait passes)."""
        deadline = time.time() + max_wait
        while time.time() < deadline:
            lines = self.live_lines()
            if len(lines) > since_line + 1 and lines[-1][2] == 0:
                return
            time.sleep(0.05)

    def interrupt(self):
        if self.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def result(self, timeout, keep_histograms=False):
        try:
            self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.interrupt()
            try:
                self.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.wait(10)
        text = self.out.read_text().strip()
        if not text:
            raise RuntimeError(f"no report from {' '.join(self.argv)} (status "
                               f"{self.proc.returncode}): {self.stderr()[-1500:]}")
        report = json.loads(text.splitlines()[-1])
        if not keep_histograms:
            report.pop("histograms", None)
        return report
