"""The mail-mode SMTP receiver: accepts mail for its test addresses only, records, analyses, stores.

Built on aiosmtpd's `SMTP` protocol, served by our own `loop.create_server` so that connections
can be bounded: past `max_connections`, a new connection gets `421 4.3.2` and is closed.

Replies (RFC 5321 / RFC 3463 enhanced codes):

=====================================  =============================================================
550 5.7.1 relaying denied              a recipient outside the test domain and its trap domains
550 5.1.1 no such user                 an address in our domains that is not a test address
452 4.5.3 too many recipients          more than `max_recipients` RCPT TO in one transaction
552 5.3.4 message too big              over `max_size` octets (SIZE= in MAIL FROM, or in DATA)
421 4.3.2 too many connections         over `max_connections` at once
451 4.3.0 could not store              the store failed: the sender should retry
250 2.0.0 stored for report <token>    accepted; the token names the report it joins
250 2.0.0 report mail: ...             a mail to a configured report address, handed to the report handler
451 4.3.0 could not ingest             the report handler failed: the sender should retry
=====================================  =============================================================

Bounds: `idle_timeout` per command (aiosmtpd's timeout), `session_timeout` for a whole
connection, `max_size`, `max_recipients`, `max_connections`, and at most `max_analyses`
messages analysed at once (analysis and the sender's domain assessment run after the 250, in the
background, so a slow DNS never holds an SMTP session open).

For each message it records the peer, the HELO name (aiosmtpd's default HELO/EHLO handling sets
`session.host_name`; no EHLO hook is installed, so nothing can forget to), the envelope, and the
STARTTLS state with TLS version and cipher (`session.ssl["ssl_object"]`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.policy
import logging
import ssl
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP

from mecsa.dns.resolver import DnsClient, Resolver
from mecsa.mailmode.addresses import AddressKind, Recipient, classify, new_token
from mecsa.mailmode.analysis import (
    Connection,
    MessageAnalysis,
    TlsInfo,
    analyse_message,
    header_recipients,
)
from mecsa.mailmode.autoreply import AutoReplySettings
from mecsa.mailmode.connections import CONNECTIONS_TOKEN, ConnectionAttempt, ConnectionLog
from mecsa.mailmode.store import MailStore
from mecsa.observe import AssessOptions
from mecsa.observe.dmarc import DiscoveryMethod

log = logging.getLogger(__name__)

# A report address's mail (DMARC aggregate / TLS-RPT reports) goes to this handler before the
# reply: it returns a short summary for the 250 line. The CLI wires `mecsa.reports` in here, so
# mail mode does not import the reports feature (docs/architecture.md: same layer).
ReportHandler = Callable[[bytes, str], Awaitable[str]]

DEFAULT_MAX_SIZE = 10 * 1024 * 1024
# aiosmtpd's own 552 replies carry no enhanced status code; give them RFC 3463's 5.3.4.
_REPLY_REWRITES = {
    "552 Error: message size exceeds fixed maximum message size": "552 5.3.4 Message exceeds the size limit",
    "552 Error: Too much mail data": "552 5.3.4 Message too big for this system",
}


@dataclass(frozen=True, slots=True)
class ReceiverSettings:
    """Everything the receiver needs to know; see the module docstring for the bounds."""

    domain: str
    host: str = "127.0.0.1"
    port: int = 25
    banner_name: str | None = None
    max_size: int = DEFAULT_MAX_SIZE
    max_connections: int = 256
    max_recipients: int = 20
    idle_timeout: float = 60.0
    session_timeout: float = 600.0
    analyse: bool = True
    assess_sender: bool = True
    max_analyses: int = 8
    # record every connection (peer, EHLO, STARTTLS, SNI, verbs): the trap's positive evidence
    record_connections: bool = True
    # answer the first message of a new token with where to read the report (None: never)
    autoreply: AutoReplySettings | None = None
    # how DMARC finds policies and organisational domains: RFC 9989 tree walk or RFC 7489 PSL
    dmarc_discovery: DiscoveryMethod = DiscoveryMethod.TREEWALK
    assess_options: AssessOptions = field(default_factory=AssessOptions)
    # Full addresses (any domain) whose mail is handed to the report handler, e.g. the
    # `rua=mailto:` address that `mecsa harden` publishes. Configured explicitly: never a relay.
    report_addresses: frozenset[str] = frozenset()


class _Refuse(asyncio.Protocol):
    """Answers a connection over the limit with 421 and hangs up (RFC 5321 §3.8)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(b"421 4.3.2 Too many connections, try again later\r\n")
        transport.close()


