"""One SMTP session to one address: banner, EHLO, STARTTLS, TLS handshake, presented chain, QUIT.

Timeouts (all derived from one base value `S`, `--smtp-timeout`, default 10 s):

===============  =========  =====================================================================
step             timeout    why
===============  =========  =====================================================================
connect          S          a TCP connect that has not completed in S seconds will not
banner           2 × S      servers greet slowly on purpose (Postfix postscreen's greet pause)
each command     S          EHLO, STARTTLS: one reply each; sending QUIT
TLS handshake    S          after the 220 to STARTTLS
whole session    5 × S      a hard ceiling on one session, however the server dribbles
===============  =========  =====================================================================

QUIT is sent but its 221 is not awaited: nothing the checks judge comes after it, and waiting
would add one round trip to every session (and so to every wave of the TLS sweep). The probe
hands QUIT to the connection, then closes its side at once: a TCP FIN after a plain session,
the TLS close_notify and then the FIN after a TLS one (RFC 8446 §6.1 lets a side close without
waiting for the peer's close_notify). The server reads QUIT before our end of stream, so it
sees a client that said goodbye; its 221 meets a closed socket. `quit_ok` therefore says that
QUIT was sent cleanly (written and flushed on an open connection), not that a 221 came back.
Our socket is closed before the per-address slot is released; the server may still be ending
that session (sending its 221) when the next one connects.

With the default S = 10 s: connect 10 s, banner 20 s, command 10 s, TLS 10 s, session 50 s.
The TLS sweep (`probes/tls.py`: 4 versions + 5 weak-cipher classes, each its own session) runs
only after a successful main session and is bounded as a whole by one more session deadline (5 × S),
and a session the server hung up on during the TLS handshake is tried once more (another 5 × S),
so one address costs at most 15 × S (150 s by default), which the check deadline allows for
(`mecsa.observe.deadline`).

Bounds besides time: a reply line may be at most `MAX_LINE` octets (RFC 5321 §4.5.3.1.5 allows 512;
we allow more but never buffer an endless line) and a reply at most `MAX_REPLY_LINES` lines.
At most `PER_ADDRESS_CONNECTIONS` sessions run at once against one IP address (`ConnectionLimits`).

The probe never verifies the certificate: it records everything it is shown, and the x509 and
DANE evaluators judge it. Every step's result is kept even when a later step fails.

No OCSP staple is asked for: that needs the status_request extension in the ClientHello (RFC 6066
§8), which Python's ssl module can neither send nor read the answer of, and no library on the
project's list can do it over asyncio streams. x509 asks the AIA responder instead
(`observe/revocation.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import ipaddress
import socket
import ssl
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

MAX_LINE = 4096
MAX_REPLY_LINES = 64
PER_ADDRESS_CONNECTIONS = 2
DEFAULT_EHLO_NAME = "mecsa-probe.invalid"
_CLOSE_TIMEOUT = 1.0


@dataclass(frozen=True, slots=True)
class SmtpTimeouts:
    """The bounded waits of one session, in seconds (see the module docstring)."""

    connect: float
    banner: float
    command: float
    tls: float
    session: float

    @classmethod
    def from_base(cls, base: float) -> SmtpTimeouts:
        """Derive every timeout from the one base value the user sets with `--smtp-timeout`."""
        return cls(connect=base, banner=2 * base, command=base, tls=base, session=5 * base)


class Stage(StrEnum):
    """The steps of a session, in order; a failure names the step it happened at."""

    CONNECT = "connect"
    BANNER = "banner"
    EHLO = "ehlo"
    STARTTLS = "starttls"
    TLS = "tls"
    EHLO_TLS = "ehlo_after_tls"
    QUIT = "quit"


class Failure(StrEnum):
    """Why a step failed."""

    TIMEOUT = "timeout"
    NETWORK = "network"  # refused, unreachable, reset before anything was said
    CLOSED = "closed"  # the server hung up mid-session
    PROTOCOL = "protocol"  # not an SMTP reply: garbage, bad syntax, too many lines
    LINE_TOO_LONG = "line_too_long"
    REJECTED = "rejected"  # a well-formed reply with an unexpected code (554 banner, 454 to STARTTLS)
    HANDSHAKE = "handshake"  # the TLS handshake failed (alert, EOF, bad record)


@dataclass(frozen=True, slots=True)
class SmtpReply:
    """One (possibly multi-line) reply: the code and the text of each line after the code."""

    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return " / ".join(line for line in self.lines if line)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "lines": list(self.lines)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SmtpReply:
        return cls(int(data["code"]), tuple(str(line) for line in data["lines"]))


@dataclass(frozen=True, slots=True)
class TlsSession:
    """What the TLS handshake negotiated, and the certificates the server presented (DER, leaf first).

    `full_chain` is False when only the leaf could be read (see `_presented_chain`). `presented` is
    set only on a session rebuilt from a stored document (`from_json`), which keeps how many
    certificates were presented but not their DER: its `chain` is then empty.
    """

    version: str
    cipher: str
    cipher_bits: int | None
    chain: tuple[bytes, ...]
    full_chain: bool
    presented: int | None = None

    @property
    def certificates(self) -> int:
        """How many certificates the server presented."""
        return len(self.chain) if self.presented is None else self.presented

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "cipher": self.cipher,
            "cipher_bits": self.cipher_bits,
            "certificates": self.certificates,
            "full_chain": self.full_chain,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TlsSession:
        """The session as the document keeps it: no DER, so `chain` is empty and `presented` counts it."""
        bits = data["cipher_bits"]
        return cls(
            str(data["version"]),
            str(data["cipher"]),
            None if bits is None else int(bits),
            (),
            bool(data["full_chain"]),
            int(data["certificates"]),
        )


def _extensions(reply: SmtpReply | None) -> tuple[str, ...]:
    # The first EHLO line is the greeting; each later line is "KEYWORD [params]" (RFC 5321 §4.1.1.1).
    if reply is None or reply.code != 250:
        return ()
    return tuple(line.strip() for line in reply.lines[1:] if line.strip())


def _keywords(extensions: tuple[str, ...]) -> frozenset[str]:
    return frozenset(ext.split()[0].upper() for ext in extensions)


@dataclass(frozen=True, slots=True)
class SmtpObservation:
    """Everything one session saw. Fields stay None for the steps it never reached."""

    host: str
    address: str
    port: int
    connected: bool = False
    banner: SmtpReply | None = None
    ehlo: SmtpReply | None = None
    starttls: SmtpReply | None = None
    tls: TlsSession | None = None
    ehlo_tls: SmtpReply | None = None
    quit_ok: bool = False
    failed_stage: Stage | None = None
    failure: Failure | None = None
    reason: str | None = None
    elapsed_s: float = 0.0

    @property
    def extensions(self) -> tuple[str, ...]:
        """The EHLO extensions before STARTTLS, as sent (keyword and parameters)."""
        return _extensions(self.ehlo)

    @property
    def extensions_tls(self) -> tuple[str, ...]:
        """The EHLO extensions after STARTTLS (REQUIRETLS, RFC 8689, is only offered there)."""
        return _extensions(self.ehlo_tls)

    @property
    def keywords(self) -> frozenset[str]:
        return _keywords(self.extensions)

    @property
    def reachable(self) -> bool:
        """True when the session got far enough to judge STARTTLS: a 220 banner and a 250 to EHLO."""
        return self.ehlo is not None and self.ehlo.code == 250

    @property
    def starttls_offered(self) -> bool | None:
        """Whether EHLO listed STARTTLS; None when the session never got an EHLO answer."""
        return "STARTTLS" in self.keywords if self.reachable else None

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "address": self.address,
            "port": self.port,
            "connected": self.connected,
            "banner": self.banner.to_json() if self.banner else None,
            "extensions": list(self.extensions),
            "starttls_offered": self.starttls_offered,
            "starttls_reply": self.starttls.to_json() if self.starttls else None,
            "tls": self.tls.to_json() if self.tls else None,
            "extensions_after_tls": list(self.extensions_tls),
            "quit_ok": self.quit_ok,
            "failed_stage": self.failed_stage.value if self.failed_stage else None,
            "failure": self.failure.value if self.failure else None,
            "reason": self.reason,
            "elapsed_s": round(self.elapsed_s, 3),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SmtpObservation:
        """The session as the document keeps it (`to_json(from_json(d)) == d`).

        Not kept, so not recovered: the EHLO greeting line (the replies are rebuilt as a 250 with an
        empty greeting and the extensions), an EHLO reply other than 250 (then `ehlo` is None), the
        DER of the presented chain (see `TlsSession.from_json`) and the time beyond milliseconds.
        """

        def reply(value: Any) -> SmtpReply | None:
            return None if value is None else SmtpReply.from_json(value)

        def ehlo(extensions: Any, answered: bool) -> SmtpReply | None:
            return SmtpReply(250, ("", *(str(e) for e in extensions))) if answered else None

        stage, failure, reason, tls = data["failed_stage"], data["failure"], data["reason"], data["tls"]
        after_tls = data["extensions_after_tls"]
        return cls(
            host=str(data["host"]),
            address=str(data["address"]),
            port=int(data["port"]),
            connected=bool(data["connected"]),
            banner=reply(data["banner"]),
            ehlo=ehlo(data["extensions"], data["starttls_offered"] is not None),
            starttls=reply(data["starttls_reply"]),
            tls=None if tls is None else TlsSession.from_json(tls),
            ehlo_tls=ehlo(after_tls, bool(after_tls)),
            quit_ok=bool(data["quit_ok"]),
            failed_stage=None if stage is None else Stage(stage),
            failure=None if failure is None else Failure(failure),
            reason=None if reason is None else str(reason),
            elapsed_s=float(data["elapsed_s"]),
        )


class ConnectionLimits:
    """At most `per_address` simultaneous SMTP sessions per IP address. One per assessment."""

    def __init__(self, per_address: int = PER_ADDRESS_CONNECTIONS) -> None:
        self.per_address = per_address
        self._slots: dict[str, asyncio.Semaphore] = {}

    def slot(self, address: str) -> asyncio.Semaphore:
        key = ipaddress.ip_address(address).compressed if _is_ip(address) else address
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = asyncio.Semaphore(self.per_address)
        return slot


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


_TLS_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


@functools.lru_cache(maxsize=32)
def probe_context(minimum: str = "TLSv1", maximum: str = "TLSv1.3", ciphers: str = "ALL") -> ssl.SSLContext:
    """A client context that verifies nothing, so that every server can be recorded.

    Cached per process: a context is configuration, never mutated after this function. SECLEVEL=0
    lets OpenSSL offer TLS 1.0/1.1 and weak suites, which the sweep needs to test for.
    Raises ssl.SSLError when the local OpenSSL cannot offer `ciphers` at all.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers(f"{ciphers}:@SECLEVEL=0")
    with warnings.catch_warnings():
        # ssl warns that TLS 1.0/1.1 are deprecated: testing whether a server still accepts them is the point.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = _TLS_VERSIONS[minimum]
        context.maximum_version = _TLS_VERSIONS[maximum]
    return context


