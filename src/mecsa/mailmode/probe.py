"""The probe: send one test mail straight to the user's MX and record what its inbound side offered.

Per MX host (by preference, until one takes the mail):

1. the transport probe (`mecsa.probes.smtp.probe_smtp`) records the banner, EHLO, STARTTLS, the TLS
   version and cipher and the presented chain, exactly as domain mode does;
2. DANE: the TLSA RRset at `_<port>._tcp.<host>` (after secure CNAME expansion), used only when it
   and the host's address records are DNSSEC-secure, matched as domain mode's dane check matches
   them (`mecsa.certs`); PKIX against `--ca-file` (or the system bundle) with
   `mecsa.certs.verify_chain`, for information;
3. delivery with aiosmtplib, with STARTTLS whenever offered (the probe never sends in clear text
   what it could encrypt; certificates are recorded, not enforced, so that they can be graded).

The mail has a Reply-To that names the control address and both trap addresses of one token
(see `mecsa.mailmode.enforcement`), so that the user's reply joins the same report and runs
the enforcement tests.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime
from typing import Any

from mecsa.certs import (
    DaneProblem,
    certificate_names,
    dane_applicability,
    load_anchors,
    match_record,
    name_matches,
    parse_chain,
    verify_chain,
)
from mecsa.dns.resolver import DnsClient, Resolver
from mecsa.mailmode.addresses import AddressKind, control_address, trap_address
from mecsa.mailmode.signing import DkimSigner
from mecsa.observe import Context
from mecsa.observe.mx import MxHost, observe_mx
from mecsa.observe.tlsa import lookup_tlsa
from mecsa.probes.smtp import SmtpObservation, SmtpTimeouts, probe_context, probe_smtp


@dataclass(frozen=True, slots=True)
class DaneMatch:
    """DANE for the MX host: `status` is matched / no_match / not_secure / no_tlsa / error / no_tls."""

    status: str
    reason: str
    records: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "records": list(self.records)}


_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")
# RFC 3463 §3: the subject (second number) of an enhanced status code, in plain words
_SUBJECTS = {
    "0": "for a reason the server did not classify",
    "1": "because of the address",
    "2": "because of the recipient's mailbox",
    "3": "because of the receiving system",
    "4": "because of the network or routing",
    "5": "because of the mail protocol",
    "6": "because of the message's content",
    "7": "by the server's security or policy",
}


@dataclass(frozen=True, slots=True)
class Delivery:
    """How the probe mail's delivery went: the reply code, RFC 3463 enhanced status and text,
    and, when it was refused, what happened in plain words."""

    accepted: bool
    code: int | None
    reply: str
    tls_version: str | None = None
    tls_cipher: str | None = None
    enhanced_status: str | None = None
    stage: str | None = None  # the SMTP command the server refused: MAIL, RCPT or DATA

    @property
    def explanation(self) -> str:
        """The outcome in plain words."""
        if self.accepted:
            return "the provider's server accepted the probe"
        if self.code is None:
            return f"the probe could not be delivered: the connection failed ({self.reply})"
        kind = "refused the probe for good" if self.code >= 500 else "asked to try the probe again later"
        stage = f" at {self.stage}" if self.stage else ""
        subject = ""
        if self.enhanced_status:
            subject = " " + _SUBJECTS.get(self.enhanced_status.split(".")[1], _SUBJECTS["0"])
        return f"the provider's server {kind}{stage}{subject} ({self.code} {self.reply})"

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "code": self.code,
            "reply": self.reply,
            "enhanced_status": self.enhanced_status,
            "stage": self.stage,
            "explanation": self.explanation,
            "tls_version": self.tls_version,
            "tls_cipher": self.tls_cipher,
        }


def refused(
    code: int, message: str, stage: str | None, tls: tuple[str | None, str | None] = (None, None)
) -> Delivery:
    """A refusal: the reply's text with its RFC 3463 enhanced status code split off."""
    text = " ".join(message.split())
    match = _ENHANCED.match(text)
    enhanced = ".".join(match.groups()) if match else None
    if match:
        text = text[match.end() :].strip()
    return Delivery(False, code, text, tls[0], tls[1], enhanced, stage)


