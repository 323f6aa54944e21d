"""Minimal hand-rolled MQTT 3.1 / 3.1.1 / 5.0 codec and socket client for tests.

Deliberately independent of the broker's own code: every byte is built here
from the OASIS specifications, so the integration tests can produce packets a
client library never would (wrong flags, duplicate PUBLISHes, bad QoS, ...)
and can look at exactly what the broker sends back.

Usage sketch::

    c = RawClient(port, version=5)
    ack = c.connect("cid", keepalive=10, properties={"ReceiveMaximum": 2})
    assert ack.rc == 0
    c.subscribe([("a/#", 1)])
    p = c.expect(PUBLISH)
    c.send(puback(p.pid, version=5))
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Iterable

# ---------------------------------------------------------------------------
# Packet types
# ---------------------------------------------------------------------------
CONNECT = 1
CONNACK = 2
PUBLISH = 3
PUBACK = 4
PUBREC = 5
PUBREL = 6
PUBCOMP = 7
SUBSCRIBE = 8
SUBACK = 9
UNSUBSCRIBE = 10
UNSUBACK = 11
PINGREQ = 12
PINGRESP = 13
DISCONNECT = 14
AUTH = 15

PACKET_NAMES = {
    1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC",
    6: "PUBREL", 7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE",
    11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH",
}

# Protocol levels
MQTT31 = 3
MQTT311 = 4
MQTT5 = 5

# ---------------------------------------------------------------------------
# v5 properties: id -> (name, kind)
# kinds: byte, u16, u32, varint, str, bin, pair
# ---------------------------------------------------------------------------
PROPERTIES = {
    0x01: ("PayloadFormatIndicator", "byte"),
    0x02: ("MessageExpiryInterval", "u32"),
    0x03: ("ContentType", "str"),
    0x08: ("ResponseTopic", "str"),
    0x09: ("CorrelationData", "bin"),
    0x0B: ("SubscriptionIdentifier", "varint"),
    0x11: ("SessionExpiryInterval", "u32"),
    0x12: ("AssignedClientIdentifier", "str"),
    0x13: ("ServerKeepAlive", "u16"),
    0x15: ("AuthenticationMethod", "str"),
    0x16: ("AuthenticationData", "bin"),
    0x17: ("RequestProblemInformation", "byte"),
    0x18: ("WillDelayInterval", "u32"),
    0x19: ("RequestResponseInformation", "byte"),
    0x1A: ("ResponseInformation", "str"),
    0x1C: ("ServerReference", "str"),
    0x1F: ("ReasonString", "str"),
    0x21: ("ReceiveMaximum", "u16"),
    0x22: ("TopicAliasMaximum", "u16"),
    0x23: ("TopicAlias", "u16"),
    0x24: ("MaximumQoS", "byte"),
    0x25: ("RetainAvailable", "byte"),
    0x26: ("UserProperty", "pair"),
    0x27: ("MaximumPacketSize", "u32"),
    0x28: ("WildcardSubscriptionAvailable", "byte"),
    0x29: ("SubscriptionIdentifierAvailable", "byte"),
    0x2A: ("SharedSubscriptionAvailable", "byte"),
}
PROPERTY_IDS = {name: (pid, kind) for pid, (name, kind) in PROPERTIES.items()}
# Properties that may appear more than once; decoded as lists.
MULTI = {"UserProperty", "SubscriptionIdentifier"}


class MQTTProtocolError(Exception):
    """The bytes received from the broker do not form a valid packet."""


class ConnectionClosed(Exception):
    """The broker closed the TCP connection."""


class Timeout(Exception):
    """No packet arrived in time."""


# ---------------------------------------------------------------------------
# Primitive encoders
# ---------------------------------------------------------------------------
def enc_varint(n: int) -> bytes:
    if n < 0 or n > 268_435_455:
        raise ValueError("varint out of range")
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def enc_u16(n: int) -> bytes:
    return struct.pack("!H", n)


def enc_u32(n: int) -> bytes:
    return struct.pack("!I", n)


def enc_bin(b: bytes) -> bytes:
    return enc_u16(len(b)) + b


def enc_str(s) -> bytes:
    if isinstance(s, str):
        s = s.encode("utf-8")
    return enc_bin(s)


def enc_properties(props: dict | None) -> bytes:
    """Encode a v5 property block (length prefix included).

    ``props`` maps property names to values; UserProperty is a list of
    (key, value) pairs; SubscriptionIdentifier may be an int or a list.
    A special key ``"_raw"`` appends literal bytes (for malformed tests).
    """
    body = bytearray()
    for name, value in (props or {}).items():
        if name == "_raw":
            body += value
            continue
        pid, kind = PROPERTY_IDS[name]
        values = value if (name in MULTI and isinstance(value, (list, tuple))) else [value]
        for v in values:
            body.append(pid)
            if kind == "byte":
                body.append(v)
            elif kind == "u16":
                body += enc_u16(v)
            elif kind == "u32":
                body += enc_u32(v)
            elif kind == "varint":
                body += enc_varint(v)
            elif kind == "str":
                body += enc_str(v)
            elif kind == "bin":
                body += enc_bin(v if isinstance(v, bytes) else v.encode())
            elif kind == "pair":
                body += enc_str(v[0]) + enc_str(v[1])
    return enc_varint(len(body)) + bytes(body)


def fixed_header(ptype: int, flags: int, body: bytes) -> bytes:
    return bytes([(ptype << 4) | (flags & 0x0F)]) + enc_varint(len(body)) + body


# ---------------------------------------------------------------------------
# Packet builders (return raw bytes)
# ---------------------------------------------------------------------------
def connect(client_id: str = "", version: int = MQTT311, clean: bool = True,
            keepalive: int = 60, username: str | None = None,
            password: bytes | None = None, will: dict | None = None,
            properties: dict | None = None, protocol_name: str | None = None,
            reserved_flag: bool = False) -> bytes:
    """Build a CONNECT packet.

    ``will`` = {"topic": str, "payload": bytes, "qos": int, "retain": bool,
    "properties": dict (v5 only)}.
    """
    if protocol_name is None:
        protocol_name = "MQIsdp" if version == MQTT31 else "MQTT"
    flags = 0
    if clean:
        flags |= 0x02
    if will is not None:
        flags |= 0x04 | ((will.get("qos", 0) & 3) << 3)
        if will.get("retain"):
            flags |= 0x20
    if password is not None:
        flags |= 0x40
    if username is not None:
        flags |= 0x80
    if reserved_flag:
        flags |= 0x01
    vh = enc_str(protocol_name) + bytes([version, flags]) + enc_u16(keepalive)
    if version == MQTT5:
        vh += enc_properties(properties)
    payload = enc_str(client_id)
    if will is not None:
        if version == MQTT5:
            payload += enc_properties(will.get("properties"))
        wp = will.get("payload", b"")
        payload += enc_str(will["topic"]) + enc_bin(wp.encode() if isinstance(wp, str) else wp)
    if username is not None:
        payload += enc_str(username)
    if password is not None:
        payload += enc_bin(password)
    return fixed_header(CONNECT, 0, vh + payload)


def publish(topic: str | bytes, payload: bytes = b"", qos: int = 0, pid: int | None = None,
            retain: bool = False, dup: bool = False, version: int = MQTT311,
            properties: dict | None = None) -> bytes:
    if isinstance(payload, str):
        payload = payload.encode()
    flags = (int(dup) << 3) | ((qos & 3) << 1) | int(retain)
    vh = enc_str(topic)
    if qos > 0:
        vh += enc_u16(pid if pid is not None else 1)
    if version == MQTT5:
        vh += enc_properties(properties)
    return fixed_header(PUBLISH, flags, vh + payload)


def _ack(ptype: int, flags: int, pid: int, version: int, rc: int, properties: dict | None) -> bytes:
    body = enc_u16(pid)
    if version == MQTT5 and (rc != 0 or properties):
        body += bytes([rc])
        if properties:
            body += enc_properties(properties)
    return fixed_header(ptype, flags, body)


def puback(pid: int, version: int = MQTT311, rc: int = 0, properties: dict | None = None) -> bytes:
    return _ack(PUBACK, 0, pid, version, rc, properties)


def pubrec(pid: int, version: int = MQTT311, rc: int = 0, properties: dict | None = None) -> bytes:
    return _ack(PUBREC, 0, pid, version, rc, properties)


def pubrel(pid: int, version: int = MQTT311, rc: int = 0, properties: dict | None = None) -> bytes:
    return _ack(PUBREL, 0x2, pid, version, rc, properties)


def pubcomp(pid: int, version: int = MQTT311, rc: int = 0, properties: dict | None = None) -> bytes:
    return _ack(PUBCOMP, 0, pid, version, rc, properties)


def subscribe(pid: int, topics: Iterable, version: int = MQTT311,
              properties: dict | None = None, flags: int = 0x2) -> bytes:
    """topics: iterable of (filter, options_byte). For v3 the options byte is the QoS.
    For v5: qos | no_local<<2 | retain_as_published<<3 | retain_handling<<4."""
    body = enc_u16(pid)
    if version == MQTT5:
        body += enc_properties(properties)
    for t, opts in topics:
        body += enc_str(t) + bytes([opts])
    return fixed_header(SUBSCRIBE, flags, body)


def sub_options(qos: int = 0, no_local: bool = False, rap: bool = False, rh: int = 0) -> int:
    return (qos & 3) | (int(no_local) << 2) | (int(rap) << 3) | ((rh & 3) << 4)


def unsubscribe(pid: int, topics: Iterable[str], version: int = MQTT311,
                properties: dict | None = None) -> bytes:
    body = enc_u16(pid)
    if version == MQTT5:
        body += enc_properties(properties)
    for t in topics:
        body += enc_str(t)
    return fixed_header(UNSUBSCRIBE, 0x2, body)


def pingreq() -> bytes:
    return b"\xc0\x00"


def disconnect(version: int = MQTT311, rc: int = 0, properties: dict | None = None) -> bytes:
    if version == MQTT5 and (rc != 0 or properties):
        body = bytes([rc]) + (enc_properties(properties) if properties else b"")
        return fixed_header(DISCONNECT, 0, body)
    return b"\xe0\x00"


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------
class Reader:
    def __init__(self, data: bytes):
        self.d = data
        self.i = 0

    def remaining(self) -> int:
        return len(self.d) - self.i

    def take(self, n: int) -> bytes:
        if self.i + n > len(self.d):
            raise MQTTProtocolError("truncated packet")
        b = self.d[self.i:self.i + n]
        self.i += n
        return b

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack("!H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack("!I", self.take(4))[0]

    def varint(self) -> int:
        mult, val = 1, 0
        for _ in range(4):
            b = self.u8()
            val += (b & 0x7F) * mult
            if not b & 0x80:
                return val
            mult *= 128
        raise MQTTProtocolError("varint too long")

    def bin(self) -> bytes:
        return self.take(self.u16())

    def str(self) -> str:
        return self.bin().decode("utf-8")

    def rest(self) -> bytes:
        return self.take(self.remaining())


def dec_properties(r: Reader) -> dict:
    length = r.varint()
    sub = Reader(r.take(length))
    props: dict = {}
    while sub.remaining():
        pid = sub.varint()
        if pid not in PROPERTIES:
            raise MQTTProtocolError(f"unknown property 0x{pid:02x}")
        name, kind = PROPERTIES[pid]
        if kind == "byte":
            v = sub.u8()
        elif kind == "u16":
            v = sub.u16()
        elif kind == "u32":
            v = sub.u32()
        elif kind == "varint":
            v = sub.varint()
        elif kind == "str":
            v = sub.str()
        elif kind == "bin":
            v = sub.bin()
        else:
            v = (sub.str(), sub.str())
        if name in MULTI:
            props.setdefault(name, []).append(v)
        else:
            if name in props:
                raise MQTTProtocolError(f"duplicate property {name}")
            props[name] = v
    return props


class Packet:
    """A decoded packet. Common attributes: type, flags, body (raw), name.

    Depending on the type: rc, session_present, props, pid, topic, payload,
    qos, dup, retain, codes (SUBACK/UNSUBACK reason codes)."""

    def __init__(self, ptype: int, flags: int, body: bytes, version: int):
        self.type = ptype
        self.flags = flags
        self.body = body
        self.version = version
        self.name = PACKET_NAMES.get(ptype, f"?{ptype}")
        self.props: dict = {}
        self.rc = 0
        self.pid = None
        self._decode()

    def _decode(self):
        r = Reader(self.body)
        v5 = self.version == MQTT5
        t = self.type
        if t == CONNACK:
            self.session_present = bool(r.u8() & 1)
            self.rc = r.u8()
            if v5 and r.remaining():
                self.props = dec_properties(r)
        elif t == PUBLISH:
            self.dup = bool(self.flags & 0x8)
            self.qos = (self.flags >> 1) & 3
            self.retain = bool(self.flags & 1)
            self.topic = r.str()
            if self.qos > 0:
                self.pid = r.u16()
            if v5:
                self.props = dec_properties(r)
            self.payload = r.rest()
        elif t in (PUBACK, PUBREC, PUBREL, PUBCOMP):
            self.pid = r.u16()
            if v5 and r.remaining():
                self.rc = r.u8()
                if r.remaining():
                    self.props = dec_properties(r)
        elif t in (SUBACK, UNSUBACK):
            self.pid = r.u16()
            if v5:
                self.props = dec_properties(r)
            self.codes = list(r.rest())
        elif t == DISCONNECT:
            if r.remaining():
                self.rc = r.u8()
                if r.remaining():
                    self.props = dec_properties(r)
        # PINGRESP / AUTH: nothing needed

    def __repr__(self):
        extra = ""
        if self.type == PUBLISH:
            extra = f" topic={self.topic!r} qos={self.qos} pid={self.pid} dup={self.dup} retain={self.retain} payload={self.payload[:40]!r}"
        elif self.type in (CONNACK, DISCONNECT):
            extra = f" rc=0x{self.rc:02x}"
        elif self.type in (SUBACK, UNSUBACK):
            extra = f" pid={self.pid} codes={self.codes}"
        elif self.pid is not None:
            extra = f" pid={self.pid} rc=0x{self.rc:02x}"
        if self.props:
            extra += f" props={self.props}"
        return f"<{self.name}{extra}>"


# ---------------------------------------------------------------------------
# Socket client
# ---------------------------------------------------------------------------
class RawClient:
    """Blocking socket with an MQTT packet reader. Not thread safe."""

    def __init__(self, port: int, host: str = "127.0.0.1", version: int = MQTT311,
                 timeout: float = 5.0):
        self.version = version
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.closed = False
        self.aliases: dict[int, str] = {}  # inbound topic aliases (broker -> us)
        self.pending: list[Packet] = []    # packets read by is_open() for later recv()

    # -- low level ---------------------------------------------------------
    def send(self, data: bytes):
        self.sock.sendall(data)

    def _try_parse(self) -> Packet | None:
        buf = self.buf
        if len(buf) < 2:
            return None
        mult, length, i = 1, 0, 1
        while True:
            if i >= len(buf):
                return None
            b = buf[i]
            length += (b & 0x7F) * mult
            i += 1
            if not b & 0x80:
                break
            mult *= 128
            if i > 4:
                raise MQTTProtocolError("remaining length too long")
        if len(buf) < i + length:
            return None
        first = buf[0]
        body = bytes(buf[i:i + length])
        del buf[:i + length]
        pkt = Packet(first >> 4, first & 0x0F, body, self.version)
        if pkt.type == PUBLISH and "TopicAlias" in pkt.props:
            alias = pkt.props["TopicAlias"]
            if pkt.topic:
                self.aliases[alias] = pkt.topic
            else:
                pkt.topic = self.aliases.get(alias, "")
        return pkt

    def recv(self, timeout: float = 5.0) -> Packet:
        """Next packet. Raises Timeout or ConnectionClosed."""
        if self.pending:
            return self.pending.pop(0)
        return self._recv_wire(timeout)

    def _recv_wire(self, timeout: float) -> Packet:
        deadline = time.monotonic() + timeout
        while True:
            pkt = self._try_parse()
            if pkt is not None:
                return pkt
            if self.closed:
                raise ConnectionClosed()
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout()
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise Timeout() from None
            except (ConnectionResetError, BrokenPipeError, OSError):
                data = b""
            if not data:
                self.closed = True
                # a partially received packet is lost
                continue
            self.buf += data

    def try_recv(self, timeout: float = 0.5) -> Packet | None:
        """Next packet or None on timeout/close."""
        try:
            return self.recv(timeout)
        except (Timeout, ConnectionClosed):
            return None

    def expect(self, ptype: int, timeout: float = 5.0, skip: Iterable[int] = (PINGRESP,)) -> Packet:
        """Wait for a packet of ``ptype`` (skipping the types in ``skip``)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout(f"no {PACKET_NAMES[ptype]} within {timeout}s")
            p = self.recv(left)
            if p.type == ptype:
                return p
            if p.type in skip:
                continue
            raise AssertionError(f"expected {PACKET_NAMES[ptype]}, got {p!r}")

    def collect(self, timeout: float) -> list[Packet]:
        """All packets that arrive within ``timeout`` (stops early on close)."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            try:
                out.append(self.recv(left))
            except Timeout:
                return out
            except ConnectionClosed:
                return out

    def wait_closed(self, timeout: float = 5.0) -> tuple[bool, list[Packet]]:
        """Wait until the broker closes the connection.
        Returns (closed, packets received meanwhile)."""
        pkts = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False, pkts
            try:
                pkts.append(self.recv(left))
            except Timeout:
                return False, pkts
            except ConnectionClosed:
                return True, pkts
            except MQTTProtocolError:
                pkts.append(None)

    def is_open(self, timeout: float = 0.5) -> bool:
        """True if a PINGREQ is answered within ``timeout``. Other packets
        read meanwhile are kept for the next recv()."""
        try:
            self.send(pingreq())
        except OSError:
            return False
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                p = self._recv_wire(left)
            except (Timeout, ConnectionClosed):
                return False
            if p.type == PINGRESP:
                return True
            self.pending.append(p)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed = True

    # -- conveniences ------------------------------------------------------
    def connect(self, client_id: str = "", **kw) -> Packet:
        """Send CONNECT and return the CONNACK (raises if closed instead)."""
        kw.setdefault("version", self.version)
        self.send(connect(client_id, **kw))
        return self.expect(CONNACK)

    def publish(self, topic, payload=b"", qos=0, pid=None, retain=False, dup=False,
                properties=None, wait_ack=True, timeout: float = 5.0) -> Packet | None:
        """Publish; for QoS 1 waits for PUBACK, for QoS 2 runs the whole
        PUBREC/PUBREL/PUBCOMP exchange (when wait_ack)."""
        if qos and pid is None:
            pid = self._next_pid()
        self.send(publish(topic, payload, qos, pid, retain, dup, self.version, properties))
        if not wait_ack or qos == 0:
            return None
        if qos == 1:
            return self.expect(PUBACK, timeout)
        rec = self.expect(PUBREC, timeout)
        assert rec.pid == pid, rec
        self.send(pubrel(pid, self.version))
        return self.expect(PUBCOMP, timeout)

    def subscribe(self, topics, properties=None, pid=None, timeout: float = 5.0) -> Packet:
        """topics: list of (filter, options) or a single filter string (QoS 0)."""
        if isinstance(topics, str):
            topics = [(topics, 0)]
        pid = pid or self._next_pid()
        self.send(subscribe(pid, topics, self.version, properties))
        return self.expect(SUBACK, timeout)

    def unsubscribe(self, topics, properties=None, timeout: float = 5.0) -> Packet:
        if isinstance(topics, str):
            topics = [topics]
        pid = self._next_pid()
        self.send(unsubscribe(pid, topics, self.version, properties))
        return self.expect(UNSUBACK, timeout)

    def ack(self, pkt: Packet):
        """Acknowledge an inbound PUBLISH (QoS 1: PUBACK; QoS 2: PUBREC,
        wait PUBREL, PUBCOMP)."""
        if pkt.qos == 1:
            self.send(puback(pkt.pid, self.version))
        elif pkt.qos == 2:
            self.send(pubrec(pkt.pid, self.version))
            rel = self.expect(PUBREL)
            assert rel.pid == pkt.pid
            self.send(pubcomp(pkt.pid, self.version))

    def disconnect(self, rc: int = 0, properties=None):
        try:
            self.send(disconnect(self.version, rc, properties))
        except OSError:
            pass
        self.close()

    _pid = 0

    def _next_pid(self) -> int:
        self._pid = self._pid % 65535 + 1
        return self._pid
