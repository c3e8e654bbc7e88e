"""What one DNS question got back: rcode, records and DNSSEC status, never judged."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import dns.rdata

if TYPE_CHECKING:
    from mecsa.dns.validation.verdict import ChainVerdict


class Rcode(StrEnum):
    """The outcome of a question. TIMEOUT, NETWORK_ERROR and CNAME_ERROR are ours, not the wire's."""

    NOERROR = "NOERROR"
    NXDOMAIN = "NXDOMAIN"
    SERVFAIL = "SERVFAIL"
    REFUSED = "REFUSED"
    FORMERR = "FORMERR"
    OTHER = "OTHER"
    TIMEOUT = "TIMEOUT"
    NETWORK_ERROR = "NETWORK_ERROR"
    CNAME_ERROR = "CNAME_ERROR"  # ours: a CNAME loop or an over-long chain, so the data is unknown


class DnssecStatus(StrEnum):
    """RFC 4035 §4.3 states, as learnt from a validating resolver or from our own chain walk.

    `indeterminate` is used when the resolver does not validate (or no answer came):
    then nothing can be said, and it is never reported as `insecure`.
    """

    SECURE = "secure"
    INSECURE = "insecure"
    BOGUS = "bogus"
    INDETERMINATE = "indeterminate"


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    """One answer. `records` holds the RRset of the asked type at the end of any CNAME chain.

    `dnssec` is the status that counts (per `--dnssec-mode`). `validation` is our own chain walk's
    verdict with its named link (None in `resolver` mode); `resolver_dnssec` is what the resolver's
    AD bit and EDE said, kept in `both` mode so that a disagreement can be reported.
    """

    qname: str
    rdtype: str
    rcode: Rcode
    records: tuple[dns.rdata.Rdata, ...] = ()
    ttl: int | None = None
    cname_chain: tuple[str, ...] = ()
    dnssec: DnssecStatus = DnssecStatus.INDETERMINATE
    ede: tuple[tuple[int, str], ...] = ()
    server: str | None = None
    detail: str | None = None
    validation: ChainVerdict | None = None
    resolver_dnssec: DnssecStatus | None = None

    @property
    def dnssec_link(self) -> str:
        """The named link of the DNSSEC status: ours when we validated, else the resolver's word."""
        if self.validation is not None and self.validation.status is self.dnssec:
            return self.validation.link
        return f"{self.dnssec.value} (the resolver's verdict)"

    @property
    def disagreement(self) -> str | None:
        """In `both` mode: how our verdict and the resolver's differ, when both are definite."""
        ours, theirs = self.validation, self.resolver_dnssec
        if ours is None or theirs is None:
            return None
        if DnssecStatus.INDETERMINATE in (ours.status, theirs) or ours.status is theirs:
            return None
        return f"we say {ours.link}; the resolver says {theirs.value}"

    @property
    def ok(self) -> bool:
        """True when the question was answered: records, NODATA or NXDOMAIN."""
        return self.rcode in (Rcode.NOERROR, Rcode.NXDOMAIN)

    @property
    def failed(self) -> bool:
        """True when the tool could not find out: the opposite of `ok`."""
        return not self.ok

    @property
    def exists(self) -> bool:
        """True when the name exists (NOERROR, with or without records of this type)."""
        return self.rcode is Rcode.NOERROR

    @property
    def nodata(self) -> bool:
        return self.rcode is Rcode.NOERROR and not self.records

    def texts(self) -> tuple[str, ...]:
        """TXT records as text, the character-strings of each joined (RFC 7208 §3.3, RFC 6376 §3.6.2.2)."""
        out = []
        for rd in self.records:
            strings = getattr(rd, "strings", None)
            if strings is not None:
                out.append(b"".join(strings).decode("utf-8", errors="replace"))
        return tuple(out)

    def describe_failure(self) -> str:
        """A one-line reason for a failed lookup, for error findings."""
        why = self.rcode.value
        if self.ede:
            why += (
                " ("
                + "; ".join(f"EDE {code}: {text}" if text else f"EDE {code}" for code, text in self.ede)
                + ")"
            )
        if self.detail:
            why += f": {self.detail}"
        return f"{self.qname} {self.rdtype}: {why}"
