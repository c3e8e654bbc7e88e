"""The one async resolver every probe asks.

Two objects, so that bulk scans pay set-up once while each assessment keeps its own cache:

- `DnsClient`: the transport (nameservers, timeouts, retries, TCP fallback) and the memo of
  whether the resolver validates DNSSEC. Share one across assessments.
- `Resolver`: one per assessment. It caches answers, joins identical questions in flight, and
  turns each reply into a `DnsAnswer` with its rcode and DNSSEC status.

Written on dnspython's `dns.asyncquery` rather than `dns.asyncresolver` because the latter raises
on NXDOMAIN/SERVFAIL/timeout and hides the EDE options, the AD bit and which server said what:
exactly the evidence needed to keep "could not find out" apart from "not there".
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import dns.asyncquery
import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from mecsa.dns.answer import DnsAnswer, DnssecStatus, Rcode

# EDE codes (RFC 8914 §4) that mean DNSSEC validation failed: 1-2 unsupported algorithms are
# treated as insecure by validators, so only the real failures count as bogus.
_BOGUS_EDE_CODES = frozenset({5, 6, 7, 8, 9, 10, 11, 12})
_MAX_CNAME_CHAIN = 16
_RCODES = {
    dns.rcode.NOERROR: Rcode.NOERROR,
    dns.rcode.NXDOMAIN: Rcode.NXDOMAIN,
    dns.rcode.SERVFAIL: Rcode.SERVFAIL,
    dns.rcode.REFUSED: Rcode.REFUSED,
    dns.rcode.FORMERR: Rcode.FORMERR,
}


class ResolverConfigError(ValueError):
    """A resolver specification could not be used."""


@dataclass(frozen=True, slots=True)
class Nameserver:
    host: str
    port: int = 53

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_nameserver(spec: str) -> Nameserver:
    """Parse `IP`, `IP:PORT`, `[IPv6]` or `[IPv6]:PORT`."""
    text = spec.strip()
    host, port = text, 53
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ResolverConfigError(f"bad resolver {spec!r}: missing ']'")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ResolverConfigError(f"bad resolver {spec!r}")
            port = _parse_port(spec, rest[1:])
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _parse_port(spec, port_text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ResolverConfigError(f"bad resolver {spec!r}: not an IP address") from None
    return Nameserver(host, port)


def _parse_port(spec: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ResolverConfigError(f"bad resolver {spec!r}: bad port")
    return int(text)


def system_nameservers() -> list[Nameserver]:
    """The nameservers of /etc/resolv.conf."""
    import dns.resolver

    try:
        conf = dns.resolver.Resolver(configure=True)
    except dns.resolver.NoResolverConfiguration as exc:
        raise ResolverConfigError(f"no system resolver configured: {exc}") from None
    servers = [Nameserver(str(ns), conf.port) for ns in conf.nameservers]
    if not servers:
        raise ResolverConfigError("no system resolver configured; use --resolver IP[:PORT]")
    return servers


@dataclass(frozen=True, slots=True)
class _Reply:
    message: dns.message.Message | None
    rcode: Rcode
    server: Nameserver | None
    detail: str | None = None


class DnsClient:
    """Sends questions; knows nothing of caching. Safe to share between concurrent assessments.

    At most `max_in_flight` questions are outstanding at once: with more, a resolver's default
    UDP receive buffer overflowed in the bulk benchmark and replies were lost as timeouts.
    Each attempt waits `timeout` seconds; `attempts` tries go round the nameservers in order,
    and a SERVFAIL moves on to the next server too. A truncated UDP reply is retried over TCP.
    """

    def __init__(
        self,
        nameservers: Sequence[Nameserver] | None = None,
        *,
        timeout: float = 2.0,
        attempts: int = 3,
        max_in_flight: int = 128,
    ) -> None:
        self.nameservers = list(nameservers) if nameservers else system_nameservers()
        if timeout <= 0 or attempts < 1:
            raise ResolverConfigError("timeout must be positive and attempts at least 1")
        self.timeout = timeout
        self.attempts = attempts
        self._slots = asyncio.Semaphore(max_in_flight)
        self._validates: asyncio.Task[bool] | None = None
        self._saw_ad = False

    async def ask(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType, *, cd: bool = False) -> _Reply:
        query = dns.message.make_query(name, rdtype, use_edns=0, payload=1232, want_dnssec=True)
        if cd:
            query.flags |= dns.flags.CD
        last = _Reply(None, Rcode.TIMEOUT, None, "no nameserver answered")
        for attempt in range(self.attempts):
            server = self.nameservers[attempt % len(self.nameservers)]
            reply = await self._ask_one(query, server)
            if (
                reply.rcode in (Rcode.TIMEOUT, Rcode.NETWORK_ERROR, Rcode.SERVFAIL)
                and attempt + 1 < self.attempts
            ):
                # A SERVFAIL with DNSSEC EDE is the validator's final word: do not shop around.
                if reply.rcode is Rcode.SERVFAIL and _bogus_ede(reply.message):
                    return reply
                last = reply
                continue
            return reply
        return last

    async def _ask_one(self, query: dns.message.Message, server: Nameserver) -> _Reply:
        async with self._slots:
            try:
                response, _ = await dns.asyncquery.udp_with_fallback(
                    query, server.host, timeout=self.timeout, port=server.port, ignore_unexpected=True
                )
            except dns.exception.Timeout:
                return _Reply(
                    None, Rcode.TIMEOUT, server, f"no reply from {server} within {self.timeout:g} s"
                )
            except (OSError, EOFError) as exc:
                return _Reply(None, Rcode.NETWORK_ERROR, server, f"{server}: {exc}")
            except dns.exception.DNSException as exc:
                return _Reply(None, Rcode.FORMERR, server, f"{server}: malformed reply: {exc}")
        if response.flags & dns.flags.AD:
            self._saw_ad = True
        return _Reply(response, _RCODES.get(response.rcode(), Rcode.OTHER), server)

    async def validates(self) -> bool:
        """Whether the resolver validates DNSSEC, learnt once: the AD bit on the signed root."""
        if self._saw_ad:
            return True
        if self._validates is None:
            self._validates = asyncio.ensure_future(self._probe_validation())
        return await asyncio.shield(self._validates) or self._saw_ad

    async def _probe_validation(self) -> bool:
        reply = await self.ask(dns.name.root, dns.rdatatype.SOA)
        return reply.message is not None and bool(reply.message.flags & dns.flags.AD)

    def describe(self) -> dict[str, object]:
        return {
            "nameservers": [str(ns) for ns in self.nameservers],
            "timeout_s": self.timeout,
            "attempts": self.attempts,
        }


def _bogus_ede(message: dns.message.Message | None) -> tuple[tuple[int, str], ...]:
    return tuple(e for e in _ede(message) if e[0] in _BOGUS_EDE_CODES)


def _ede(message: dns.message.Message | None) -> tuple[tuple[int, str], ...]:
    if message is None:
        return ()
    return tuple(
        (int(opt.code), opt.text or "") for opt in message.options if isinstance(opt, dns.edns.EDEOption)
    )


def _follow(
    message: dns.message.Message, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType
) -> tuple[dns.rrset.RRset | None, tuple[str, ...]]:
    """The RRset of `rdtype` at the end of the CNAME chain from `qname`, and the chain's names."""
    current: dns.name.Name = qname
    chain: list[str] = []
    for _ in range(_MAX_CNAME_CHAIN):
        found = message.get_rrset(message.answer, current, dns.rdataclass.IN, rdtype)
        if found is not None:
            return found, tuple(chain)
        if rdtype == dns.rdatatype.CNAME:
            return None, tuple(chain)
        cname = message.get_rrset(message.answer, current, dns.rdataclass.IN, dns.rdatatype.CNAME)
        if cname is None:
            return None, tuple(chain)
        current = cname[0].target
        chain.append(current.to_text(omit_final_dot=True))
    return None, tuple(chain)


