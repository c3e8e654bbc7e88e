"""The CLI's first DNS questions, sent before dnspython and asyncio are imported (issue 20).

A cold `mecsa assess` spends ~100 ms importing asyncio and dnspython before its resolver can ask
anything. At real latency the MX question and the validation probe (the signed root's SOA), which
start the critical path, would wait for those imports and then a round trip more. Sent from here,
on plain sockets, their answers arrive while the imports run, and the resolver finds them waiting:
`mecsa.dns.udp.exchange`, asked the same question for the same server, takes the socket sent from
here (`take`) instead of sending again, and accepts the reply by the rules it applies to its own
questions. The question counts stay the same: only a question the resolver asks anyway is sent,
and it is sent once. A question nobody takes is closed by `discard`.

The octets are those of `udp.make_query`, which writes its queries with `after_id`. Only the
name's wire form is written here without dnspython (a unit test compares the octets), and only for
names of ASCII letters, digits, hyphens and underscores, as a normalised domain is; any other name
is not sent early, and the resolver asks it as before.
"""

from __future__ import annotations

import secrets
import socket
import struct
from collections.abc import Iterable

EDNS_PAYLOAD = 1232  # the DNS flag day 2020 size: no IP fragmentation on common paths
_RD, _CD = 0x0100, 0x0010  # RFC 1035 §4.1.1; RFC 4035 §3.2.2
# OPT pseudo-record (RFC 6891 §6.1.2): root owner, type 41, class = payload, TTL = version 0 + DO.
_OPT = b"\x00" + struct.pack("!HHIH", 41, EDNS_PAYLOAD, 0x8000, 0)
_NAME_OCTETS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")

# (query octets after the ID, server host, port) -> (socket, the query as sent)
_SENT: dict[tuple[bytes, str, int], tuple[socket.socket, bytes]] = {}


def after_id(qname: bytes, rdtype: int, *, cd: bool = False) -> bytes:
    """A recursive query (RD) for the wire-form `qname`, less its ID: one question of class IN,
    and EDNS0 with a 1232-octet payload and DO set. `udp.make_query` writes its queries with it."""
    flags = _RD | (_CD if cd else 0)
    return struct.pack("!HHHHH", flags, 1, 0, 0, 1) + qname + struct.pack("!HH", rdtype, 1) + _OPT


def question_octets(name: str, rdtype: int, *, cd: bool = False) -> bytes | None:
    """The query `udp.make_query` writes for `name`, less its ID; None for a name not written here."""
    labels = name.rstrip(".").split(".") if name not in ("", ".") else []
    qname = b""
    for label in labels:
        octets = label.encode("ascii", "replace")
        if not 0 < len(octets) < 64 or not _NAME_OCTETS.issuperset(octets):
            return None
        qname += bytes((len(octets),)) + octets
    qname += b"\x00"
    if len(qname) > 255:  # RFC 1035 §3.1
        return None
    return after_id(qname, rdtype, cd=cd)


def send_early(questions: Iterable[tuple[str, int, bool]], host: str, port: int) -> int:
    """Send each (name, type, CD) question to `host`:`port` now; how many went out.

    Nothing here raises: a question that cannot be sent is left for the resolver to ask."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sent = 0
    for name, rdtype, cd in questions:
        rest = question_octets(name, rdtype, cd=cd)
        if rest is None or (rest, host, port) in _SENT:
            continue
        wire = secrets.randbits(16).to_bytes(2, "big") + rest  # a fresh ID per question (RFC 5452)
        sock = socket.socket(family, socket.SOCK_DGRAM)  # its own random source port
        try:
            sock.setblocking(False)
            sock.sendto(wire, (host, port))
        except OSError:
            sock.close()
            continue
        _SENT[(rest, host, port)] = (sock, wire)
        sent += 1
    return sent


def take(rest: bytes, host: str, port: int) -> tuple[socket.socket, bytes] | None:
    """The socket and query sent early for this question and server, once; None if there is none."""
    if not _SENT:
        return None
    return _SENT.pop((rest, host, port), None)


def discard() -> None:
    """Close the sockets of questions sent early that nobody took."""
    while _SENT:
        _, (sock, _) = _SENT.popitem()
        sock.close()


def pending() -> int:
    return len(_SENT)
