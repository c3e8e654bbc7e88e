"""TLSA lookups of the MX hosts, as DANE for SMTP asks them (RFC 7672 §2.2); shared by dane and dnssec."""

from __future__ import annotations

from dataclasses import dataclass

from mecsa.dns.answer import DnsAnswer, DnssecStatus
from mecsa.dns.resolver import Resolver
from mecsa.observe.mx import MxHost


def _secure_expansion(host: MxHost) -> str | None:
    chain = host.cname_chain
    answers = [a for a in (host.a, host.aaaa) if a.records]
    if chain and answers and all(a.dnssec is DnssecStatus.SECURE for a in answers):
        return chain[-1].rstrip(".").lower()
    return None


@dataclass(frozen=True, slots=True)
class TlsaLookup:
    """The TLSA answer of one MX host (None when it has no address), its base domain and reference names."""

    answer: DnsAnswer | None
    base: str
    names: tuple[str, ...]


async def lookup_tlsa(resolver: Resolver, host: MxHost, port: int) -> TlsaLookup:
    """TLSA at `_<port>._tcp.<host>`, after secure CNAME expansion (RFC 7671 §7, RFC 7672 §2.2.2).

    The dnssec check judges these same answers, so both ask the same questions.
    """
    name = host.name
    expanded = _secure_expansion(host)
    if not host.addresses:
        return TlsaLookup(None, name, (name,))
    if expanded:
        answer = await resolver.resolve(f"_{port}._tcp.{expanded}", "TLSA")
        if answer.failed or answer.records:
            return TlsaLookup(answer, expanded, (expanded, name))
    answer = await resolver.resolve(f"_{port}._tcp.{name}", "TLSA")
    return TlsaLookup(answer, name, (expanded, name) if expanded else (name,))
