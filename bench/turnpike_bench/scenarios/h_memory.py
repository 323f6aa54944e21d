"""(h) memory per stored session and per queued message: persistent clients subscribe to
cars/<n>/cmd at QoS 1 and leave (RSS per offline session), QoS 1 messages are published to them
while they are offline (RSS per queued message), then they come back and drain (RSS afterwards:
is the memory returned?)."""
import time

from ..clients import Client, common
from ..machine import IFADDRS, smaps_rollup
from . import HI, INFO, LO, NORATIO, Scenario, family, register

family("memory", [
    ("session_bytes", "RSS per offline session (subscribed to one filter, QoS 1)", "B", LO, "{:,.0f}"),
    ("message_bytes", "RSS per queued QoS 1 message (64 B payload)", "B", LO, "{:,.0f}"),
    ("returned_pct", "memory returned after the drain (of what the queued messages took)", "%", NORATIO, "{:.0f}"),
    ("rss_fresh_mib", "broker RSS, fresh", "MiB", LO, "{:.1f}"),
    ("rss_connected_mib", "broker RSS, the clients connected and subscribed", "MiB", LO, "{:.1f}"),
    ("rss_sessions_mib", "broker RSS, the sessions offline", "MiB", LO, "{:.1f}"),
    ("rss_queued_mib", "broker RSS, the messages queued", "MiB", LO, "{:.1f}"),
    ("rss_drained_mib", "broker RSS after the drain (sessions offline again, queues empty)", "MiB", LO, "{:.1f}"),
    ("anon_session_bytes", "anonymous memory per offline session (smaps_rollup)", "B", LO, "{:,.0f}"),
    ("anon_message_bytes", "anonymous memory per queued message", "B", LO, "{:,.0f}"),
    ("queue_rate", "queued msg/s (publishers' acks)", "msg/s", HI, "{:,.0f}"),
    ("cpu_us_per_msg", "broker CPU per queued message", "µs", LO, "{:.1f}"),
    ("queued", "messages acknowledged (queued)", "", INFO, "{:,.0f}"),
    ("drained", "messages drained", "", INFO, "{:,.0f}"),
    ("errors", "client errors", "", LO, "{:.0f}"),
], ["session_bytes", "message_bytes", "returned_pct", "rss_sessions_mib", "rss_queued_mib",
    "rss_drained_mib"])

PUBS = 100
EXPIRY = 86400      # s: the sessions outlive the run


def settle(broker, seconds=2.5):
    """The broker done with the last step (and Turnpike's heap trim after a mass disconnect,
    which runs within 1 s)."""
    broker.wait_quiet(10)
    time.sleep(seconds)


def memory(broker):
    return broker.rss_kib(), smaps_rollup(broker.pid).get("Anonymous", 0)


def sessions(broker, wd, P, name, duration, rate=5000):
    """The N persistent clients (car_sub_<n>, clean start 0, session expiry), each subscribed
    to cars/<n>/cmd at QoS 1. Coming back to full queues they connect more slowly and wait
    longer for their CONNACK: each one's 100 messages go out as it connects, and this measures
    memory, not a reconnect storm."""
    return Client(wd, name, ["sub", *common(broker), "--ifaddr", IFADDRS, "-c", P["mem_sessions"],
                             "-R", rate, "-t", "cars/%i/cmd", "-q", 1, "-C", "false", "-x", EXPIRY,
                             "--prefix", "car", "--connect-timeout", 60, "--duration", duration])


def wait_drained(client, expected, limit):
    """Until the live lines add up to `expected` received, or nothing came for 3 s after
    something did, or `limit` s."""
    deadline = time.time() + limit
    while time.time() < deadline:
        lines = client.live_lines()
        got = sum(x[2] for x in lines)
        if got >= expected:
            return
        if got and len(lines) >= 3 and all(x[2] == 0 for x in lines[-3:]):
            return
        if client.poll() is not None:
            return
        time.sleep(0.2)


