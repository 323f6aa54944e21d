"""A real NATS cluster with JetStream for the cluster tests (and bench/cluster.py): Debian's nats-server, one process
per node, each on its own loopback ports and store directory, started and stopped here."""

import json
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from servers import free_port

NATS_SERVER = shutil.which("nats-server") or "/usr/bin/nats-server"


class NatsCluster:
    def __init__(self, nodes: int = 3):
        self.dir = Path(tempfile.mkdtemp(prefix="tp-nats-"))
        self.n = nodes
        self.client_ports = [free_port() for _ in range(nodes)]
        self.route_ports = [free_port() for _ in range(nodes)]
        self.http_ports = [free_port() for _ in range(nodes)]
        self.procs: list[subprocess.Popen | None] = [None] * nodes

    @property
    def urls(self) -> list[str]:
        return [f"nats://127.0.0.1:{p}" for p in self.client_ports]

    def _config(self, i: int) -> Path:
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in self.route_ports)
        store = self.dir / f"store{i}"
        store.mkdir(exist_ok=True)
        text = (f'server_name: n{i}\nlisten: 127.0.0.1:{self.client_ports[i]}\nhttp: 127.0.0.1:{self.http_ports[i]}\n'
                f'max_payload: 8MB\njetstream {{ store_dir: "{store}" }}\n'
                f'cluster {{ name: tp\n  listen: 127.0.0.1:{self.route_ports[i]}\n  routes: [{routes}] }}\n')
        path = self.dir / f"n{i}.conf"
        path.write_text(text)
        return path

    def start_node(self, i: int):
        log = open(self.dir / f"n{i}.log", "ab")
        self.procs[i] = subprocess.Popen([NATS_SERVER, "-c", str(self._config(i))], stdout=log, stderr=subprocess.STDOUT)

    def start(self, timeout: float = 20.0) -> "NatsCluster":
        for i in range(self.n):
            self.start_node(i)
        self.wait_routes(timeout)
        return self

    def monitor(self, i: int, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_ports[i]}/{path}", timeout=2) as r:
            return json.loads(r.read())

    def wait_routes(self, timeout: float = 20.0):
        """Every live node routes to every other live one, and JetStream has a meta leader."""
        live = [i for i in range(self.n) if self.procs[i] and self.procs[i].poll() is None]
        deadline = time.monotonic() + timeout
        while True:
            try:
                if all(self.monitor(i, "routez")["num_routes"] >= len(live) - 1 for i in live) and \
                        any(self.monitor(i, "jsz").get("meta_cluster", {}).get("leader") for i in live):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("NATS cluster did not form:\n" + "\n".join(
                    (self.dir / f"n{i}.log").read_text(errors="replace")[-1500:] for i in live))
            time.sleep(0.1)

    def kill_node(self, i: int):
        p = self.procs[i]
        if p and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait(10)
        self.procs[i] = None

    def stop(self):
        for p in self.procs:
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            if p:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


def delete_streams(url: str, names: list[str], timeout: float = 5.0) -> int:
    """Deletes JetStream streams (a KV bucket B is the stream KV_B) through the NATS protocol on
    one socket; returns how many the server answered. What a test's cluster left behind would
    otherwise keep its Raft groups (and their heartbeats) running for the rest of the session."""
    import socket
    host, port = url.removeprefix("nats://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.recv(4096)                                          # INFO
        out = b'CONNECT {"verbose":false,"pedantic":false,"headers":false}\r\nSUB _INBOX.tpdel 1\r\n'
        for n in names:
            out += f"PUB $JS.API.STREAM.DELETE.{n} _INBOX.tpdel 0\r\n\r\n".encode()
        s.sendall(out + b"PING\r\n")
        buf, answered, deadline = b"", 0, time.monotonic() + timeout
        while answered < len(names) and time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            buf += chunk
            answered = buf.count(b"MSG _INBOX.tpdel")
            if b"PING\r\n" in buf:
                s.sendall(b"PONG\r\n")
                buf = buf.replace(b"PING\r\n", b"")
        return answered
