"""One DNS question over UDP, with less set-up per question than `dns.asyncquery.udp` (issue 20).

dnspython builds a `Message` and renders it (name compression, an EDNS option object) for every
query, and opens a datagram transport with its protocol object per question. In a warm bulk
assessment that was a third of the CPU of each question. Here the query is written directly (a
header, the question and the OPT record: the same octets `dns.message.make_query(name, rdtype,
use_edns=0, payload=1232, want_dnssec=True)` renders, a unit test compares them), and the reply is
read from a plain non-blocking socket with the event loop's `sock_recvfrom`.

What is accepted as the reply is what `dns.asyncquery.udp(..., ignore_unexpected=True,
ignore_errors=True)` accepts: a datagram from another address, or with another ID or question, or
that does not parse, is dropped and the wait goes on until the timeout. Each question has its own
socket, so its own random source port (RFC 5452 §4.5), and a fresh random ID. A truncated reply
is for the caller to retry over TCP (`Truncated` is raised, as dnspython does).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import secrets
import socket
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from mecsa.dns import presend
from mecsa.dns.reply import parse_reply

_MAX_DATAGRAM = 65535
# rcodes with which a reply may leave the question out (as dnspython's `is_response` allows)
_OPCODE_BITS = 0x7800  # RFC 1035 §4.1.1
# Made non-blocking by socket() itself where the platform can (Linux): one system call fewer.
_NONBLOCK: int = getattr(socket, "SOCK_NONBLOCK", 0)
_NONBLOCKING_DATAGRAM = socket.SOCK_DGRAM | _NONBLOCK
_QR = int(dns.flags.QR)
_BARE_RCODES = frozenset({dns.rcode.FORMERR, dns.rcode.SERVFAIL, dns.rcode.NOTIMP, dns.rcode.REFUSED})


@dataclass(frozen=True, slots=True)
class Query:
    """One question as sent: its name, type, whether checking is disabled (CD), and its octets."""

    name: dns.name.Name
    rdtype: dns.rdatatype.RdataType
    wire: bytes

    @property
    def id(self) -> int:
        return int.from_bytes(self.wire[:2], "big")

    def message(self) -> dns.message.Message:
        """The query as a dnspython message (for the TCP retry of a truncated reply)."""
        return dns.message.from_wire(self.wire)

    def answered_by(self, reply: dns.message.Message) -> bool:
        """Whether `reply` is the response to this query (dnspython's `Message.is_response`)."""
        flags = int(reply.flags)  # plain int arithmetic: the Flag enum's operators are Python code
        if not flags & _QR or reply.id != self.id:
            return False
        if flags & _OPCODE_BITS:  # dns.opcode.from_flags(flags) != QUERY, which is 0
            return False
        if not reply.question:
            return reply.rcode() in _BARE_RCODES
        if len(reply.question) != 1:
            return False
        asked = reply.question[0]
        if asked.rdtype != self.rdtype or asked.rdclass != dns.rdataclass.IN:
            return False
        # The same octets are the same name; otherwise compare as DNS does, without case.
        return asked.name.labels == self.name.labels or asked.name == self.name


def make_query(name: dns.name.Name, rdtype: dns.rdatatype.RdataType, *, cd: bool = False) -> Query:
    """A recursive query (RD) for `name`/`rdtype` with EDNS0, a 1232-octet payload and DO set."""
    qname = b"".join(bytes((len(label),)) + label for label in name.labels)
    wire = secrets.randbits(16).to_bytes(2, "big") + presend.after_id(qname, rdtype, cd=cd)
    return Query(name, rdtype, wire)


@functools.lru_cache(maxsize=256)
def _endpoint(host: str) -> tuple[socket.AddressFamily, str]:
    """The socket family of a nameserver's address, and the address as the kernel reports a source."""
    address = ipaddress.ip_address(host)
    return (socket.AF_INET6 if address.version == 6 else socket.AF_INET), address.compressed


async def exchange(query: Query, host: str, port: int, wait: float) -> dns.message.Message:
    """Send `query` to `host`:`port` and wait up to `wait` seconds for its reply.

    Raises TimeoutError, OSError, or `dns.message.Truncated` (for a truncated reply to this query).
    """
    loop = asyncio.get_running_loop()
    family, compressed = _endpoint(host)
    expected = (compressed, port)
    early = presend.take(query.wire[2:], host, port)
    if early is not None:  # the CLI sent this very question before dnspython was imported
        sock, wire = early
        with sock:
            return await _reply(loop, sock, Query(query.name, query.rdtype, wire), expected, wait)
    with socket.socket(family, _NONBLOCKING_DATAGRAM) as sock:
        if not _NONBLOCK:
            sock.setblocking(False)
        try:
            sock.sendto(query.wire, (host, port))
        except (BlockingIOError, InterruptedError):  # the send buffer is full: wait for room
            return await _exchange_awaiting(loop, sock, query, (host, port), expected, wait)
        return await _reply(loop, sock, query, expected, wait)


async def _reply(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, query: Query, expected: tuple[str, int], wait: float
) -> dns.message.Message:
    """The reply to `query`, sent on `sock`, within `wait` seconds."""
    # The reply is read in a reader callback, with a timer for the deadline: what
    # `asyncio.timeout` around `sock_recvfrom` does, without a future, a timeout context and a
    # reader registration per datagram (a fifth of a warm question's CPU, issue 20).
    waiter: asyncio.Future[dns.message.Message] = loop.create_future()
    try:
        loop.add_reader(sock.fileno(), _on_readable, sock, query, expected, waiter)
    except NotImplementedError:  # an event loop without readers (Windows' proactor)
        return await _exchange_awaiting(loop, sock, query, None, expected, wait)
    timer = loop.call_later(wait, _expire, waiter)
    try:
        return await waiter
    finally:
        timer.cancel()
        loop.remove_reader(sock.fileno())


def _on_readable(
    sock: socket.socket, query: Query, expected: tuple[str, int], waiter: asyncio.Future[dns.message.Message]
) -> None:
    while not waiter.done():
        try:
            wire, source = sock.recvfrom(_MAX_DATAGRAM)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            waiter.set_exception(exc)
            return
        try:
            reply = _accepted(query, expected, wire, source)
        except dns.message.Truncated as exc:
            waiter.set_exception(exc)
            return
        if reply is not None:
            waiter.set_result(reply)


def _expire(waiter: asyncio.Future[dns.message.Message]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


async def _exchange_awaiting(
    loop: asyncio.AbstractEventLoop,
    sock: socket.socket,
    query: Query,
    unsent_to: tuple[str, int] | None,
    expected: tuple[str, int],
    wait: float,
) -> dns.message.Message:
    """The exchange with the loop's socket coroutines: the send still to make, if any, and the reply."""
    async with asyncio.timeout(wait):
        if unsent_to is not None:
            await loop.sock_sendto(sock, query.wire, unsent_to)
        while True:
            wire, source = await loop.sock_recvfrom(sock, _MAX_DATAGRAM)
            reply = _accepted(query, expected, wire, source)
            if reply is not None:
                return reply


def _accepted(
    query: Query, expected: tuple[str, int], wire: bytes, source: tuple[str, int]
) -> dns.message.Message | None:
    """The reply in `wire` if it is the one to `query`; None to drop the datagram and wait on."""
    if (source[0], source[1]) != expected or wire[:2] != query.wire[:2]:
        return None  # another sender, or another ID: not our reply
    try:
        reply = parse_reply(wire)
    except dns.message.Truncated as exc:
        if query.answered_by(exc.message()):  # type: ignore[no-untyped-call]
            raise
        return None
    except Exception:  # an unparsable datagram is dropped, as dnspython does
        return None
    return reply if query.answered_by(reply) else None
