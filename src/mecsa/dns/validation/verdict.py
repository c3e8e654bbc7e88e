"""What our own validation concluded about one answer, and the link that decided it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mecsa.dns.answer import DnssecStatus


class DnssecMode(StrEnum):
    """Who judges DNSSEC: our chain walk (`own`), the resolver's AD bit (`resolver`), or both."""

    OWN = "own"
    RESOLVER = "resolver"
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class StrengthNote:
    """An algorithm or key-size remark about one zone (RFC 8624 §3, RFC 9904, RFC 9905)."""

    zone: str
    level: str  # "warn" or "fail"
    text: str


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    """Our verdict for one answer.

    `link` is the one-line explanation that names the link which decided it, e.g.
    `secure (chain . → test. → top.test.)` or `bogus: DS at test. for top.test. (key tag 1, alg 13)
    matches no DNSKEY`. `chain` lists the zones proven secure from the trust anchor down.
    """

    status: DnssecStatus
    link: str
    chain: tuple[str, ...] = ()
    notes: tuple[StrengthNote, ...] = ()


def secure_link(chain: tuple[str, ...]) -> str:
    return "secure (chain " + " → ".join(chain) + ")"


# Worst first: a bogus part makes the whole answer bogus, an unknown part outranks insecure.
_SEVERITY = {
    DnssecStatus.BOGUS: 0,
    DnssecStatus.INDETERMINATE: 1,
    DnssecStatus.INSECURE: 2,
    DnssecStatus.SECURE: 3,
}


def worst(verdicts: list[ChainVerdict]) -> ChainVerdict:
    """The verdict of an answer made of several RRsets (a CNAME chain): its weakest part."""
    chosen = min(verdicts, key=lambda v: _SEVERITY[v.status])
    notes: list[StrengthNote] = []
    for v in verdicts:
        notes.extend(n for n in v.notes if n not in notes)
    return ChainVerdict(chosen.status, chosen.link, chosen.chain, tuple(notes))


def combine(own: ChainVerdict | None, resolver: DnssecStatus) -> DnssecStatus:
    """`both` mode: the two verdicts, and when both are definite and differ, the stricter one.

    A wrong "secure" is worse than a wrong "bogus", so on disagreement the worse state wins and the
    disagreement is reported as a finding by the dnssec check. An indeterminate side says nothing.
    """
    if own is None or own.status is DnssecStatus.INDETERMINATE:
        return resolver
    if resolver is DnssecStatus.INDETERMINATE:
        return own.status
    return min((own.status, resolver), key=lambda s: _SEVERITY[s])