def run_memory(broker, wd, P):
    n, per = P["mem_sessions"], P["mem_per_session"]
    total = n * per
    notes = []
    settle(broker, 1.0)
    rss0, anon0 = memory(broker)
    # 1. The sessions: connect, subscribe, leave.
    sub = sessions(broker, wd, P, "h-subscribe", 300)
    if sub.wait_ready(120) is None:
        raise RuntimeError("the persistent clients did not all subscribe: " + sub.stderr()[-500:])
    settle(broker, 1.0)
    rss_conn, _ = memory(broker)
    sub.interrupt()
    s = sub.result(60)
    settle(broker)
    rss1, anon1 = memory(broker)
    # 2. Messages for them while they are offline.
    cpu0 = broker.cpu_s()
    pub = Client(wd, "h-publish", ["pub", *common(broker), "-c", PUBS, "-R", 5000,
                                   "-t", "cars/%i/cmd", "-q", 1, "-s", 64, "-F", 64, "-I", 0,
                                   "-L", total // PUBS, "--spread", n, "--prefix", "backend",
                                   "--duration", 900])
    p = pub.result(960)
    cpu1 = broker.cpu_s()
    settle(broker)
    rss2, anon2 = memory(broker)
    # 3. They come back and take what was queued, then leave again (their sessions stay).
    drain = sessions(broker, wd, P, "h-drain", 600, rate=1000)
    wait_drained(drain, p["acked"], 300)
    drain.interrupt()
    d = drain.result(60)
    settle(broker)
    rss3, anon3 = memory(broker)
    if d["received"] != p["acked"]:
        notes.append(f"{d['received']:,} messages drained of {p['acked']:,} acknowledged")
    if p["acked"] != total:
        notes.append(f"{p['acked']:,} of {total:,} publishes acknowledged")
    queued_kib = rss2 - rss1
    m = {
        "session_bytes": (rss1 - rss0) * 1024 / n,
        "message_bytes": queued_kib * 1024 / p["acked"] if p["acked"] else None,
        "returned_pct": round((rss2 - rss3) / queued_kib * 100, 1) + 0.0 if queued_kib > 0 else None,
        "rss_fresh_mib": rss0 / 1024, "rss_connected_mib": rss_conn / 1024,
        "rss_sessions_mib": rss1 / 1024, "rss_queued_mib": rss2 / 1024,
        "rss_drained_mib": rss3 / 1024,
        "anon_session_bytes": (anon1 - anon0) * 1024 / n if anon0 else None,
        "anon_message_bytes": (anon2 - anon1) * 1024 / p["acked"] if anon0 and p["acked"] else None,
        "queue_rate": p["acked"] / p["duration_s"] if p["duration_s"] else None,
        "cpu_us_per_msg": (cpu1 - cpu0) / p["acked"] * 1e6 if p["acked"] else None,
        "queued": p["acked"], "drained": d["received"],
        "errors": s["errors_total"] + s["connect_failed"] + p["errors_total"] + p["connect_failed"]
                  + d["errors_total"] + d["connect_failed"],
    }
    return {"memory": m}, notes, [sub.argv, pub.argv, drain.argv]


@register
class Memory(Scenario):
    letter = "h"
    name = "memory"
    title = ("(h) memory: {mem_sessions:,} offline persistent sessions, "
             "{mem_per_session} queued QoS 1 messages each")
    full = dict(mem_sessions=10000, mem_per_session=100)
    quick = dict(mem_sessions=1000, mem_per_session=20)

    def run_part(self, part, broker, wd, P):
        return (*run_memory(broker, wd, P), None)

    def bullet(self, P):
        n, m = P["mem_sessions"], P["mem_per_session"]
        return (f"- (h) {n:,} MQTT 5 clients with clean start 0 and a session expiry of {EXPIRY:,} s "
                f"(`mqbench sub -C false -x {EXPIRY}`, ids car_sub_<n>) subscribe to `cars/<n>/cmd` "
                "at QoS 1 and disconnect: RSS per offline session = (RSS with the sessions offline − "
                f"RSS of the fresh broker) / {n:,}. Then {PUBS} publishers send {m} QoS 1 messages "
                f"of 64 B to each session ({n * m:,} in all, `--spread {n}`, 64 in flight each, "
                "as fast as acknowledged; within both brokers' max_queued_messages of 1000): RSS per "
                f"queued message = (RSS with them queued − RSS with the sessions offline) / {n * m:,}. "
                "Then the clients reconnect with the same ids (1,000/s, 60 s connect timeout) and drain "
                "their queues (the count is checked), and leave again: memory returned = (RSS queued − RSS after the drain) / "
                "(RSS queued − RSS with the sessions offline). Each RSS is read once the broker is "
                "idle, 2.5 s after the last step (Turnpike trims its heap within 1 s of a mass "
                "disconnect). Turnpike keeps its default durability (`sync`: sessions and queued "
                "messages in its store under `--data`); mosquitto runs without persistence as in "
                "every scenario, so its sessions and queues are in memory only. Anonymous memory "
                "(`/proc/PID/smaps_rollup`) is shown beside RSS.")