@dataclass(frozen=True, slots=True)
class HostAttempt:
    """One MX address: the transport observation, DANE, PKIX, and the delivery (when tried)."""

    host: str
    session: SmtpObservation
    dane: DaneMatch
    pkix: tuple[bool, str] | None
    delivery: Delivery | None

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "session": self.session.to_json(),
            "dane": self.dane.to_json(),
            "pkix": {"valid": self.pkix[0], "reason": self.pkix[1]} if self.pkix else None,
            "delivery": self.delivery.to_json() if self.delivery else None,
        }


@dataclass(frozen=True, slots=True)
class ProbeResult:
    token: str
    recipient: str
    sender: str
    mx_error: str | None
    attempts: tuple[HostAttempt, ...]
    sent_at: dt.datetime

    @property
    def delivered(self) -> bool:
        return any(a.delivery is not None and a.delivery.accepted for a in self.attempts)

    def to_json(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "recipient": self.recipient,
            "sender": self.sender,
            "mx_error": self.mx_error,
            "delivered": self.delivered,
            "attempts": [a.to_json() for a in self.attempts],
            "sent_at": self.sent_at.isoformat(),
        }


def probe_message(recipient: str, token: str, test_domain: str, now: dt.datetime) -> bytes:
    """The probe mail: From and Reply-To at the receiver, naming the control and both traps."""
    msg = EmailMessage(policy=SMTP_POLICY)
    sender = control_address(token, test_domain)
    msg["From"] = f"MECSA mail-mode test <{sender}>"
    msg["To"] = recipient
    msg["Reply-To"] = ", ".join(
        (
            sender,
            trap_address(token, test_domain, AddressKind.DANE_TRAP),
            trap_address(token, test_domain, AddressKind.STS_TRAP),
        )
    )
    msg["Subject"] = f"MECSA mail-mode test {token}"
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<{token}.{int(now.timestamp())}@{test_domain}>"
    msg["X-Mecsa-Token"] = token
    msg.set_content(
        "This message tests how your mail provider receives mail.\n\n"
        "Please reply to it (to all addresses in Reply-To, without removing any), so that the\n"
        "test can also see how your provider sends mail: STARTTLS, SPF, DKIM, DMARC and whether\n"
        "it enforces DANE and MTA-STS.\n\n"
        f"Report token: {token}\n"
    )
    return msg.as_bytes()


async def _dane(resolver: Resolver, host: MxHost, port: int, session: SmtpObservation) -> DaneMatch:
    """DANE for the MX host that took the probe, judged as domain mode's dane check judges it.

    The same TLSA lookup (secure CNAME expansion, RFC 7672 §2.2.2) and the same applicability and
    matching rules, from `mecsa.observe.tlsa` and `mecsa.certs`.
    """
    lookup = await lookup_tlsa(resolver, host, port)
    state = dane_applicability(lookup.answer, host.name, (host.a, host.aaaa))
    texts = tuple(str(r) for r in state.records)
    if state.problem is not None:
        label = {
            DaneProblem.NO_TLSA: "no_tlsa",
            DaneProblem.NOT_SECURE: "not_secure",
            DaneProblem.ADDRESS_NOT_SECURE: "not_secure",
            DaneProblem.TLSA_BOGUS: "not_secure",
        }.get(state.problem, "error")
        return DaneMatch(label, state.why, texts)
    if session.tls is None or not session.tls.chain:
        return DaneMatch("no_tls", "no TLS session to match the TLSA records against", texts)
    chain = parse_chain(session.tls.chain)
    if isinstance(chain, str):
        return DaneMatch("error", chain, texts)
    now = dt.datetime.now(dt.UTC)
    results = [match_record(r, chain, lookup.names, now) for r in state.usable]
    hit = next((r for r in results if r.matched), None)
    if hit is not None:
        return DaneMatch("matched", f"{hit.record}: {hit.note}", texts)
    notes = "; ".join(f"{r.record}: {r.note}" for r in results) or "no usable TLSA record"
    return DaneMatch("no_match", notes, texts)