class _BoundedSMTP(SMTP):
    """aiosmtpd's SMTP with a whole-session deadline, a close callback, enhanced 552 codes, and a
    log of the connection (`mecsa.mailmode.connections`): the verbs, STARTTLS, the SNI, the
    recipients, whether mail was delivered."""

    def __init__(
        self,
        handler: Any,
        on_close: Callable[[ConnectionLog | None], None],
        session_timeout: float,
        sni: Callable[[Any], str | None],
        **kw: Any,
    ) -> None:
        super().__init__(handler, **kw)
        self._on_close = on_close
        self._session_timeout = session_timeout
        self._deadline: asyncio.TimerHandle | None = None
        self._sni_of = sni
        self.log: ConnectionLog | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self._deadline is None  # STARTTLS calls this again with the TLS transport
        super().connection_made(transport)
        if first:
            self._deadline = self.loop.call_later(self._session_timeout, self._expire)
            peer = transport.get_extra_info("peername") or ("", 0)
            local = transport.get_extra_info("sockname") or ("", 0)
            self.log = ConnectionLog(str(peer[0]), str(local[0]))
        elif self.log is not None and self.session is not None:
            tls = _tls_info(self.session)
            self.log.tls_version = tls.version if tls else None

    def _expire(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, error: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        if self.log is not None and self.log.starttls and self.log.sni is None:
            # the handshake may have ended in an alert: the SNI was still seen by the callback
            self.log.sni = self._sni_of(getattr(self._tls_protocol, "_sslobj", None))
        try:
            super().connection_lost(error)
        finally:
            self._on_close(self.log)

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str):
            await super().push(_REPLY_REWRITES.get(status, status))
        else:
            await super().push(status)

    def _verb(self, verb: str) -> None:
        if self.log is not None:
            self.log.command(verb)

    async def smtp_HELO(self, hostname: str) -> None:
        self._verb("HELO")
        if self.log is not None:
            self.log.ehlo = hostname[:255]
        await super().smtp_HELO(hostname)

    async def smtp_EHLO(self, hostname: str) -> None:
        self._verb("EHLO")
        if self.log is not None:
            self.log.ehlo = hostname[:255]
        await super().smtp_EHLO(hostname)

    async def smtp_STARTTLS(self, arg: str) -> None:
        self._verb("STARTTLS")
        if self.log is not None:
            self.log.starttls = True
        await super().smtp_STARTTLS(arg)

    async def smtp_MAIL(self, arg: str | None) -> None:
        self._verb("MAIL")
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg: str | None) -> None:
        self._verb("RCPT")
        await super().smtp_RCPT(arg)

    async def smtp_DATA(self, arg: str) -> None:
        self._verb("DATA")
        await super().smtp_DATA(arg)

    async def smtp_RSET(self, arg: str) -> None:
        self._verb("RSET")
        await super().smtp_RSET(arg)

    async def smtp_QUIT(self, arg: str) -> None:
        self._verb("QUIT")
        await super().smtp_QUIT(arg)


def _tls_info(session: Any) -> TlsInfo | None:
    extra = session.ssl
    ssl_object = extra.get("ssl_object") if extra else None
    if ssl_object is None:
        return None
    name, _, bits = ssl_object.cipher() or ("", "", None)
    return TlsInfo(ssl_object.version() or "", name, bits)


