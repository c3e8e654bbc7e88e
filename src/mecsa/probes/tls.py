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

Trials that can share a handshake do (`OFFERS`, issue 20): TLS 1.0 and 1.1 go out in one
ClientHello, and every weak class in another. A server picks the highest version it accepts
within the offered range, and one suite it accepts among those offered, or refuses: so a refusal
answers every trial of the offer, and an acceptance answers the one negotiated, after which the
rest are offered again. A modern server (TLS 1.2 and 1.3, no weak suite) is swept in three
sessions besides the main one, where one trial per version and class took five.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Awaitable, Collection, Mapping
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
    """The TLS versions and weak cipher classes an MX address was offered, each trial's outcome."""

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
    """A context offering only `version` (or TLS 1.0-1.2 when None) and `ciphers`; None if impossible here."""
    low, high = (version, version) if version else ("TLSv1", "TLSv1.2")
    return _offerable(low, high, ciphers)


@functools.lru_cache(maxsize=64)
def _offerable(low: str, high: str, ciphers: str) -> ssl.SSLContext | None:
    """A context offering versions `low`..`high` and `ciphers`; None if the local OpenSSL cannot.

    Whether OpenSSL would really send such a ClientHello is learnt by starting a handshake in
    memory: a ClientHello written means yes, an SSLError (no protocols/ciphers) means no.
    """
    try:
        context = probe_context(low, high, ciphers)
        hello = context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="probe.invalid")
        hello.do_handshake()
    except ssl.SSLWantReadError:
        return context
    except (ssl.SSLError, ValueError):
        return None
    return context  # pragma: no cover - a handshake cannot complete without a peer


def _single_context(label: str) -> ssl.SSLContext | None:
    return trial_context(label, "ALL") if label in TLS_VERSIONS else trial_context(None, _WEAK_SPECS[label])


_WEAK_SPECS = dict(WEAK_CLASSES)
_LABELS: tuple[str, ...] = (*TLS_VERSIONS, *_WEAK_SPECS)


@functools.lru_cache(maxsize=64)
def offer_context(labels: tuple[str, ...]) -> ssl.SSLContext | None:
    """One ClientHello that offers every trial of `labels` at once; None if it cannot be sent here.

    Versions must be neighbours (TLSv1 + TLSv1.1): the server answers with the highest it
    accepts, or refuses them all (RFC 5246 §7.4.1.2, RFC 8446 §4.2.1). Weak classes are offered
    together on TLS 1.0-1.2: the server picks one suite it accepts, or refuses every one.
    """
    if len(labels) == 1:
        return _single_context(labels[0])
    if all(label in TLS_VERSIONS for label in labels):
        index = sorted(TLS_VERSIONS.index(label) for label in labels)
        if index != list(range(index[0], index[-1] + 1)):
            return None
        return _offerable(TLS_VERSIONS[index[0]], TLS_VERSIONS[index[-1]], "ALL")
    if all(label in _WEAK_SPECS for label in labels):
        return trial_context(None, ":".join(_WEAK_SPECS[label] for label in labels))
    return None


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


def _proves(label: str, tls: TlsSession) -> bool:
    """Whether a handshake that negotiated `tls` shows that trial `label` would be accepted."""
    if label in TLS_VERSIONS:
        return tls.version == label
    context = _single_context(label)
    return context is not None and tls.version in _BELOW_TLS13 and tls.cipher in _suite_names(context)


def _judge_offer(labels: tuple[str, ...], session: SmtpObservation) -> dict[str, TlsTrial]:
    """The trials one handshake offering all of `labels` answered (the others are asked again)."""
    if len(labels) == 1:
        return {labels[0]: _judge(labels[0], session)}
    tls = session.tls
    if tls is not None:
        proven = {label: _judge(label, session) for label in labels if _proves(label, tls)}
        if proven:
            return proven
        why = f"negotiated {tls.version} {tls.cipher}, which the ClientHello did not offer"
        return {label: TlsTrial(label, TrialOutcome.ERROR, reason=why) for label in labels}
    # A refusal (or an error) answers each of them alike; the reason is the server's, as for one.
    return {label: _judge(label, session) for label in labels}


async def _offer(
    labels: tuple[str, ...],
    host: str,
    address: str,
    port: int,
    timeouts: SmtpTimeouts,
    limits: ConnectionLimits,
) -> dict[str, TlsTrial]:
    """Run the trials `labels` in as few handshakes as the protocol permits.

    One handshake offers them all. A refusal answers every one of them; an acceptance answers the
    version or the class negotiated, and the rest are offered again together, until none is left.
    A server that accepts none of them (the usual case) sees one session.
    """
    results: dict[str, TlsTrial] = {}
    remaining = labels
    while remaining:
        context = offer_context(remaining)
        if context is None and len(remaining) > 1:  # cannot be offered together here: one by one
            for label in remaining:
                results.update(await _offer((label,), host, address, port, timeouts, limits))
            return results
        if context is None:
            results[remaining[0]] = _not_tested(remaining[0])
            return results
        session = await probe_smtp(
            host, address, port, timeouts=timeouts, limits=limits, tls_context=context, ehlo_after_tls=False,
            retry_hangup=False,
        )  # fmt: skip
        answered = _judge_offer(remaining, session)  # never empty: each round answers one at least
        results.update(answered)
        remaining = tuple(label for label in remaining if label not in answered)
    return results


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