def _pkix(session: SmtpObservation, host: str, ca_file: str | None) -> tuple[bool, str] | None:
    if session.tls is None or not session.tls.chain:
        return None
    chain = parse_chain(session.tls.chain)
    if isinstance(chain, str):
        return False, chain
    anchors = load_anchors(ca_file)
    ok, reason, _ = verify_chain(chain[0], chain[1:], anchors.certificates, dt.datetime.now(dt.UTC))
    if not ok:
        return False, reason
    names, _ = certificate_names(chain[0])
    if not any(name_matches(n, host) for n in names):
        return False, f"the certificate names none of {host}"
    return True, f"chains to {anchors.source} and names {host}"


async def deliver(
    host: str,
    address: str,
    port: int,
    sender: str,
    recipient: str,
    raw: bytes,
    smtp_timeout: float,
    ehlo: str,
) -> Delivery:
    import aiosmtplib

    smtp = aiosmtplib.SMTP(
        hostname=address, port=port, start_tls=False, timeout=smtp_timeout, local_hostname=ehlo
    )
    try:
        await smtp.connect()
        await smtp.ehlo()
        if smtp.supports_extension("starttls"):
            await smtp.starttls(server_hostname=host, tls_context=probe_context())
        ssl_object = smtp.get_transport_info("ssl_object")
        version = ssl_object.version() if isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket) else None
        cipher = ssl_object.cipher()[0] if version else None
        tls = (version, cipher)
        try:
            rejected, reply = await smtp.sendmail(sender, [recipient], raw)
        except aiosmtplib.SMTPRecipientsRefused as exc:  # every recipient refused: the first says why
            first = exc.recipients[0]
            return refused(first.code, first.message, "RCPT", tls)
        except aiosmtplib.SMTPSenderRefused as exc:
            return refused(exc.code, exc.message, "MAIL", tls)
        except aiosmtplib.SMTPDataError as exc:
            return refused(exc.code, exc.message, "DATA", tls)
        if rejected:
            (bad,) = rejected.values()
            return refused(bad.code, bad.message, "RCPT", tls)
        return Delivery(True, 250, " ".join(reply.split()), version, cipher)
    except aiosmtplib.SMTPResponseException as exc:
        return refused(exc.code, exc.message, None)
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return Delivery(False, None, f"{type(exc).__name__}: {exc}")
    finally:
        if smtp.is_connected:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                smtp.close()


async def run_probe(
    recipient: str,
    test_domain: str,
    token: str,
    client: DnsClient,
    *,
    port: int = 25,
    smtp_timeout: float = 10.0,
    ca_file: str | None = None,
    ehlo_name: str | None = None,
    signer: DkimSigner | None = None,
) -> ProbeResult:
    """Send the probe mail to `recipient`'s MX hosts in preference order until one takes it.

    With `signer` (d= the test domain) the probe is DKIM-signed and DMARC-aligned; sent from an
    address in the test domain's SPF, it is then accepted by receivers that enforce DMARC.
    """
    now = dt.datetime.now(dt.UTC)
    sender = control_address(token, test_domain)
    domain = recipient.rpartition("@")[2].lower().rstrip(".")
    resolver = Resolver(client)
    mx = await observe_mx(Context(domain, resolver))
    if mx.mx.failed:
        return ProbeResult(token, recipient, sender, mx.mx.describe_failure(), (), now)
    if not mx.receives_mail:
        return ProbeResult(token, recipient, sender, f"{domain} has no usable MX host", (), now)
    raw = probe_message(recipient, token, test_domain, now)
    if signer is not None:
        raw = signer.sign(raw)
    ehlo = ehlo_name or f"mx.{test_domain}"
    attempts: list[HostAttempt] = []
    for host in mx.hosts:
        for address in host.addresses:
            session = await probe_smtp(
                host.name, address, port, timeouts=SmtpTimeouts.from_base(smtp_timeout), ehlo_name=ehlo
            )
            dane, delivery = await asyncio.gather(
                _dane(resolver, host, port, session),
                deliver(host.name, address, port, sender, recipient, raw, smtp_timeout, ehlo)
                if session.reachable
                else _none(),
            )
            attempts.append(
                HostAttempt(host.name, session, dane, _pkix(session, host.name, ca_file), delivery)
            )
            if delivery is not None and (delivery.accepted or (delivery.code or 0) >= 500):
                return ProbeResult(token, recipient, sender, None, tuple(attempts), now)
    return ProbeResult(token, recipient, sender, None, tuple(attempts), now)


async def _none() -> None:
    return None