def to_name(name: str | dns.name.Name) -> dns.name.Name:
    return name if isinstance(name, dns.name.Name) else dns.name.from_text(name)


# How long a background question waits for the assessment's other questions to be answered
# before it goes out anyway (it never waits on a busy resolver for ever).
BACKGROUND_WAIT = 0.25


class Resolver:
    """One assessment's view of DNS: cached, deduplicated, every answer with rcode and DNSSEC status.

    A `background` question (a guessed DKIM selector) goes out once the assessment's other
    questions in flight are answered, or after `BACKGROUND_WAIT`: 28 guesses sent first made the
    MX answer, on which every SMTP session waits, queue behind their replies (issue 20).
    """

    def __init__(self, client: DnsClient) -> None:
        self.client = client
        self._cache: dict[tuple[str, str], asyncio.Task[DnsAnswer]] = {}
        self._foreground = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    @property
    def queries_sent(self) -> int:
        return len(self._cache)

    async def resolve(
        self, name: str | dns.name.Name, rdtype: str | dns.rdatatype.RdataType, *, background: bool = False
    ) -> DnsAnswer:
        """Ask once per assessment; concurrent askers of the same question share one query.

        `background`: a question no result waits on first (see the class docstring)."""
        # Keyed on the text, so a cache hit skips name parsing (6% of bulk-scan CPU, benchmarks/).
        text = (name if isinstance(name, str) else name.to_text()).lower().rstrip(".")
        kind = rdtype.upper() if isinstance(rdtype, str) else dns.rdatatype.to_text(rdtype)
        task = self._cache.get((text, kind))
        if task is None:
            try:
                qname = to_name(name)
            except dns.exception.DNSException as exc:
                return DnsAnswer(str(name), str(rdtype), Rcode.FORMERR, detail=f"not a valid DNS name: {exc}")
            qtype = dns.rdatatype.RdataType.make(rdtype)
            if background:
                task = asyncio.ensure_future(self._after_others(qname, qtype))
            else:
                # Counted from now, not from when the task first runs, so that a background
                # question created in the same loop iteration already sees it.
                self._foreground += 1
                self._quiet.clear()
                task = asyncio.ensure_future(self._lookup(qname, qtype))
                task.add_done_callback(self._answered)
            self._cache[(text, kind)] = task
        # shield: one caller's cancellation (a timeout elsewhere) must not cancel the shared query.
        return await asyncio.shield(task)

    def _answered(self, _task: asyncio.Task[DnsAnswer]) -> None:
        self._foreground -= 1
        if not self._foreground:
            self._quiet.set()

    async def _after_others(self, qname: dns.name.Name, qtype: dns.rdatatype.RdataType) -> DnsAnswer:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(BACKGROUND_WAIT):
                await self._quiet.wait()
        return await self._lookup(qname, qtype)

    async def _lookup(self, qname: dns.name.Name, qtype: dns.rdatatype.RdataType) -> DnsAnswer:
        reply = await self.client.ask(qname, qtype)
        name_text = qname.to_text(omit_final_dot=True) or "."
        type_text = dns.rdatatype.to_text(qtype)
        server = str(reply.server) if reply.server else None
        message = reply.message
        if message is None:
            return DnsAnswer(name_text, type_text, reply.rcode, server=server, detail=reply.detail)
        ede = _ede(message)
        records: tuple[dns.rdata.Rdata, ...] = ()
        ttl: int | None = None
        chain: tuple[str, ...] = ()
        if reply.rcode in (Rcode.NOERROR, Rcode.NXDOMAIN):
            rrset, chain = _follow(message, qname, qtype)
            if rrset is not None:
                records, ttl = tuple(rrset), rrset.ttl
        status = await self._dnssec_status(qname, qtype, reply, ede)
        return DnsAnswer(
            name_text, type_text, reply.rcode, records, ttl, chain, status, ede, server, reply.detail
        )

    async def _dnssec_status(
        self,
        qname: dns.name.Name,
        qtype: dns.rdatatype.RdataType,
        reply: _Reply,
        ede: tuple[tuple[int, str], ...],
    ) -> DnssecStatus:
        message = reply.message
        assert message is not None
        if message.flags & dns.flags.AD:
            return DnssecStatus.SECURE
        if reply.rcode is Rcode.SERVFAIL:
            if any(code in _BOGUS_EDE_CODES for code, _ in ede):
                return DnssecStatus.BOGUS
            if await self.client.validates():
                # Equivalent evidence without EDE: the data is there when validation is switched off.
                unchecked = await self.client.ask(qname, qtype, cd=True)
                if unchecked.rcode in (Rcode.NOERROR, Rcode.NXDOMAIN):
                    return DnssecStatus.BOGUS
            return DnssecStatus.INDETERMINATE
        if reply.rcode in (Rcode.NOERROR, Rcode.NXDOMAIN) and await self.client.validates():
            return DnssecStatus.INSECURE
        return DnssecStatus.INDETERMINATE
