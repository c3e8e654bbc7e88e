"""TLS grading by trial: which versions a server accepts, and whether it accepts weak cipher suites.

Each trial is its own short SMTP session (connect, EHLO, STARTTLS, handshake, QUIT) with a client
context that offers exactly one TLS version, or only one class of weak suites (on TLS 1.0-1.2;
TLS 1.3 has no weak suites). What the local OpenSSL cannot offer is reported as `not_tested`,
never as refused. Sessions obey the same timeouts and per-address connection limit as the main
probe; the whole sweep is also bounded by one session deadline.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mecsa.probes.smtp import (
    ConnectionLimits,
    Failure,
    SmtpObservation,
    SmtpTimeouts,
    Stage,
    probe_context,
    probe_smtp,
)

TLS_VERSIONS: tuple[str, ...] = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")

# Weak classes and the OpenSSL cipher strings that select exactly them.
WEAK_CLASSES: tuple[tuple[str, str], ...] = (
    ("NULL", "eNULL"),
    ("EXPORT", "EXP"),
    ("RC4", "RC4"),
    ("3DES", "3DES"),
    ("anonymous", "aNULL"),
)


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"
    NOT_TESTED = "not_tested"  # the local OpenSSL cannot offer it
    ERROR = "error"  # the trial could not conclude (timeout, no STARTTLS this time, ...)


@dataclass(frozen=True, slots=True)
class TlsTrial:
    """One trial: what was offered, what came of it, and what was negotiated if anything."""

    label: str
    outcome: Outcome
    version: str | None = None
    cipher: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "outcome": self.outcome.value,
            "version": self.version,
            "cipher": self.cipher,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class TlsSweep:
    versions: tuple[TlsTrial, ...]
    weak_ciphers: tuple[TlsTrial, ...]

    def accepted(self, trials: tuple[TlsTrial, ...]) -> tuple[str, ...]:
        return tuple(t.label for t in trials if t.outcome is Outcome.ACCEPTED)

    def to_json(self) -> dict[str, Any]:
        return {
            "versions": [t.to_json() for t in self.versions],
            "weak_ciphers": [t.to_json() for t in self.weak_ciphers],
        }


@functools.lru_cache(maxsize=32)
def trial_context(version: str | None, ciphers: str) -> ssl.SSLContext | None:
    """A context offering only `version` (or TLS 1.0-1.2 when None) and `ciphers`; None if impossible here.

    Whether OpenSSL would really send such a ClientHello is learnt by starting a handshake in
    memory: a ClientHello written means yes, an SSLError (no protocols/ciphers) means no.
    """
    low, high = (version, version) if version else ("TLSv1", "TLSv1.2")
    try:
        context = probe_context(low, high, ciphers)
        hello = context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="probe.invalid")
        hello.do_handshake()
    except ssl.SSLWantReadError:
        return context
    except (ssl.SSLError, ValueError):
        return None
    return context  # pragma: no cover - a handshake cannot complete without a peer


def _judge(label: str, session: SmtpObservation) -> TlsTrial:
    if session.tls is not None:
        return TlsTrial(label, Outcome.ACCEPTED, session.tls.version, session.tls.cipher)
    if session.failed_stage is Stage.TLS and session.failure is Failure.HANDSHAKE:
        return TlsTrial(label, Outcome.REFUSED, reason=session.reason)
    if session.reachable and not session.starttls_offered:
        return TlsTrial(label, Outcome.ERROR, reason="STARTTLS was not offered in this session")
    stage = session.failed_stage.value if session.failed_stage else "?"
    return TlsTrial(label, Outcome.ERROR, reason=f"{stage}: {session.reason}")


async def _trial(
    label: str,
    context: ssl.SSLContext | None,
    host: str,
    address: str,
    port: int,
    timeouts: SmtpTimeouts,
    limits: ConnectionLimits,
) -> TlsTrial:
    if context is None:
        return TlsTrial(
            label, Outcome.NOT_TESTED, reason=f"the local OpenSSL ({ssl.OPENSSL_VERSION}) cannot offer it"
        )
    session = await probe_smtp(
        host, address, port, timeouts=timeouts, limits=limits, tls_context=context, ehlo_after_tls=False
    )
    return _judge(label, session)


async def sweep_tls(
    host: str, address: str, port: int, *, timeouts: SmtpTimeouts, limits: ConnectionLimits
) -> TlsSweep:
    """Try every TLS version and every weak-cipher class against one address."""
    plans = [(v, trial_context(v, "ALL")) for v in TLS_VERSIONS]
    plans += [(name, trial_context(None, spec)) for name, spec in WEAK_CLASSES]
    tasks = [
        asyncio.ensure_future(_trial(label, ctx, host, address, port, timeouts, limits))
        for label, ctx in plans
    ]
    done, pending = await asyncio.wait(tasks, timeout=timeouts.session)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    trials = [
        task.result()
        if task in done
        else TlsTrial(label, Outcome.ERROR, reason=f"the sweep ran out of its {timeouts.session:g} s")
        for (label, _), task in zip(plans, tasks, strict=True)
    ]
    return TlsSweep(tuple(trials[: len(TLS_VERSIONS)]), tuple(trials[len(TLS_VERSIONS) :]))


@dataclass(frozen=True, slots=True)
class KeyExchange:
    """The key exchange as far as the negotiated suite tells it.

    Python's ssl module does not expose the negotiated group or DH size, so this says which kind
    of exchange happened (forward secret or not, authenticated or not), not its bit strength.
    """

    kind: str
    forward_secret: bool
    authenticated: bool


def key_exchange(version: str, cipher: str) -> KeyExchange:
    """Classify the key exchange of a negotiated suite (OpenSSL names)."""
    if version == "TLSv1.3" or cipher.startswith("TLS_"):
        return KeyExchange("ECDHE/DHE (TLS 1.3)", True, True)
    name = cipher.upper()
    if name.startswith(("AECDH", "ADH")):
        return KeyExchange("anonymous (EC)DH", True, False)
    if name.startswith("ECDHE"):
        return KeyExchange("ECDHE", True, True)
    if name.startswith(("DHE", "EDH")):
        return KeyExchange("DHE", True, True)
    if name.startswith(("ECDH-", "DH-")):
        return KeyExchange("static (EC)DH", False, True)
    if "PSK" in name or "SRP" in name:
        return KeyExchange("PSK/SRP", False, True)
    return KeyExchange("RSA key transport", False, True)
