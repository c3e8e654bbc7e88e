"""Analyse one received message: DKIM, SPF (MAIL FROM and HELO), DMARC, and the headers.

All DNS goes through the project's `Resolver`; the independent parts (key records, both SPF
evaluations, DMARC discovery) run concurrently. The result is a frozen `MessageAnalysis`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ipaddress
from dataclasses import dataclass
from email.message import Message
from typing import Any

from mecsa.dns.resolver import Resolver
from mecsa.mailmode.dkimverify import DkimSignatureResult, check_dkim
from mecsa.mailmode.dmarceval import (
    DmarcEvaluation,
    FromDomain,
    alignment_domains,
    discover,
    domain_exists,
    evaluate_dmarc,
    from_domain,
)
from mecsa.mailmode.headers import AuthenticationResults, ReceivedHop, read_headers
from mecsa.observe.dmarc import Discovery, DiscoveryMethod
from mecsa.spf.evaluator import SpfOutcome, SpfResult, check_host, check_sender, split_sender, valid_domain


@dataclass(frozen=True, slots=True)
class TlsInfo:
    """The TLS of the delivering connection, from the receiver's side."""

    version: str
    cipher: str
    bits: int | None

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "cipher": self.cipher, "bits": self.bits}


@dataclass(frozen=True, slots=True)
class Connection:
    """The SMTP transaction that delivered the message, as the receiver saw it."""

    peer_ip: str
    peer_port: int
    helo: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    tls: TlsInfo | None
    received_at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "peer_ip": self.peer_ip,
            "peer_port": self.peer_port,
            "helo": self.helo,
            "mail_from": self.mail_from,
            "rcpt_tos": list(self.rcpt_tos),
            "starttls": self.tls is not None,
            "tls": self.tls.to_json() if self.tls else None,
            "received_at": self.received_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class SpfCheck:
    """SPF for one identity (`mailfrom` or `helo`): the domain checked and check_host()'s outcome."""

    identity: str
    domain: str
    outcome: SpfOutcome

    def to_json(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "domain": self.domain,
            "result": self.outcome.result.value,
            "reason": self.outcome.reason,
            "lookups": self.outcome.lookups,
        }


@dataclass(frozen=True, slots=True)
class MessageAnalysis:
    """Everything judged about one message."""

    connection: Connection
    message_id: str | None
    subject: str | None
    sender: FromDomain
    header_recipients: tuple[str, ...]
    dkim: tuple[DkimSignatureResult, ...]
    spf_mailfrom: SpfCheck
    spf_helo: SpfCheck
    dmarc: DmarcEvaluation
    authentication_results: tuple[AuthenticationResults, ...]
    received: tuple[ReceivedHop, ...]

    @property
    def spf_domain(self) -> str:
        """The SPF identity DMARC uses: MAIL FROM's domain, or HELO for <> (RFC 7489 §3.1.2)."""
        return self.spf_mailfrom.domain

    def to_json(self) -> dict[str, Any]:
        return {
            "connection": self.connection.to_json(),
            "message_id": self.message_id,
            "subject": self.subject,
            "from": {
                "domain": self.sender.domain,
                "addresses": list(self.sender.addresses),
                "problem": self.sender.problem,
            },
            "header_recipients": list(self.header_recipients),
            "dkim": [s.to_json() for s in self.dkim],
            "spf": {"mailfrom": self.spf_mailfrom.to_json(), "helo": self.spf_helo.to_json()},
            "dmarc": self.dmarc.to_json(),
            "authentication_results": [a.to_json() for a in self.authentication_results],
            "received": [r.to_json() for r in self.received],
        }


def parse_message(raw: bytes) -> Message:
    """The message's header fields, parsed leniently (compat32 never raises on odd headers)."""
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def _is_address_literal(helo: str) -> bool:
    text = helo.strip("[]").removeprefix("IPv6:")
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


async def _spf_helo(resolver: Resolver, ip: str, helo: str) -> SpfCheck:
    """RFC 7208 §2.3: the HELO identity, checked only when it is a domain name."""
    if not helo or _is_address_literal(helo) or not valid_domain(helo):
        outcome = SpfOutcome(SpfResult.NONE, f"HELO {helo!r} is not a domain name: nothing to check")
        return SpfCheck("helo", helo, outcome)
    outcome = await check_host(ip, helo, f"postmaster@{helo}", helo, resolver=resolver)
    return SpfCheck("helo", helo, outcome)


async def _spf_mailfrom(resolver: Resolver, ip: str, mail_from: str, helo: str) -> SpfCheck:
    """RFC 7208 §2.4: MAIL FROM; for a null sender, postmaster@HELO."""
    _, domain = split_sender(mail_from, helo)
    outcome = await check_sender(ip, mail_from, helo, resolver=resolver)
    return SpfCheck("mailfrom", domain.lower().rstrip("."), outcome)


async def _dmarc_discovery(
    resolver: Resolver, sender: FromDomain, method: DiscoveryMethod
) -> Discovery | None:
    return await discover(resolver, sender.domain, method) if sender.domain else None


def header_recipients(raw: bytes) -> tuple[str, ...]:
    """The To and Cc addresses of a raw message, lower-cased (header fields only are parsed)."""
    from email.parser import BytesHeaderParser

    return _header_recipients(BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw))


def _header_recipients(message: Message) -> tuple[str, ...]:
    from email.utils import getaddresses

    fields = [str(v) for name in ("To", "Cc") for v in message.get_all(name) or []]
    return tuple(addr.lower() for _, addr in getaddresses(fields) if addr)


async def analyse_message(
    raw: bytes,
    connection: Connection,
    resolver: Resolver,
    dmarc_discovery: DiscoveryMethod = DiscoveryMethod.TREEWALK,
) -> MessageAnalysis:
    """Analyse `raw` as delivered over `connection`; DNS through `resolver` (one per message).

    `dmarc_discovery`: RFC 9989's tree walk (default) or RFC 7489's public suffix list.
    """
    message = await asyncio.to_thread(parse_message, raw)
    sender = from_domain(message)
    ip = connection.peer_ip
    dkim, spf_mailfrom, spf_helo, discovery = await asyncio.gather(
        check_dkim(raw, resolver),
        _spf_mailfrom(resolver, ip, connection.mail_from, connection.helo),
        _spf_helo(resolver, ip, connection.helo),
        _dmarc_discovery(resolver, sender, dmarc_discovery),
    )
    exists: bool | None = True
    orgs = None
    if sender.domain and discovery is not None:
        found = discovery.policy_lookup
        if found is not None and found.domain != sender.domain:
            # np applies only to subdomains that do not exist: find out only when it matters
            exists = await domain_exists(resolver, sender.domain)
        passing = [spf_mailfrom.domain] if spf_mailfrom.outcome.result is SpfResult.PASS else []
        passing += [s.domain for s in dkim if s.domain and s.result.value == "pass"]
        orgs = await alignment_domains(resolver, discovery, passing)
    dmarc = evaluate_dmarc(
        sender,
        discovery,
        spf_domain=spf_mailfrom.domain,
        spf_result=spf_mailfrom.outcome.result,
        dkim=dkim,
        exists=exists,
        orgs=orgs,
    )
    auth, hops = read_headers(message)
    return MessageAnalysis(
        connection,
        _header(message, "Message-ID"),
        _header(message, "Subject"),
        sender,
        _header_recipients(message),
        dkim,
        spf_mailfrom,
        spf_helo,
        dmarc,
        auth,
        hops,
    )


def _header(message: Message, name: str) -> str | None:
    value = message.get(name)
    return " ".join(str(value).split()) if value is not None else None
