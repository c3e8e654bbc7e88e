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
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

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
from mecsa.dns.names import name_from_text, name_text

# Re-exported where callers have always found them (the module itself is light: mecsa.dns.presend).
from mecsa.dns.nameserver import Nameserver as Nameserver
from mecsa.dns.nameserver import ResolverConfigError as ResolverConfigError
from mecsa.dns.nameserver import parse_nameserver as parse_nameserver
from mecsa.dns.udp import Query, exchange, make_query
from mecsa.dns.validation.verdict import ChainVerdict, DnssecMode, combine

if TYPE_CHECKING:  # loaded only when a resolver validates (dns.dnssec costs ~25 ms to import)
    from mecsa.dns.validation.anchors import TrustAnchors
    from mecsa.dns.validation.walker import ChainValidator, Fetched

# EDE codes (RFC 8914 §4) that mean DNSSEC validation failed: 1-2 unsupported algorithms are
# treated as insecure by validators, so only the real failures count as bogus.
_BOGUS_EDE_CODES = frozenset({5, 6, 7, 8, 9, 10, 11, 12})
_MAX_CNAME_CHAIN = 16
_AD = int(dns.flags.AD)
_RCODES = {
    dns.rcode.NOERROR: Rcode.NOERROR,
    dns.rcode.NXDOMAIN: Rcode.NXDOMAIN,
    dns.rcode.SERVFAIL: Rcode.SERVFAIL,
    dns.rcode.REFUSED: Rcode.REFUSED,
    dns.rcode.FORMERR: Rcode.FORMERR,
}


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
    """One question's outcome: the message (None when none came), its rcode and who answered."""

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
    `dnssec_mode` says who judges DNSSEC (our chain walk from `trust_anchors`, default IANA's
    root, the resolver's AD bit, or both); each `Resolver` on this client follows it.
    """

    def __init__(
        self,
        nameservers: Sequence[Nameserver] | None = None,
        *,
        timeout: float = 2.0,
        attempts: int = 3,
        max_in_flight: int = 128,
        dnssec_mode: DnssecMode = DnssecMode.RESOLVER,
        trust_anchors: TrustAnchors | None = None,
    ) -> None:
        self.dnssec_mode = DnssecMode(dnssec_mode)
        self._trust_anchors = trust_anchors
        self.nameservers = list(nameservers) if nameservers else system_nameservers()
        if timeout <= 0 or attempts < 1:
            raise ResolverConfigError("timeout must be positive and attempts at least 1")
        self.timeout = timeout
        self.attempts = attempts
        self._slots = asyncio.Semaphore(max_in_flight)
        self._validates: asyncio.Task[bool] | None = None
        self._saw_ad = False

    async def ask(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType, *, cd: bool = False) -> _Reply:
        query = make_query(name, rdtype, cd=cd)
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

    async def _ask_one(self, query: Query, server: Nameserver) -> _Reply:
        async with self._slots:
            try:
                # Anyone can send a datagram: a reply from another address, or with the wrong ID
                # or question, or unparsable, is dropped and the wait for the real reply goes on
                # until the timeout, instead of ending the lookup (`mecsa.dns.udp.exchange`).
                try:
                    response = await exchange(query, server.host, server.port, self.timeout)
                except dns.message.Truncated:
                    # Imported when first needed: it brings dns.query, dns.quic and dns.xfr, which
                    # a run without a truncated reply never uses (issue 20).
                    from dns.asyncquery import tcp  # not `import dns...`: that makes `dns` local

                    response = await tcp(query.message(), server.host, timeout=self.timeout, port=server.port)
            except (TimeoutError, dns.exception.Timeout):
                return _Reply(
                    None, Rcode.TIMEOUT, server, f"no reply from {server} within {self.timeout:g} s"
                )
            except (OSError, EOFError) as exc:
                return _Reply(None, Rcode.NETWORK_ERROR, server, f"{server}: {exc}")
            except dns.exception.DNSException as exc:
                return _Reply(None, Rcode.FORMERR, server, f"{server}: malformed reply: {exc}")
        if int(response.flags) & _AD:  # int arithmetic: the Flag enum's operators are Python code
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

    @property
    def trust_anchors(self) -> TrustAnchors:
        if self._trust_anchors is None:
            from mecsa.dns.validation.anchors import iana_root_anchors

            self._trust_anchors = iana_root_anchors()
        return self._trust_anchors

    def describe(self) -> dict[str, object]:
        out: dict[str, object] = {
            "nameservers": [str(ns) for ns in self.nameservers],
            "timeout_s": self.timeout,
            "attempts": self.attempts,
            "dnssec_mode": self.dnssec_mode.value,
        }
        if self.dnssec_mode is not DnssecMode.RESOLVER:
            out["trust_anchor"] = self.trust_anchors.source
        return out


def _bogus_ede(message: dns.message.Message | None) -> tuple[tuple[int, str], ...]:
    return tuple(e for e in _ede(message) if e[0] in _BOGUS_EDE_CODES)


def _ede(message: dns.message.Message | None) -> tuple[tuple[int, str], ...]:
    if message is None:
        return ()
    return tuple(
        (int(opt.code), opt.text or "") for opt in message.options if isinstance(opt, dns.edns.EDEOption)
    )


@dataclass(frozen=True, slots=True)
class _Chain:
    """Where a reply's CNAME chain from the question led: the RRset, the names, and what went wrong."""

    rrset: dns.rrset.RRset | None
    names: tuple[str, ...]
    broken: str | None = None  # a loop, or longer than _MAX_CNAME_CHAIN: could not find out
    dangling: dns.name.Name | None = None  # the reply stops at a CNAME target it says nothing about


def _follow(
    message: dns.message.Message,
    qname: dns.name.Name,
    rdtype: dns.rdatatype.RdataType,
    above: tuple[str, ...] = (),
) -> _Chain:
    """Follow the CNAME chain from `qname` through the answer section.

    `above` is the path followed in earlier replies, the original question first. A loop, or more
    than _MAX_CNAME_CHAIN CNAMEs, is `broken`: the data is unknown, which is never "no data".
    """
    current: dns.name.Name = qname
    path = list(above) or [name_text(qname, omit_final_dot=True)]  # the names visited, question first
    start = len(path)
    while True:
        found = _in_answer(message, current, rdtype)
        if found is not None:
            return _Chain(found, tuple(path[1:]))
        if rdtype == dns.rdatatype.CNAME:
            return _Chain(None, tuple(path[1:]))
        cname = _in_answer(message, current, dns.rdatatype.CNAME)
        if cname is None:
            return _Chain(None, tuple(path[1:]), dangling=current if len(path) > start else None)
        current = cname[0].target
        target = name_text(current, omit_final_dot=True)
        if target in path:
            return _Chain(None, tuple(path[1:]), f"CNAME loop: {' → '.join((*path, target))}")
        if len(path) - 1 >= _MAX_CNAME_CHAIN:
            return _Chain(
                None, tuple(path[1:]), f"CNAME chain longer than {_MAX_CNAME_CHAIN}: {path[0]} → … → {target}"
            )
        path.append(target)


def _in_answer(
    message: dns.message.Message, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
) -> dns.rrset.RRset | None:
    """`message.get_rrset(message.answer, name, IN, rdtype)`, straight from the message's index."""
    if not message.answer:  # NXDOMAIN and NODATA: nothing to find (and no name to hash)
        return None
    if message.index is None:
        return message.get_rrset(message.answer, name, dns.rdataclass.IN, rdtype)
    key = (dns.message.MessageSection.ANSWER, name, dns.rdataclass.IN, rdtype, dns.rdatatype.NONE, None)
    return message.index.get(key)


def _weaker(first: DnssecStatus, second: DnssecStatus) -> DnssecStatus:
    """The status of an answer pieced together from two replies: as strong as the weaker one."""
    order = (DnssecStatus.BOGUS, DnssecStatus.INDETERMINATE, DnssecStatus.INSECURE, DnssecStatus.SECURE)
    return min(first, second, key=order.index)


@functools.lru_cache(maxsize=512)
def _rdatatype(rdtype: str | dns.rdatatype.RdataType) -> dns.rdatatype.RdataType:
    return dns.rdatatype.RdataType.make(rdtype)


@functools.lru_cache(maxsize=512)
def _type_text(rdtype: dns.rdatatype.RdataType) -> str:
    return dns.rdatatype.to_text(rdtype)


def to_name(name: str | dns.name.Name) -> dns.name.Name:
    return name if isinstance(name, dns.name.Name) else name_from_text(name)


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
        self._checked_off: dict[tuple[dns.name.Name, int], asyncio.Task[_Reply]] = {}
        self.validates_itself = client.dnssec_mode is not DnssecMode.RESOLVER
        self._validator: ChainValidator | None = None
        self._foreground = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    @property
    def validator(self) -> ChainValidator | None:
        """Our own chain validator (None in `resolver` mode), made when first needed.

        Made on first use, not with the resolver: the walker imports dns.dnssec and cryptography
        (~25 ms), and the cold CLI sends its first questions before that (mecsa.cli.early).
        """
        if self._validator is None and self.validates_itself:
            from mecsa.dns.validation.walker import ChainValidator

            self._validator = ChainValidator(self._fetch_checked_off, self.client.trust_anchors)
        return self._validator

    @property
    def queries_sent(self) -> int:
        return len(self._cache)

    @property
    def validation_queries(self) -> int:
        """Questions asked with checking disabled (DO=1, CD=1): `own` mode's answers, the chain walk's
        DS, DNSKEY and SOA, and the retry that tells a bogus answer from a broken server."""
        return len(self._checked_off)

    async def validates(self) -> bool:
        """Whether DNSSEC can be judged at all: we validate ourselves, or the resolver does."""
        return self.validates_itself or await self.client.validates()

    async def _ask_checked_off(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> _Reply:
        """One reply with checking disabled (CD=1), asked once per assessment: what the chain walk
        reads, what `own` mode answers from, and the bogus-or-broken retry of `resolver` mode."""
        key = (name, int(rdtype))
        task = self._checked_off.get(key)
        if task is None:
            task = asyncio.ensure_future(self.client.ask(name, rdtype, cd=True))
            self._checked_off[key] = task
        return await asyncio.shield(task)

    async def _fetch_checked_off(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Fetched:
        from mecsa.dns.validation.walker import Fetched

        reply = await self._ask_checked_off(name, rdtype)
        if reply.message is not None and reply.rcode in (Rcode.NOERROR, Rcode.NXDOMAIN):
            return Fetched(reply.message)
        what = f"{name.to_text()} {dns.rdatatype.to_text(rdtype)}"
        return Fetched(None, f"{what}: {reply.rcode.value}" + (f" ({reply.detail})" if reply.detail else ""))

    async def resolve(
        self, name: str | dns.name.Name, rdtype: str | dns.rdatatype.RdataType, *, background: bool = False
    ) -> DnsAnswer:
        """Ask once per assessment; concurrent askers of the same question share one query.

        `background`: a question no result waits on first (see the class docstring)."""
        # Keyed on the text, so a cache hit skips name parsing (6% of bulk-scan CPU, benchmarks/).
        task = self._begin(name, rdtype, background)
        if isinstance(task, DnsAnswer):
            return task
        # shield: one caller's cancellation (a timeout elsewhere) must not cancel the shared query.
        return await asyncio.shield(task)

    def _begin(
        self, name: str | dns.name.Name, rdtype: str | dns.rdatatype.RdataType, background: bool
    ) -> asyncio.Task[DnsAnswer] | DnsAnswer:
        """The task answering the question, started now unless it already was (see `resolve`)."""
        text = (name if isinstance(name, str) else name_text(name)).lower().rstrip(".")
        kind = rdtype.upper() if isinstance(rdtype, str) else _type_text(rdtype)
        task = self._cache.get((text, kind))
        if task is None:
            try:
                qname = to_name(name)
            except dns.exception.DNSException as exc:
                return DnsAnswer(str(name), str(rdtype), Rcode.FORMERR, detail=f"not a valid DNS name: {exc}")
            qtype = _rdatatype(rdtype)
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
        return task

    def _prefetch_exchanges(self, message: dns.message.Message, qname: dns.name.Name) -> None:
        """Ask for the addresses of an MX reply's hosts while our own validation of it runs.

        The SMTP sessions wait on MX, then A/AAAA; validating the MX answer costs a round trip
        for the chain's DS and DNSKEY (issue 19), after which the host lookups would cost
        another. Asked now, both run at once (issue 20). Each answer is still validated, and the
        MX answer is used only as validated: this only fills the assessment's cache early.
        """
        found = message.get_rrset(message.answer, qname, dns.rdataclass.IN, dns.rdatatype.MX)
        for rd in found or ():
            if rd.exchange != dns.name.root:
                for kind in ("A", "AAAA"):
                    self._begin(rd.exchange, kind, False)

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
        own_only = self.client.dnssec_mode is DnssecMode.OWN
        # In own mode the resolver's judgement is not wanted: ask with checking off, as the walk does.
        reply = await (self._ask_checked_off(qname, qtype) if own_only else self.client.ask(qname, qtype))
        qname_text = name_text(qname, omit_final_dot=True) or "."
        type_text = _type_text(qtype)
        server = str(reply.server) if reply.server else None
        message = reply.message
        if message is None:
            return DnsAnswer(qname_text, type_text, reply.rcode, server=server, detail=reply.detail)
        ede = _ede(message)
        if self.validates_itself and qtype == dns.rdatatype.MX and reply.rcode is Rcode.NOERROR:
            self._prefetch_exchanges(message, qname)
        verdict: ChainVerdict | None
        if not self.validates_itself:  # resolver mode: the bulk-scan path, kept as lean as before
            resolver_status, verdict = await self._dnssec_status(qname, qtype, reply, ede), None
        elif own_only:
            resolver_status, verdict = None, await self._own_verdict(qname, qtype, reply)
        else:  # both at once: neither waits for the other's round trips
            resolver_status, verdict = await asyncio.gather(
                self._dnssec_status(qname, qtype, reply, ede), self._own_verdict(qname, qtype, reply)
            )
        status = combine(verdict, resolver_status or DnssecStatus.INDETERMINATE)
        rcode, detail = reply.rcode, reply.detail
        records: tuple[dns.rdata.Rdata, ...] = ()
        ttl: int | None = None
        chain: tuple[str, ...] = ()
        if status is DnssecStatus.BOGUS and verdict is not None:
            # Like a validating resolver: bogus data is not handed on (RFC 4035 §5.5).
            rcode, detail = Rcode.SERVFAIL, verdict.link if verdict.status is status else detail
        elif rcode in (Rcode.NOERROR, Rcode.NXDOMAIN):
            followed, reply, status = await self._follow_chain(
                _follow(message, qname, qtype), reply, qtype, qname_text, status
            )
            rcode, detail, chain = reply.rcode, reply.detail, followed.names
            if followed.broken is not None:
                # A CNAME loop or an over-long chain: the data is unknown, never "no data".
                rcode, detail = Rcode.CNAME_ERROR, followed.broken
            elif followed.rrset is not None:
                records, ttl = tuple(followed.rrset), followed.rrset.ttl
        return DnsAnswer(
            qname_text,
            type_text,
            rcode,
            records,
            ttl,
            chain,
            status,
            ede,
            server,
            detail,
            verdict,
            resolver_status if verdict is not None else None,  # kept for `both` mode's comparison
        )

    async def _follow_chain(
        self,
        followed: _Chain,
        reply: _Reply,
        qtype: dns.rdatatype.RdataType,
        name_text: str,
        status: DnssecStatus,
    ) -> tuple[_Chain, _Reply, DnssecStatus]:
        """Ask on from where a reply cut its CNAME chain short, as RFC 1034 §5.3.3 has a resolver do.

        Each question must get further along the chain, which `_follow` bounds, so this ends.
        """
        while followed.dangling is not None and reply.rcode is Rcode.NOERROR:
            dangling = followed.dangling
            reply = await self.client.ask(dangling, qtype)
            if reply.message is None or reply.rcode not in (Rcode.NOERROR, Rcode.NXDOMAIN):
                return _Chain(None, followed.names), reply, status
            later = await self._dnssec_status(dangling, qtype, reply, _ede(reply.message))
            status = _weaker(status, later)
            followed = _follow(reply.message, dangling, qtype, (name_text, *followed.names))
        return followed, reply, status

    async def _own_verdict(
        self, qname: dns.name.Name, qtype: dns.rdatatype.RdataType, reply: _Reply
    ) -> ChainVerdict | None:
        validator = self.validator
        if validator is None:
            return None
        message = reply.message
        if reply.rcode not in (Rcode.NOERROR, Rcode.NXDOMAIN) or message is None:
            # A validating resolver's SERVFAIL hides the data: fetch it with checking off.
            fetched = await self._fetch_checked_off(qname, qtype)
            if fetched.message is None:
                return ChainVerdict(DnssecStatus.INDETERMINATE, f"indeterminate ({fetched.failure})")
            message = fetched.message
        return await validator.validate(qname, qtype, message)

    async def _dnssec_status(
        self,
        qname: dns.name.Name,
        qtype: dns.rdatatype.RdataType,
        reply: _Reply,
        ede: tuple[tuple[int, str], ...],
    ) -> DnssecStatus:
        message = reply.message
        assert message is not None
        if int(message.flags) & _AD:
            return DnssecStatus.SECURE
        if reply.rcode is Rcode.SERVFAIL:
            if any(code in _BOGUS_EDE_CODES for code, _ in ede):
                return DnssecStatus.BOGUS
            if await self.client.validates():
                # Equivalent evidence without EDE: the data is there when validation is switched off.
                unchecked = await self._ask_checked_off(qname, qtype)
                if unchecked.rcode in (Rcode.NOERROR, Rcode.NXDOMAIN):
                    return DnssecStatus.BOGUS
            return DnssecStatus.INDETERMINATE
        if reply.rcode in (Rcode.NOERROR, Rcode.NXDOMAIN) and await self.client.validates():
            return DnssecStatus.INSECURE
        return DnssecStatus.INDETERMINATE