def _presented_chain(ssl_object: ssl.SSLObject) -> tuple[tuple[bytes, ...], bool]:
    """The certificates the server sent, leaf first, as DER; and whether that is the whole chain.

    Python 3.13 has a public `get_unverified_chain()`. On 3.11/3.12 it exists only on the private
    `_sslobj`, so use it when present; otherwise fall back to `getpeercert(binary_form=True)`,
    which gives the leaf only (then `full_chain` is False and chain validation says so).
    """
    getter = getattr(ssl_object, "get_unverified_chain", None)
    if getter is None:
        getter = getattr(getattr(ssl_object, "_sslobj", None), "get_unverified_chain", None)
    if getter is not None:
        try:
            certs = getter() or []
            chain = tuple(
                c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
                for c in certs
            )
            if chain:
                return chain, True
        except (AttributeError, ValueError, ssl.SSLError):
            pass
    leaf = ssl_object.getpeercert(binary_form=True)
    return ((leaf,) if leaf else ()), False


def _describe(exc: BaseException) -> str:
    """The exception as text, never empty (a bare ConnectionResetError() prints as '')."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _StepError(Exception):
    def __init__(self, failure: Failure, reason: str) -> None:
        super().__init__(reason)
        self.failure = failure
        self.reason = reason


@dataclass
class _Progress:
    """The mutable draft of an SmtpObservation while the session runs."""

    host: str
    address: str
    port: int
    stage: Stage = Stage.CONNECT
    connected: bool = False
    banner: SmtpReply | None = None
    ehlo: SmtpReply | None = None
    starttls: SmtpReply | None = None
    tls: TlsSession | None = None
    ehlo_tls: SmtpReply | None = None
    quit_ok: bool = False
    failed: tuple[Stage, Failure, str] | None = None
    writer: asyncio.StreamWriter | None = None
    started: float = field(default_factory=time.monotonic)
    on_tls: Callable[[TlsSession], None] | None = None  # told the handshake's outcome at once

    def freeze(self) -> SmtpObservation:
        stage, failure, reason = self.failed if self.failed else (None, None, None)
        return SmtpObservation(
            self.host, self.address, self.port, self.connected, self.banner, self.ehlo,
            self.starttls, self.tls, self.ehlo_tls, self.quit_ok, stage, failure, reason,
            time.monotonic() - self.started,
        )  # fmt: skip


async def _read_reply(reader: asyncio.StreamReader, wait: float) -> SmtpReply:
    """Read one reply; multi-line replies are `ddd-text` lines ended by a `ddd text` line."""
    lines: list[str] = []
    code: int | None = None
    try:
        async with asyncio.timeout(wait):
            while True:
                try:
                    raw = await reader.readuntil(b"\n")
                except asyncio.LimitOverrunError:
                    why = f"reply line longer than {MAX_LINE} octets"
                    raise _StepError(Failure.LINE_TOO_LONG, why) from None
                except asyncio.IncompleteReadError as exc:
                    why = "the server closed the connection"
                    raise _StepError(Failure.CLOSED, why + (" mid-line" if exc.partial else "")) from None
                line = raw.rstrip(b"\r\n").decode("utf-8", errors="replace")
                if len(line) < 3 or not line[:3].isdigit() or (len(line) > 3 and line[3] not in "- "):
                    raise _StepError(Failure.PROTOCOL, f"not an SMTP reply: {line[:80]!r}")
                this_code = int(line[:3])
                if code is not None and this_code != code:
                    why = f"reply code changed mid-reply: {code} then {this_code}"
                    raise _StepError(Failure.PROTOCOL, why)
                code = this_code
                lines.append(line[4:])
                if len(line) == 3 or line[3] == " ":
                    return SmtpReply(code, tuple(lines))
                if len(lines) >= MAX_REPLY_LINES:
                    raise _StepError(Failure.PROTOCOL, f"reply longer than {MAX_REPLY_LINES} lines")
    except TimeoutError:
        raise _StepError(Failure.TIMEOUT, f"no complete reply within {wait:g} s") from None
    except (ConnectionError, OSError) as exc:
        raise _StepError(Failure.CLOSED, f"connection lost: {exc}") from None


def _ack_promptly(writer: asyncio.StreamWriter) -> None:
    """Ask the kernel to acknowledge the server's next segments at once.

    Postfix keeps Nagle on and, under TLS 1.3, writes its session tickets after the handshake:
    its EHLO reply then waits until the client acknowledges a ticket, and a delayed ACK costs
    40 ms or more (measured 43 ms; tests/unit/transport/test_smtp_ack_stall.py). TCP_QUICKACK is
    Linux's and not sticky: sending a line re-enables delayed ACKs, so it is set again after each
    command is written. TCP_NODELAY (asyncio sets it too) keeps our own small lines from waiting.
    """
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if hasattr(socket, "TCP_QUICKACK"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


async def _command(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: str, wait: float
) -> SmtpReply:
    try:
        writer.write(line.encode("ascii") + b"\r\n")
        # After the write: sending data soon after receiving some puts Linux back into delayed-ACK
        # ("pingpong") mode, which is what TCP_QUICKACK takes it out of.
        _ack_promptly(writer)
        async with asyncio.timeout(wait):
            await writer.drain()
    except TimeoutError:
        raise _StepError(Failure.TIMEOUT, f"could not send {line.split()[0]} within {wait:g} s") from None
    except (ConnectionError, OSError) as exc:
        raise _StepError(Failure.CLOSED, f"connection lost: {exc}") from None
    return await _read_reply(reader, wait)


async def probe_smtp(
    host: str,
    address: str,
    port: int,
    *,
    timeouts: SmtpTimeouts,
    limits: ConnectionLimits | None = None,
    tls_context: ssl.SSLContext | None = None,
    ehlo_name: str = DEFAULT_EHLO_NAME,
    ehlo_after_tls: bool = True,
    retry_hangup: bool = True,
    on_tls: Callable[[TlsSession], None] | None = None,
) -> SmtpObservation:
    """Run one session against `address`, with SNI `host` (omitted when `host` is an IP literal).

    Never raises for anything the server does: the returned observation says how far it got.
    A server that hangs up during the TLS handshake is tried once more (unless `retry_hangup` is
    False), so that one dropped connection is not the whole answer.
    """
    args = (timeouts, limits, tls_context, ehlo_name, ehlo_after_tls, on_tls)
    first = await _probe_once(host, address, port, *args)
    if not (retry_hangup and first.failed_stage is Stage.TLS and first.failure is Failure.CLOSED):
        return first
    # A hang-up in the handshake may be a passing fault (a restart, a full accept queue): ask once
    # more on a fresh connection before reporting that it is unknown whether TLS works.
    again = await _probe_once(host, address, port, *args)
    if again.failed_stage is Stage.TLS and again.failure is Failure.CLOSED:
        return dataclasses.replace(again, reason=f"{again.reason}, and again on one retry")
    return again


async def _probe_once(
    host: str,
    address: str,
    port: int,
    timeouts: SmtpTimeouts,
    limits: ConnectionLimits | None,
    tls_context: ssl.SSLContext | None,
    ehlo_name: str,
    ehlo_after_tls: bool,
    on_tls: Callable[[TlsSession], None] | None,
) -> SmtpObservation:
    progress = _Progress(host, address, port)
    progress.on_tls = on_tls
    slot = (limits or ConnectionLimits()).slot(address)
    async with slot:
        progress.started = time.monotonic()
        try:
            async with asyncio.timeout(timeouts.session):
                await _session(progress, timeouts, tls_context, ehlo_name, ehlo_after_tls)
        except _StepError as exc:
            progress.failed = (progress.stage, exc.failure, exc.reason)
        except TimeoutError:
            progress.failed = (
                progress.stage,
                Failure.TIMEOUT,
                f"the session did not finish within {timeouts.session:g} s",
            )
        finally:
            # The writer lives on the draft so that it is closed even when the deadline cut in.
            await _close(progress.writer, graceful=progress.failed is None)
    return progress.freeze()


async def _close(writer: asyncio.StreamWriter | None, *, graceful: bool) -> None:
    """Close our side without waiting for the server (see the module docstring on QUIT).

    `close()` hands the TCP FIN, or the TLS close_notify, to the kernel right after QUIT; the
    `abort()` that follows then drops the socket instead of waiting a round trip for the server's
    close_notify (on a plain session whose data has left, it changes nothing). A failed session
    owes the server nothing and is only aborted, without waiting: after a cut-off TLS handshake
    the stream no longer hears of the socket's end. The socket is closed before the per-address
    slot is released, so the limit counts every connection that is open.
    """
    if writer is None:
        return
    if not graceful:
        writer.transport.abort()
        return
    writer.close()
    writer.transport.abort()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(_CLOSE_TIMEOUT):
            await writer.wait_closed()


async def _session(
    progress: _Progress,
    timeouts: SmtpTimeouts,
    tls_context: ssl.SSLContext | None,
    ehlo_name: str,
    ehlo_after_tls: bool,
) -> None:
    progress.stage = Stage.CONNECT
    try:
        async with asyncio.timeout(timeouts.connect):
            reader, writer = await asyncio.open_connection(progress.address, progress.port, limit=MAX_LINE)
    except TimeoutError:
        raise _StepError(Failure.TIMEOUT, f"no TCP connection within {timeouts.connect:g} s") from None
    except OSError as exc:
        raise _StepError(Failure.NETWORK, f"could not connect: {exc.strerror or exc}") from None
    progress.writer = writer
    progress.connected = True
    _ack_promptly(writer)

    progress.stage = Stage.BANNER
    progress.banner = await _read_reply(reader, timeouts.banner)
    if progress.banner.code != 220:
        await _quit(progress, writer, timeouts)
        raise _StepError(Failure.REJECTED, f"the server greeted with {progress.banner.code}")

    progress.stage = Stage.EHLO
    progress.ehlo = await _command(reader, writer, f"EHLO {ehlo_name}", timeouts.command)
    if progress.ehlo.code != 250:
        await _quit(progress, writer, timeouts)
        raise _StepError(Failure.REJECTED, f"EHLO answered {progress.ehlo.code}")
    if "STARTTLS" not in _keywords(_extensions(progress.ehlo)):
        await _quit(progress, writer, timeouts)
        return

    progress.stage = Stage.STARTTLS
    progress.starttls = await _command(reader, writer, "STARTTLS", timeouts.command)
    if progress.starttls.code != 220:
        await _quit(progress, writer, timeouts)
        raise _StepError(Failure.REJECTED, f"STARTTLS answered {progress.starttls.code}")

    progress.stage = Stage.TLS
    context = tls_context or probe_context()
    sni = None if _is_ip(progress.host) else progress.host
    try:
        # Our own deadline: asyncio's ssl_handshake_timeout reports as ConnectionAbortedError, which
        # would read as "the handshake failed" when it merely took too long. It stays as a backstop.
        async with asyncio.timeout(timeouts.tls):
            await writer.start_tls(context, server_hostname=sni, ssl_handshake_timeout=timeouts.tls + 1)
    except TimeoutError:
        why = f"the TLS handshake did not finish within {timeouts.tls:g} s"
        raise _StepError(Failure.TIMEOUT, why) from None
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionError, EOFError) as exc:
        # A reset or an end of stream is a hang-up, not a refusal: whether TLS works is unknown.
        why = f"the server hung up during the TLS handshake ({_describe(exc)})"
        raise _StepError(Failure.CLOSED, why) from None
    except ssl.SSLError as exc:
        # The peer spoke TLS and said no (an alert, a refused protocol version) or spoke no TLS.
        raise _StepError(Failure.HANDSHAKE, f"TLS handshake failed: {_describe(exc)}") from None
    except OSError as exc:
        raise _StepError(
            Failure.CLOSED, f"connection lost during the TLS handshake ({_describe(exc)})"
        ) from None
    _ack_promptly(writer)  # the session tickets arrive now (TLS 1.3)
    ssl_object = writer.get_extra_info("ssl_object")
    if ssl_object is None:  # pragma: no cover - start_tls returned without TLS: a bug, not the server
        raise _StepError(Failure.HANDSHAKE, "no TLS object after the handshake")
    chain, full = _presented_chain(ssl_object)
    name, _, bits = ssl_object.cipher() or ("", "", None)
    progress.tls = TlsSession(ssl_object.version() or "", name, bits, chain, full)
    if progress.on_tls is not None:
        progress.on_tls(progress.tls)  # the sweep picks its next offer from it (probes/tls.py)

    if ehlo_after_tls:
        progress.stage = Stage.EHLO_TLS
        progress.ehlo_tls = await _command(reader, writer, f"EHLO {ehlo_name}", timeouts.command)
    await _quit(progress, writer, timeouts)


async def _quit(progress: _Progress, writer: asyncio.StreamWriter, timeouts: SmtpTimeouts) -> None:
    """Say goodbye: send QUIT, bounded by the command timeout, without waiting for the 221.

    `quit_ok` is True when QUIT went out cleanly: the connection was still open, and the line
    was flushed out of the transport's buffer within the timeout (see the module docstring).
    """
    stage = progress.stage
    progress.stage = Stage.QUIT
    progress.quit_ok = False
    if not writer.transport.is_closing():
        try:
            writer.write(b"QUIT\r\n")
            async with asyncio.timeout(timeouts.command):
                await writer.drain()
            progress.quit_ok = writer.transport.get_write_buffer_size() == 0
        except (TimeoutError, ConnectionError, OSError):
            progress.quit_ok = False
    progress.stage = stage
