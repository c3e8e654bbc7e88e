"""No scanning of internal addresses: the service refuses targets whose hosts resolve to them.

Every address the assessment connects to (each MX host's, the MTA-STS host's) comes from an A or
AAAA answer asked through the assessment's DNS client. `GuardedClient` sits at that one point: an
answer that holds a private, loopback, link-local (or otherwise non-global) address is withheld, so
no probe can connect to it (the lookup reads as REFUSED: "could not find out", never a pass), and
the name and address are recorded so that the service refuses the whole assessment with a clear
message. Checking at the answer, rather than in a pre-flight lookup, leaves no window for a DNS
rebinding between the check and the connection.
"""

from __future__ import annotations

import ipaddress

import dns.name
import dns.rdatatype

from mecsa.dns.answer import Rcode
from mecsa.dns.resolver import DnsClient, _Reply

_ADDRESS_TYPES = (dns.rdatatype.A, dns.rdatatype.AAAA)


def is_internal(address: str) -> bool:
    """Whether the service must not connect to `address`: anything not globally routable.

    Private (RFC 1918, ULA), loopback, link-local, CGNAT, multicast, reserved and unspecified
    addresses all fail `is_global`; IPv4-mapped IPv6 is judged by the IPv4 address it carries.
    """
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


class GuardedClient(DnsClient):
    """A per-assessment view of a shared `DnsClient` that withholds internal addresses."""

    def __init__(self, inner: DnsClient) -> None:
        # Not super().__init__: this object forwards to `inner`, whose slots and state it shares.
        self.inner = inner
        self.nameservers = inner.nameservers
        self.timeout = inner.timeout
        self.attempts = inner.attempts
        # who judges DNSSEC, and from which anchors: the shared client's, so the chain walk that
        # a Resolver runs on this client asks its questions through the guard too
        self.dnssec_mode = inner.dnssec_mode
        self._trust_anchors = inner._trust_anchors
        self.refused: dict[str, str] = {}  # host name -> the first internal address it gave

    async def ask(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType, *, cd: bool = False) -> _Reply:
        reply = await self.inner.ask(name, rdtype, cd=cd)
        if rdtype not in _ADDRESS_TYPES or reply.message is None:
            return reply
        for rrset in reply.message.answer:
            if rrset.rdtype not in _ADDRESS_TYPES:
                continue
            for rdata in rrset:
                if is_internal(rdata.address):
                    host = name.to_text(omit_final_dot=True)
                    self.refused.setdefault(host, rdata.address)
                    return _Reply(
                        None,
                        Rcode.REFUSED,
                        reply.server,
                        f"{host} has the internal address {rdata.address}: not connected to",
                    )
        return reply

    async def validates(self) -> bool:
        return await self.inner.validates()

    def describe(self) -> dict[str, object]:
        return self.inner.describe()

    def refusal(self) -> str | None:
        """The message that refuses the assessment, or None when no internal address was seen."""
        if not self.refused:
            return None
        hosts = ", ".join(f"{host} ({address})" for host, address in sorted(self.refused.items()))
        return (
            f"refused: {hosts} resolves to a private, loopback or link-local address; "
            "this service does not connect to internal addresses"
        )
