"""Graceful shutdown on SIGTERM."""

import time

import pytest

import rawmqtt as R
from conftest import V5


def test_sigterm_closes_clients_and_exits_zero(broker_factory, raw, clients, uid):
    b = broker_factory()
    v5 = raw(b, version=5)
    assert v5.connect(uid + "-5").rc == 0
    v3 = raw(b)
    assert v3.connect(uid + "-3").rc == 0
    p = clients(b, uid + "-paho", version=V5)
    t0 = time.monotonic()
    b.terminate()
    rc = b.wait(5)
    assert rc is not None, "broker did not exit within 5 s of SIGTERM"
    assert rc == 0, f"exit code {rc}"
    assert time.monotonic() - t0 < 5
    for c in (v5, v3):
        closed, pkts = c.wait_closed(2)
        assert closed
        assert all(x is not None and x.type == R.DISCONNECT for x in pkts), pkts
    assert p.disconnected.wait(3)


# mosquitto 2.0.11 just closes the sockets on SIGTERM, without DISCONNECT 0x8B.
@pytest.mark.turnpike_only
def test_sigterm_sends_v5_disconnect_0x8b(broker_factory, raw, uid):
    b = broker_factory()
    c = raw(b, version=5)
    assert c.connect(uid).rc == 0
    b.terminate()
    closed, pkts = c.wait_closed(5)
    assert closed
    assert pkts and pkts[0].type == R.DISCONNECT and pkts[0].rc == 0x8B, pkts
    assert b.wait(5) == 0


def test_sigterm_idle_broker_exits_zero(broker_factory):
    b = broker_factory(sys_interval=0)
    b.terminate()
    assert b.wait(5) == 0


def test_sigterm_with_persistent_sessions_and_inflight(broker_factory, raw, clients, uid):
    """Shutdown must not hang on sessions holding unacknowledged messages."""
    b = broker_factory()
    sub = raw(b)
    assert sub.connect(uid, clean=False).rc == 0
    sub.subscribe([(f"{uid}/t", 1)])
    pub = clients(b, uid + "-p", version=V5)
    for i in range(5):
        pub.publish(f"{uid}/t", b"x", qos=1)
    assert sub.expect(R.PUBLISH)  # never acked
    b.terminate()
    assert b.wait(5) == 0
