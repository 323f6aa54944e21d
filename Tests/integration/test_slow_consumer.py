"""A subscriber that stops reading, then vanishes, while a publisher floods it.

The broker must drop QoS 0 messages for it once its unsent output passes the bound (counted in
$SYS and logged, never silently), survive the write error when the subscriber resets the
connection with output still queued (this once recursed until the stack overflowed), and keep
serving everyone else.
"""
import socket
import struct
import time

import pytest

import rawmqtt
from conftest import assert_pubsub_works, wait_until


@pytest.mark.turnpike_only
@pytest.mark.single_node("reads one broker process's log and socket buffers")
def test_stalled_subscriber_that_resets_does_not_take_the_broker_down(uid, broker_factory):
    b = broker_factory(sys_interval=1)
    topic = f"{uid}/flood"
    sub = rawmqtt.RawClient(b.port, b.host)
    # A tiny receive buffer so the broker's output backs up quickly.
    sub.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    assert sub.connect(f"{uid}-sub").rc == 0
    assert sub.subscribe([(topic, 0)]).codes == [0]

    pub = rawmqtt.RawClient(b.port, b.host)
    assert pub.connect(f"{uid}-pub").rc == 0
    payload = b"x" * 8192
    frame = rawmqtt.publish(topic, payload, qos=0)
    # 24 MiB at QoS 0 to a subscriber that reads nothing: well past the 8 MiB bound.
    burst = frame * 64
    for _ in range(48):
        pub.send(burst)
    pub.send(rawmqtt.pingreq())
    pub.expect(rawmqtt.PINGRESP, 10)

    # Reset (SO_LINGER 0) with the broker's output to it still queued.
    sub.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sub.sock.close()
    sub.closed = True
    # Keep publishing so the broker writes into the reset connection.
    for _ in range(4):
        pub.send(burst)
    pub.send(rawmqtt.pingreq())
    pub.expect(rawmqtt.PINGRESP, 10)

    assert b.proc.poll() is None, "broker died"
    assert_pubsub_works(b, uid)
    assert wait_until(lambda: "dropped message" in b.log_path.read_text(), 5), \
        "drops for the stalled subscriber must be logged"

    # The drops are counted in $SYS.
    watch = rawmqtt.RawClient(b.port, b.host)
    assert watch.connect(f"{uid}-watch").rc == 0
    watch.subscribe([("$SYS/broker/publish/messages/dropped", 0)])
    deadline = time.monotonic() + 5
    dropped = 0
    while time.monotonic() < deadline and dropped == 0:
        p = watch.try_recv(1.0)
        if p is not None and p.type == rawmqtt.PUBLISH:
            dropped = int(p.payload)
    assert dropped > 0
    watch.close()
    pub.close()