class Receiver:
    """The SMTP receiver. `await start()`, then `port`; `await drain()` waits for background work."""

    def __init__(
        self,
        settings: ReceiverSettings,
        store: MailStore,
        client: DnsClient | None = None,
        tls_context: ssl.SSLContext | None = None,
        report_handler: ReportHandler | None = None,
    ) -> None:
        self.settings = settings
        self.report_handler = report_handler
        self.store = store
        self.client = client
        self.tls_context = tls_context
        self.active = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(settings.max_analyses)
        self._assessed: set[tuple[str, str]] = set()
        # SNI per TLS object, filled by the context's sni_callback (the names senders asked for)
        self._sni: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        if tls_context is not None:
            tls_context.sni_callback = self._remember_sni

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def _protocol(self) -> asyncio.Protocol:
        if self.active >= self.settings.max_connections:
            return _Refuse()
        self.active += 1
        s = self.settings
        return _BoundedSMTP(
            self,
            self._closed,
            s.session_timeout,
            self._sni_of,
            data_size_limit=s.max_size,
            hostname=s.banner_name or f"mx.{s.domain}",
            ident="mecsa mail-mode receiver",
            tls_context=self.tls_context,
            timeout=s.idle_timeout,
        )

    def _closed(self, log: ConnectionLog | None) -> None:
        self.active -= 1
        if log is None or not self.settings.record_connections:
            return
        self._background(self._store_connection(log.close()))

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _autoreply(self, tokens: list[str], mail_from: str, raw: bytes) -> None:
        """Tell the sender where to read the report (rules: `mecsa.mailmode.autoreply`)."""
        from email.parser import BytesHeaderParser

        from mecsa.mailmode.autoreply import Decision, autoreply_message, decide, send_autoreply

        settings = self.settings.autoreply
        assert settings is not None
        headers = BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
        now = dt.datetime.now(dt.UTC)
        decision = decide(mail_from, headers)
        if decision.reply:
            # persisted in the store: a restart does not reset it, and processes sharing the store share it
            allowed, reason = await self.store.claim_autoreply(
                mail_from, now, settings.min_interval, settings.max_per_hour
            )
            decision = Decision(allowed, reason)
        for token in tokens:
            entry: dict[str, Any] = {"recipient": mail_from, "decision": decision.reason}
            if decision.reply:
                reply = autoreply_message(
                    mail_from,
                    token,
                    settings,
                    now,
                    in_reply_to=headers.get("Message-ID"),
                    subject=" ".join(str(headers.get("Subject") or "").split())[:200] or None,
                )
                try:
                    entry |= await send_autoreply(mail_from, reply, self._client(), settings)
                except Exception as exc:  # a failed reply is recorded; the message itself is safe
                    entry |= {"sent": False, "reason": f"{type(exc).__name__}: {exc}"}
            else:
                entry["sent"] = False
            with contextlib.suppress(Exception):
                await self.store.add(token, "autoreply", entry)

    async def _store_connection(self, attempt: ConnectionAttempt) -> None:
        try:
            await self.store.add(CONNECTIONS_TOKEN, "connection", attempt.to_json())
        except Exception:  # a lost connection record weakens evidence; it must not stop the receiver
            log.exception("could not store a connection record")

    def _remember_sni(self, ssl_object: Any, server_name: str | None, context: Any) -> None:
        if server_name:
            self._sni[ssl_object] = server_name.lower()

    def _sni_of(self, ssl_object: Any) -> str | None:
        if ssl_object is None:
            return None
        try:
            return self._sni.get(ssl_object)
        except TypeError:  # not weak-referenceable
            return None

    async def start(self) -> Receiver:
        loop = asyncio.get_running_loop()
        s = self.settings
        self._server = await loop.create_server(
            self._protocol, s.host, s.port, backlog=max(128, s.max_connections)
        )
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
        await self.drain()

    async def drain(self) -> None:
        """Wait until every accepted message has been analysed and stored."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- aiosmtpd hooks --------------------------------------------------------------------------

    def _is_report_address(self, address: str) -> bool:
        return (
            self.report_handler is not None
            and address.strip().strip("<>").lower() in self.settings.report_addresses
        )

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self._is_report_address(address):
            if len(envelope.rcpt_tos) >= self.settings.max_recipients:
                return "452 4.5.3 Too many recipients"
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
            return "250 2.1.5 Report address ok"
        recipient = classify(address, self.settings.domain)
        if recipient.kind is AddressKind.RELAY:
            return "550 5.7.1 Relaying denied: this server accepts mail only for its test addresses"
        if recipient.kind is AddressKind.UNKNOWN_USER:
            return "550 5.1.1 No such user here"
        if len(envelope.rcpt_tos) >= self.settings.max_recipients:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        if isinstance(server, _BoundedSMTP) and server.log is not None:
            server.log.recipients.append(recipient.address)
        return "250 2.1.5 Recipient ok"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        report_rcpts = [r for r in envelope.rcpt_tos if self._is_report_address(r)]
        summary = ""
        if report_rcpts and self.report_handler is not None:
            raw_report: bytes = envelope.original_content or b""
            peer = session.peer or ("", 0)
            try:
                summary = await self.report_handler(raw_report, f"smtp:{peer[0]}:{','.join(report_rcpts)}")
            except Exception as exc:  # the store: the sender must retry, not lose the reports
                log.exception("could not ingest a report mail")
                return f"451 4.3.0 Could not ingest the report ({type(exc).__name__}); try again later"
            if len(report_rcpts) == len(envelope.rcpt_tos):
                return f"250 2.0.0 Report mail: {summary}"
            envelope.rcpt_tos = [r for r in envelope.rcpt_tos if r not in report_rcpts]
        recipients = [classify(r, self.settings.domain) for r in envelope.rcpt_tos]
        tokens = sorted({r.token for r in recipients if r.token}) or [new_token()]
        peer = session.peer or ("", 0)
        mail_from = "" if envelope.mail_from in (None, "<>") else str(envelope.mail_from)
        connection = Connection(
            str(peer[0]),
            int(peer[1]),
            session.host_name or "",
            mail_from,
            tuple(envelope.rcpt_tos),
            _tls_info(session),
            dt.datetime.now(dt.UTC),
        )
        raw: bytes = envelope.original_content or b""
        record = {
            "connection": connection.to_json(),
            "recipients": [_recipient_json(r) for r in recipients],
            "header_recipients": list(header_recipients(raw)),
            "size": len(raw),
        }
        try:
            new = [t for t in tokens if not await self.store.has(t)]
            ids = [await self.store.add(token, "delivery", record, raw) for token in tokens]
        except Exception as exc:  # the disk, the database: the sender must retry, not lose the mail
            log.exception("could not store a message")
            return f"451 4.3.0 Could not store the message ({type(exc).__name__}); try again later"
        if self.settings.analyse:
            task = asyncio.ensure_future(self._process(tokens, ids, raw, connection))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        graded = any(r.kind in (AddressKind.CONTROL, AddressKind.FIXED) for r in recipients)
        if self.settings.autoreply is not None and new and graded:
            self._background(self._autoreply(new, mail_from, raw))
        if isinstance(server, _BoundedSMTP) and server.log is not None:
            server.log.delivered = True
        return f"250 2.0.0 Stored for report {' '.join(tokens)}"

    # --- after the 250 ---------------------------------------------------------------------------

    async def _process(self, tokens: list[str], ids: list[int], raw: bytes, connection: Connection) -> None:
        async with self._slots:
            try:
                await self._analyse(tokens, ids, raw, connection)
            except Exception as exc:  # never lose a message silently: record why analysis stopped
                log.exception("analysis failed")
                for token, delivery in zip(tokens, ids, strict=True):
                    error = {
                        "delivery": delivery,
                        "stage": "analysis",
                        "error": f"{type(exc).__name__}: {exc}",
                    }
                    with contextlib.suppress(Exception):
                        await self.store.add(token, "error", error)

    async def _analyse(self, tokens: list[str], ids: list[int], raw: bytes, connection: Connection) -> None:
        from mecsa.mailmode.outbound import outbound_json

        client = self._client()
        analysis = await analyse_message(raw, connection, Resolver(client), self.settings.dmarc_discovery)
        domain = analysis.sender.domain or analysis.spf_domain
        data = {"analysis": analysis.to_json(), "outbound": outbound_json(domain, analysis)}
        for token, delivery in zip(tokens, ids, strict=True):
            await self.store.add(token, "analysis", {"delivery": delivery, **data})
        if self.settings.assess_sender and domain:
            await self._assess(tokens, domain, client, verified_selectors(analysis, domain))

    async def _assess(
        self, tokens: list[str], domain: str, client: DnsClient, selectors: tuple[str, ...] = ()
    ) -> None:
        from mecsa.assess import assess
        from mecsa.checks.registry import remedies
        from mecsa.fixes import fixes_for
        from mecsa.report.json import assessment_to_json

        todo = [t for t in tokens if (t, domain) not in self._assessed]
        if not todo:
            return
        self._assessed.update((t, domain) for t in todo)
        options = self.settings.assess_options
        # the selector that just verified is one the domain uses: ask for it, besides the usual list
        given = tuple(dict.fromkeys((*options.dkim_selectors, *selectors)))
        assessment = await assess(domain, client, replace(options, dkim_selectors=given))
        data = assessment_to_json(assessment)
        fixes = [f.to_json() for f in fixes_for(assessment, builders=remedies())]
        for token in todo:
            entry = {"domain": domain, "assessment": data, "fixes": fixes, "dkim_selectors": list(selectors)}
            await self.store.add(token, "assessment", entry)

    def _client(self) -> DnsClient:
        if self.client is None:
            self.client = DnsClient()
        return self.client


def verified_selectors(analysis: MessageAnalysis, domain: str) -> tuple[str, ...]:
    """The selectors of the message's verified DKIM signatures for `domain` (d= equal to it)."""
    return tuple(
        dict.fromkeys(
            s.selector.lower()
            for s in analysis.dkim
            if s.result.value == "pass" and s.selector and (s.domain or "").lower() == domain
        )
    )


def _recipient_json(r: Recipient) -> dict[str, Any]:
    return {"address": r.address, "kind": r.kind.value, "token": r.token}


def server_tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """The receiver's STARTTLS context. It accepts every protocol version the local OpenSSL can
    speak (SECLEVEL=0), because the point is to *measure* what senders use, not to refuse them."""
    import warnings

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    context.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    return context
