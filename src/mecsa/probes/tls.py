"""TLS grading by trial: which versions a server accepts, and whether it accepts weak cipher suites.

Each trial is its own short SMTP session (connect, EHLO, STARTTLS, handshake, QUIT) with a client
context that offers exactly one TLS version, or only one class of weak suites (on TLS 1.0-1.2;
TLS 1.3 has no weak suites). What the local OpenSSL cannot offer is reported as `not_tested`,
never as refused. Sessions obey the same timeouts and per-address connection limit as the main
probe; the whole sweep is also bounded by one session deadline.

A trial the main session has already answered is not run again: that session offered every
version and every suite, so the version it negotiated is proven accepted, and so is the weak
class of its suite when it negotiated one (`sweep_tls(..., known=...)`). Fewer sessions mean
fewer waves under the per-address connection limit.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mecsa.probes.smtp import (
    ConnectionLimits,
    Failure,
    SmtpObservation,
    SmtpTimeouts,
    Stage,
    TlsSession,
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


class TrialOutcome(StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"
    NOT_TESTED = "not_tested"  # the local OpenSSL cannot offer it
    ERROR = "error"  # the trial could not conclude (timeout, no STARTTLS this time, ...)


@dataclass(frozen=True, slots=True)
class TlsTrial:
    """One trial: what was offered, what came of it, and what was negotiated if anything."""

    label: str
    outcome: TrialOutcome
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

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TlsTrial:
        def text(key: str) -> str | None:
            value = data[key]
            return None if value is None else str(value)

        return cls(
            str(data["label"]), TrialOutcome(data["outcome"]), text("version"), text("cipher"), text("reason")
        )


@dataclass(frozen=True, slots=True)
class TlsSweep:
    versions: tuple[TlsTrial, ...]
    weak_ciphers: tuple[TlsTrial, ...]

    def accepted(self, trials: tuple[TlsTrial, ...]) -> tuple[str, ...]:
        return tuple(t.label for t in trials if t.outcome is TrialOutcome.ACCEPTED)

    def to_json(self) -> dict[str, Any]:
        return {
            "versions": [t.to_json() for t in self.versions],
            "weak_ciphers": [t.to_json() for t in self.weak_ciphers],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TlsSweep:
        return cls(
            tuple(TlsTrial.from_json(t) for t in data["versions"]),
            tuple(TlsTrial.from_json(t) for t in data["weak_ciphers"]),
        )


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
        return TlsTrial(label, TrialOutcome.ACCEPTED, session.tls.version, session.tls.cipher)
    # The main session already showed this server completes a handshake; hanging up on a ClientHello
    # that offers only this version or class is how some stacks refuse it, so it counts as refused.
    if session.failed_stage is Stage.TLS and session.failure in (Failure.HANDSHAKE, Failure.CLOSED):
        return TlsTrial(label, TrialOutcome.REFUSED, reason=session.reason)
    if session.reachable and not session.starttls_offered:
        return TlsTrial(label, TrialOutcome.ERROR, reason="STARTTLS was not offered in this session")
    stage = session.failed_stage.value if session.failed_stage else "?"
    return TlsTrial(label, TrialOutcome.ERROR, reason=f"{stage}: {session.reason}")


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
            label,
            TrialOutcome.NOT_TESTED,
            reason=f"the local OpenSSL ({ssl.OPENSSL_VERSION}) cannot offer it",
        )
    session = await probe_smtp(
        host, address, port, timeouts=timeouts, limits=limits, tls_context=context, ehlo_after_tls=False,
        retry_hangup=False,
    )  # fmt: skip
    return _judge(label, session)


_BELOW_TLS13 = frozenset({"TLSv1", "TLSv1.1", "TLSv1.2"})


@functools.lru_cache(maxsize=32)
def _suite_names(context: ssl.SSLContext) -> frozenset[str]:
    return frozenset(c["name"] for c in context.get_ciphers())


def answered_by(known: TlsSession | None, label: str, context: ssl.SSLContext | None) -> TlsTrial | None:
    """The trial `label` as the main session already answered it, or None when it must be run.

    A version trial is answered when that version was negotiated. A weak-class trial (TLS 1.0-1.2,
    the class's suites only) is answered when a suite of that class was negotiated on TLS 1.0-1.2;
    the version check keeps TLS 1.3 suites, which every context lists, out of it.
    """
    if known is None or context is None:
        return None
    if label in TLS_VERSIONS:
        proven = known.version == label
    else:
        proven = known.version in _BELOW_TLS13 and known.cipher in _suite_names(context)
    if not proven:
        return None
    return TlsTrial(
        label, TrialOutcome.ACCEPTED, known.version, known.cipher, "negotiated by the main session"
    )


# Trials that the main session answers only on a legacy server (one that prefers TLS 1.0/1.1 or
# a weak suite): they can run beside the main session, in the address's second slot (issue 20).
EARLY_LABELS: frozenset[str] = frozenset({"TLSv1", "TLSv1.1", *(name for name, _ in WEAK_CLASSES)})


def _plans() -> list[tuple[str, ssl.SSLContext | None]]:
    plans = [(v, trial_context(v, "ALL")) for v in TLS_VERSIONS]
    return plans + [(name, trial_context(None, spec)) for name, spec in WEAK_CLASSES]


async def early_trials(
    host: str, address: str, port: int, *, timeouts: SmtpTimeouts, limits: ConnectionLimits
) -> dict[str, TlsTrial]:
    """The `EARLY_LABELS` trials, started while the main session to `address` still runs.

    Politeness: the first trial runs alone; the others start only once it showed that the server
    speaks STARTTLS (accepted or refused, not an error), so a server without TLS sees one extra
    session, not five. All of them wait for the per-address limit like any session.
    """
    runnable = [(label, ctx) for label, ctx in _plans() if label in EARLY_LABELS and ctx is not None]
    if not runnable:
        return {}
    (first_label, first_ctx), rest = runnable[0], runnable[1:]
    first = await _trial(first_label, first_ctx, host, address, port, timeouts, limits)
    if first.outcome is TrialOutcome.ERROR:
        return {first_label: first}  # the sweep runs the rest if the main session proves TLS
    others = await asyncio.gather(
        *(_trial(label, ctx, host, address, port, timeouts, limits) for label, ctx in rest)
    )
    return {first_label: first, **{t.label: t for t in others}}


async def sweep_tls(
    host: str,
    address: str,
    port: int,
    *,
    timeouts: SmtpTimeouts,
    limits: ConnectionLimits,
    known: TlsSession | None = None,
    early: Awaitable[Mapping[str, TlsTrial]] | None = None,
) -> TlsSweep:
    """Try every TLS version and every weak-cipher class against one address.

    `known` is what the main session to this address negotiated: the trials it answers are
    reported from it and not run again (see `answered_by`). `early` gives the trials that ran
    beside the main session (`early_trials`); the ones it lacks, or that ended in an error, run here.
    """
    plans = _plans()
    answered: dict[str, TlsTrial | None] = {label: answered_by(known, label, ctx) for label, ctx in plans}

    def start(label: str, ctx: ssl.SSLContext | None) -> asyncio.Task[TlsTrial]:
        return asyncio.create_task(_trial(label, ctx, host, address, port, timeouts, limits))

    # The trials nothing ran yet start first, so that they take the slot the main session left.
    deferred = EARLY_LABELS if early is not None else frozenset()
    tasks = {
        label: start(label, ctx) for label, ctx in plans if answered[label] is None and label not in deferred
    }
    if early is not None:
        ran = await early
        for label, ctx in plans:
            if label not in deferred or answered[label] is not None:
                continue
            trial = ran.get(label)
            if trial is not None and trial.outcome is not TrialOutcome.ERROR:
                answered[label] = trial
            else:
                tasks[label] = start(label, ctx)
    done: set[asyncio.Task[TlsTrial]] = set()
    if tasks:
        done, pending = await asyncio.wait(tasks.values(), timeout=timeouts.session)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def result(label: str) -> TlsTrial:
        answer = answered[label]
        if answer is not None:
            return answer
        if tasks[label] in done:
            return tasks[label].result()
        return TlsTrial(label, TrialOutcome.ERROR, reason=f"the sweep ran out of its {timeouts.session:g} s")

    trials = [result(label) for label, _ in plans]
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
