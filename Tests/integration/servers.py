"""The real sink servers the bridge tests and `bench/bridges.py` start: a Kafka-protocol broker
(noida-db 0.2.3 from PyPI, its binary on a free loopback port with a fresh data dir;
/work/shared/KAFKA.md) and PostgreSQL 15 (Debian's server, initdb in a temp dir, its own port;
/work/shared/COMPONENTS.md). No pytest here, so the benchmark harness can import it."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KAFKA_VENV = Path(os.environ.get("KAFKA_VENV", REPO / ".venv-kafka"))
KCAT = shutil.which("kcat") or "/usr/bin/kcat"
PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
PSQL = shutil.which("psql") or "/usr/bin/psql"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def noida_bin() -> str:
    """The noida-db broker binary inside its wheel (installed into .venv-kafka when missing)."""
    py = KAFKA_VENV / "bin" / "python"
    if not py.exists():
        subprocess.run(["python3", "-m", "venv", str(KAFKA_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "noida-db==0.2.3"], check=True)
    return subprocess.run([str(py), "-c", "import noida_db,os;print(os.path.join(os.path.dirname(noida_db.__file__),'noida-db'))"],
                          check=True, capture_output=True, text=True).stdout.strip()


class Noida:
    """One noida-db process (the binary itself, not the wrapper, so its PID is the broker's)."""

    def __init__(self, data_dir: Path):
        self.bin = noida_bin()
        self.port = free_port()
        self.dir = Path(data_dir)
        self.dir.mkdir()
        self.proc = None

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        log = open(f"{self.dir}.log", "ab")
        self.proc = subprocess.Popen([self.bin, "start", "--data-dir", str(self.dir), "--only", "kafka",
                                      "--kafka-port", str(self.port)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while subprocess.run([KCAT, "-b", self.bootstrap, "-L", "-m", "1"], capture_output=True).returncode != 0:
            assert self.proc.poll() is None and time.monotonic() < deadline, open(f"{self.dir}.log").read()[-2000:]
            time.sleep(0.05)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def read(self, topic, n, timeout=30, fmt="%k\t%s\n"):
        """(key, value) of every message in `topic`, in offset order, once `n` are there."""
        deadline = time.monotonic() + timeout
        while True:
            r = subprocess.run([KCAT, "-C", "-b", self.bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
                                "-f", fmt], capture_output=True, timeout=120)
            rows = [tuple(line.split(b"\t", 1)) for line in r.stdout.split(b"\n") if line]
            if len(rows) >= n or time.monotonic() > deadline:
                return rows
            time.sleep(0.3)

    def end_offsets(self, topic):
        """Records the topic holds (the sum over its partitions of the next offset); 0 before it
        exists."""
        meta = subprocess.run([KCAT, "-b", self.bootstrap, "-L", "-t", topic], capture_output=True, text=True,
                              timeout=30).stdout
        parts = [line.split()[1].rstrip(",") for line in meta.splitlines() if line.strip().startswith("partition ")]
        if not parts:
            return 0
        args = [KCAT, "-b", self.bootstrap, "-Q"]
        for p in parts:
            args += ["-t", f"{topic}:{p}:-1"]
        r = subprocess.run(args, capture_output=True, text=True, timeout=30)
        total = 0
        for line in r.stdout.splitlines():       # "<topic> [<partition>] offset <n>"
            f = line.split()
            if len(f) >= 4 and f[-2] == "offset":
                total += max(0, int(f[-1]))
        return total


def as_postgres(*cmd, **kw):
    """Runs a server command as the postgres user when we are root (initdb refuses root)."""
    if os.geteuid() == 0:
        cmd = ("runuser", "-u", "postgres", "--") + cmd
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


class Postgres:
    def __init__(self, settings=()):
        """settings: extra `-c name=value` server settings."""
        self.dir = tempfile.mkdtemp(prefix="tp-pg-")
        os.chmod(self.dir, 0o755)                       # mktemp's 0700 makes initdb fail
        self.data = os.path.join(self.dir, "pg", "data")
        os.mkdir(os.path.join(self.dir, "pg"))
        if os.geteuid() == 0:
            shutil.chown(os.path.join(self.dir, "pg"), "postgres", "postgres")
        self.port = free_port()
        self.settings = list(settings)
        as_postgres(f"{PG_BIN}/initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    @property
    def dsn(self):
        return f"host=127.0.0.1 port={self.port} dbname=postgres user=postgres"

    def start(self):
        extra = "".join(f" -c {s}" for s in self.settings)
        as_postgres(f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "pg", "log"),
                    "-o", f"-p {self.port} -k {self.dir}/pg -c listen_addresses=127.0.0.1{extra}", "-w", "start",
                    timeout=30)
        return self

    def pid(self):
        """The postmaster's PID (its backends are its children)."""
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            return int(f.readline())

    def stop(self):
        as_postgres(f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop", timeout=30)

    def sql(self, text):
        r = subprocess.run([PSQL, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
                            "-U", "postgres", "-d", "postgres", "-c", text], check=True, capture_output=True, timeout=60)
        return r.stdout

    def count(self, table="telemetry"):
        return int(self.sql(f"SELECT count(*) FROM {table}"))

    def close(self):
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass                                        # already stopped
        shutil.rmtree(self.dir, ignore_errors=True)
