"""The auto-reply: the user learns their token and where to read the report.

The receiver answers the envelope sender of the first message under a new token with the
report's link (when a web address is configured) or the command to run. Rules (RFC 3834):

- never to a null reverse path `<>` (§2: it would answer a bounce), to MAILER-DAEMON, postmaster
  or other addresses that look automated (no-reply, bounces, list owners and -request addresses);
- never to a message that is itself automatic: `Auto-Submitted` other than `no` (§5), or
  `Precedence: bulk/list/junk`, or a mailing list's `List-Id` / `List-Unsubscribe`;
- the reply carries `Auto-Submitted: auto-replied` (§5) and `In-Reply-To`/`References` (§3.1.5),
  is sent with the null reverse path (§3.3, so that nothing can answer it back in a loop), and
  is DKIM-signed by the test domain (aligned with its From, so DMARC passes);
- at most one reply per recipient per `min_interval` (§2: "a responder MUST NOT respond more
  than once ... within a period"), and at most `max_per_hour` replies in all.

`decide` and `limit_decision` are pure (the store keeps the limiter: `MailStore.claim_autoreply`);
`send_autoreply` does the delivery.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, make_msgid
from typing import Any

from mecsa.mailmode.signing import DkimSigner

# Local parts that belong to software, not people (RFC 3834 §2; RFC 2142 role accounts that send)
_AUTOMATED_LOCAL = re.compile(
    r"^(mailer-daemon|postmaster|no-?reply|do-?not-?reply|bounces?|bounce[-+].*|.*-bounces?|"
    r"owner-.*|.*-owner|.*-request|listserv|majordomo|daemon|root)$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class AutoReplySettings:
    """How the receiver replies. `report_url` holds `{token}` (e.g. https://mecsa.example/r/{token})."""

    signer: DkimSigner
    report_url: str | None = None
    min_interval: dt.timedelta = dt.timedelta(hours=1)
    max_per_hour: int = 200
    smtp_timeout: float = 20.0
    port: int = 25


@dataclass(frozen=True, slots=True)
class Decision:
    reply: bool
    reason: str


def decide(mail_from: str, headers: Message | Mapping[str, str]) -> Decision:
    """Whether the message with envelope sender `mail_from` and these header fields may be answered."""
    sender = mail_from.strip().strip("<>")
    if not sender:
        return Decision(False, "null reverse path <>: a bounce is never answered (RFC 3834 §2)")
    local, at, domain = sender.rpartition("@")
    if not at or not local or not domain:
        return Decision(False, f"envelope sender {sender!r} is not an address")
    if _AUTOMATED_LOCAL.match(local):
        return Decision(False, f"{sender} looks automated: not answered (RFC 3834 §2)")
    auto = str(headers.get("Auto-Submitted") or "").strip().lower()
    if auto and not auto.startswith("no"):
        return Decision(False, f"Auto-Submitted: {auto}: automatic mail is not answered (RFC 3834 §5)")
    precedence = str(headers.get("Precedence") or "").strip().lower()
    if precedence in ("bulk", "list", "junk"):
        return Decision(False, f"Precedence: {precedence}: not answered")
    for name in ("List-Id", "List-Unsubscribe"):
        if headers.get(name) is not None:
            return Decision(False, f"{name} present: mailing-list mail is not answered")
    return Decision(True, f"reply to {sender}")


def limiter_key(recipient: str) -> str:
    """The limiter's key for an envelope sender: the address without brackets, lower-cased."""
    return recipient.strip().strip("<>").lower()


def limit_decision(
    key: str,
    last: dt.datetime | None,
    replies_last_hour: int,
    now: dt.datetime,
    min_interval: dt.timedelta,
    max_per_hour: int,
) -> Decision:
    """The rate rule (pure): one reply per recipient per `min_interval` (RFC 3834 §2), and at most
    `max_per_hour` in all. `last`: when `key` was last answered; the count is over every recipient."""
    if last is not None and now - last < min_interval:
        minutes = int(min_interval.total_seconds() // 60)
        return Decision(False, f"{key} was answered less than {minutes} min ago: rate-limited")
    if replies_last_hour >= max_per_hour:
        return Decision(False, f"{max_per_hour} replies in the last hour: rate-limited")
    return Decision(True, f"reply to {key}")


@dataclass
class AutoReplyLimiter:
    """The rate rule over memory (a restart forgets). The receiver uses the persistent one,
    `MailStore.claim_autoreply`, with the same rule (`limit_decision`)."""

    min_interval: dt.timedelta
    max_per_hour: int
    _last: dict[str, dt.datetime] = field(default_factory=dict)
    _recent: deque[dt.datetime] = field(default_factory=deque)

    def allow(self, recipient: str, now: dt.datetime) -> Decision:
        key = limiter_key(recipient)
        while self._recent and now - self._recent[0] >= dt.timedelta(hours=1):
            self._recent.popleft()
        decision = limit_decision(
            key, self._last.get(key), len(self._recent), now, self.min_interval, self.max_per_hour
        )
        if decision.reply:
            self._last[key] = now
            self._recent.append(now)
        return decision


def where_to_read(token: str, report_url: str | None) -> str:
    """The link to the report, or the command that prints it."""
    if report_url:
        return report_url.replace("{token}", token)
    return f"mecsa mailmode report {token}"


def autoreply_message(
    recipient: str,
    token: str,
    settings: AutoReplySettings,
    now: dt.datetime,
    *,
    in_reply_to: str | None = None,
    subject: str | None = None,
) -> bytes:
    """The signed auto-reply to `recipient` for report `token`."""
    domain = settings.signer.domain
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = f"MECSA mail-mode test <{token}@{domain}>"
    msg["To"] = recipient
    msg["Subject"] = f"Re: {subject}" if subject else f"Your MECSA mail-mode report {token}"
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(idstring=token, domain=domain)
    msg["Auto-Submitted"] = "auto-replied"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg["X-Mecsa-Token"] = token
    msg.set_content(
        "Your message reached the MECSA mail-mode test. It is being analysed: how your provider\n"
        "sent it (STARTTLS, SPF, DKIM, DMARC).\n\n"
        f"Your report: {where_to_read(token, settings.report_url)}\n\n"
        "This is an automatic reply; replies to it are not read.\n"
    )
    return settings.signer.sign(msg.as_bytes())


async def send_autoreply(
    recipient: str, raw: bytes, client: Any, settings: AutoReplySettings
) -> dict[str, Any]:
    """Deliver `raw` to `recipient`'s MX hosts in preference order, from the null reverse path."""
    from mecsa.dns.resolver import Resolver
    from mecsa.mailmode.probe import deliver
    from mecsa.observe import Context
    from mecsa.observe.mx import observe_mx

    domain = recipient.rpartition("@")[2].lower().rstrip(".")
    mx = await observe_mx(Context(domain, Resolver(client)))
    if mx.mx.failed or not mx.receives_mail:
        return {"recipient": recipient, "sent": False, "reason": f"{domain}: no usable MX host"}
    ehlo = f"mx.{settings.signer.domain}"
    last: dict[str, Any] = {"recipient": recipient, "sent": False, "reason": "no MX address"}
    for host in mx.hosts:
        for address in host.addresses:
            d = await deliver(
                host.name, address, settings.port, "", recipient, raw, settings.smtp_timeout, ehlo
            )
            last = {"recipient": recipient, "sent": d.accepted, "host": host.name, "delivery": d.to_json()}
            if d.accepted or (d.code or 0) >= 500:
                return last
    return last