# The offers that go out together: the two old versions in one ClientHello, every weak class in
# another; TLSv1.2 and TLSv1.3 alone (the main session answers one of them). A modern server
# (TLS 1.2 and 1.3, no weak suite) is swept in three sessions besides the main one (issue 20).
OLD_VERSIONS: tuple[str, ...] = ("TLSv1", "TLSv1.1")
OFFERS: tuple[tuple[str, ...], ...] = (
    OLD_VERSIONS,
    ("TLSv1.2",),
    ("TLSv1.3",),
    tuple(name for name, _ in WEAK_CLASSES),
)
# The version trials, run in the address's second slot beside the main session: the old versions
# at once, then, as soon as the main session's handshake tells which version it negotiated, the
# one it did not (TLSv1.2 against a TLS 1.3 server). The weak classes go out in the slot the main
# session leaves. At 50 ms a round trip that order is the shorter path: an accepted TLS 1.2
# handshake takes two round trips, a refused offer one (benchmarks/README.md, issue 20).
EARLY_LABELS: frozenset[str] = frozenset(TLS_VERSIONS)


def _not_tested(label: str) -> TlsTrial:
    return TlsTrial(
        label, TrialOutcome.NOT_TESTED, reason=f"the local OpenSSL ({ssl.OPENSSL_VERSION}) cannot offer it"
    )


def _offers(wanted: Collection[str]) -> list[tuple[str, ...]]:
    """`OFFERS` narrowed to the trials in `wanted` that the local OpenSSL can offer at all."""
    narrowed = (
        tuple(label for label in offer if label in wanted and _single_context(label)) for offer in OFFERS
    )
    return [offer for offer in narrowed if offer]


async def early_trials(
    host: str,
    address: str,
    port: int,
    *,
    timeouts: SmtpTimeouts,
    limits: ConnectionLimits,
    main_tls: Awaitable[TlsSession | None] | None = None,
) -> dict[str, TlsTrial]:
    """The version trials (`EARLY_LABELS`), started while the main session to `address` still runs.

    The old versions' offer first, alone. Then, once it showed that the server speaks STARTTLS
    (accepted or refused, not an error) and `main_tls` gave what the main session's handshake
    negotiated (None: it did not get that far), the version offers that handshake did not
    answer. A server without TLS sees one extra session. Each waits for the per-address limit
    like any session.
    """
    offers = _offers(OLD_VERSIONS)
    ran: dict[str, TlsTrial] = {}
    for offer in offers:
        ran.update(await _offer(offer, host, address, port, timeouts, limits))
    if any(t.outcome is TrialOutcome.ERROR for t in ran.values()) or main_tls is None:
        return ran  # the sweep runs the rest if the main session proves TLS
    known = await main_tls
    if known is None:
        return ran
    unanswered = [
        v for v in TLS_VERSIONS if v not in ran and answered_by(known, v, _single_context(v)) is None
    ]
    for offer in _offers(unanswered):
        ran.update(await _offer(offer, host, address, port, timeouts, limits))
    return ran


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
    beside the main session (`early_trials`); the ones it lacks, or that ended in an error, run
    here. Trials go out in `OFFERS`, several to one handshake (`_offer`).
    """
    answered: dict[str, TlsTrial | None] = {}
    for label in _LABELS:
        context = _single_context(label)
        answered[label] = _not_tested(label) if context is None else answered_by(known, label, context)

    def start(wanted: Collection[str]) -> list[asyncio.Task[dict[str, TlsTrial]]]:
        return [
            asyncio.create_task(_offer(offer, host, address, port, timeouts, limits))
            for offer in _offers(wanted)
        ]

    # The trials nothing ran yet start first, so that they take the slot the main session left.
    deferred = EARLY_LABELS if early is not None else frozenset()
    tasks = start([label for label in _LABELS if answered[label] is None and label not in deferred])
    if early is not None:
        ran = await early
        again = []
        for label in sorted(deferred, key=_LABELS.index):
            if answered[label] is not None:
                continue
            trial = ran.get(label)
            if trial is not None and trial.outcome is not TrialOutcome.ERROR:
                answered[label] = trial
            else:
                again.append(label)
        tasks += start(again)
    if tasks:
        done, pending = await asyncio.wait(tasks, timeout=timeouts.session)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            for label, trial in task.result().items():
                answered[label] = answered[label] or trial

    def result(label: str) -> TlsTrial:
        answer = answered[label]
        if answer is not None:
            return answer
        return TlsTrial(label, TrialOutcome.ERROR, reason=f"the sweep ran out of its {timeouts.session:g} s")

    trials = [result(label) for label in _LABELS]
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
