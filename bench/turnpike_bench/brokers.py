"""The two brokers with equivalent settings, started on a free loopback port, and what the
harness reads of them: CPU, RSS, open files, the log."""
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from .machine import BUILD, HOST, free_port, machine_busy, proc_cpu_s, proc_status

# TURNPIKE_BIN benchmarks another build (e.g. a clean export of a commit); BENCH_TURNPIKE_REV
# then names what was built, for the results file. run.py replaces these with copies at start.
TURNPIKE = Path(os.environ.get("TURNPIKE_BIN", BUILD / "turnpike"))
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
BROKERS = ("turnpike", "mosquitto")
LABEL = {"turnpike": "Turnpike", "mosquitto": "mosquitto"}
COLOR = {"turnpike": "#1f6fb4", "mosquitto": "#e08a1e"}

TURNPIKE_TOML = """\
[server]
sys_interval = 0

[limits]
max_inflight = 20
max_queued_messages = 1000
max_packet_size = 1048576
max_connections = 0
"""

# set_tcp_nodelay: Turnpike sets TCP_NODELAY on every accepted socket; mosquitto does not unless
# told, and Nagle's algorithm would add delay to mosquitto's small writes.
MOSQUITTO_SETTINGS = """\
allow_anonymous true
persistence false
max_inflight_messages 20
max_queued_messages 1000
max_packet_size 1048576
sys_interval 0
set_tcp_nodelay true
log_type error
max_connections -1
"""
MOSQUITTO_CONF = "listener {port} 127.0.0.1\n" + MOSQUITTO_SETTINGS

# (f): the same settings, but the clients' listener is TLS (a plain one stays for the
# harness's own liveness check only). Certificates: certs/make-dev-certs.sh (RSA 2048, TLS 1.3
# negotiated by both). `user root`: started as root, mosquitto would otherwise drop to a user
# that cannot read the key in the harness's private temporary directory.
TURNPIKE_TLS_LISTENERS = """
[[listeners]]
bind = "127.0.0.1"
port = {plain}

[[listeners]]
bind = "127.0.0.1"
port = {port}
certfile = "{certs}/server.crt"
keyfile = "{certs}/server.key"
"""

MOSQUITTO_TLS_CONF = "per_listener_settings false\nuser root\n" + MOSQUITTO_SETTINGS + """\
listener {plain} 127.0.0.1
listener {port} 127.0.0.1
certfile {certs}/server.crt
keyfile {certs}/server.key
"""


class Broker:
    def __init__(self, kind, workdir, tls=None, extra_toml="", base_toml=None):
        """tls: the directory of make-dev-certs.sh's files, for a TLS listener; extra_toml:
        more of Turnpike's configuration (rules, bridges, [admin]); base_toml: Turnpike's
        configuration instead of TURNPIKE_TOML (other limits)."""
        self.kind = kind
        self.tls = tls
        self.extra_toml = extra_toml
        self.base_toml = base_toml
        self.workdir = Path(workdir)
        self.proc = None
        self.port = None
        self.command = None
        self.background_cores = None

    def start(self):
        self.port = free_port()
        plain = free_port() if self.tls else self.port
        base = TURNPIKE_TOML if self.base_toml is None else self.base_toml
        if self.kind == "turnpike":
            cfg = self.workdir / "turnpike.toml"
            cmd = [str(TURNPIKE), "serve", "--config", str(cfg), "--log-level", "warning",
                   "--threads", "2", "--data", str(self.workdir / "data")]
            if self.tls:
                cfg.write_text(base + TURNPIKE_TLS_LISTENERS.format(
                    plain=plain, port=self.port, certs=self.tls))
            else:
                cfg.write_text(base + self.extra_toml)
                cmd[4:4] = ["--bind", HOST, "--port", str(self.port)]
        else:
            cfg = self.workdir / "mosquitto.conf"
            if self.tls:
                cfg.write_text(MOSQUITTO_TLS_CONF.format(plain=plain, port=self.port,
                                                         certs=self.tls))
            else:
                cfg.write_text(MOSQUITTO_CONF.format(port=self.port))
            cmd = [MOSQUITTO, "-c", str(cfg)]
        self.command = cmd
        self.logpath = self.workdir / f"{self.kind}-{self.port}.log"
        self._log = open(self.logpath, "w")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited at start ({self.proc.returncode}): "
                                   + self.logpath.read_text()[-2000:])
            try:
                with socket.create_connection((HOST, plain), timeout=0.5):
                    break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError(f"{self.kind} does not listen on {self.port}")
                time.sleep(0.05)
        # Settle, and see whether something else is loading the machine meanwhile.
        self.background_cores = machine_busy(0.5)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def cpu_s(self):
        return proc_cpu_s(self.pid)

    def status(self, key):
        return proc_status(self.pid, key)

    def rss_kib(self):
        return self.status("VmRSS")

    def hwm_kib(self):
        return self.status("VmHWM")

    def wait_quiet(self, limit=5.0):
        """Waits until the broker uses (almost) no CPU: done with what the last step left."""
        deadline = time.time() + limit
        last = self.cpu_s()
        while time.time() < deadline:
            time.sleep(0.2)
            now = self.cpu_s()
            if now - last < 0.02:
                return
            last = now

    def fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def nofile_limit(self):
        with open(f"/proc/{self.pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
        return None

    def stop(self):
        """Stops the broker; returns (crashed, note)."""
        crashed = False
        note = ""
        if self.proc.poll() is not None:
            crashed = True
            note = f"{self.kind} had exited by itself with status {self.proc.returncode}"
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                note = f"{self.kind} ignored SIGTERM for 15 s; killed"
            if self.proc.returncode not in (0, -signal.SIGTERM, 128 + signal.SIGTERM) and not note:
                crashed = True
                note = f"{self.kind} exited with status {self.proc.returncode} on SIGTERM"
        self._log.close()
        return crashed, note

    def log_summary(self):
        """Lines of the broker's log, grouped by their text without numbers and client ids."""
        groups = {}
        for line in self.logpath.read_text(errors="replace").splitlines():
            text = re.sub(r"^\S+ ", "", line)                     # timestamp
            text = re.sub(r"mqb[0-9a-f]{6}_\w+", "<client>", text)
            text = re.sub(r"\d+", "N", text)
            groups[text] = groups.get(text, 0) + 1
        return groups
