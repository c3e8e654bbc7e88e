"""Notifiers: stdout (for cron), e-mail over SMTP with STARTTLS, and a webhook (a JSON POST).

One pass sends each notifier at most one message per domain, holding everything that changed for
that domain (new, changed, resolved, events). Text that came from the network (finding messages,
evidence) is escaped before a terminal or a mail body sees it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import os
import ssl
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any, Protocol, TextIO

from mecsa.monitor.state import Change, Pending
from mecsa.monitor.watchlist import NotifierConfig

SIGNATURE_HEADER = "X-Mecsa-Signature"  # "sha256=" + hex HMAC-SHA256 of the exact body
_MARK = {Change.NEW: "NEW", Change.CHANGED: "CHANGED", Change.RESOLVED: "RESOLVED", Change.EVENT: "CHANGE"}


class NotifyError(Exception):
    """A message could not be delivered (one line: the notifier and the reason)."""


def clean(text: str) -> str:
    """One printable line: control and format characters (ESC, bidi overrides, newlines) escaped."""
    return "".join(
        c if unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp") else repr(c)[1:-1] for c in text
    )


@dataclass(frozen=True, slots=True)
class Notice:
    """Everything one notifier is told about one domain in one pass."""

    domain: str
    items: tuple[Pending, ...]
    sent_at: dt.datetime

    def counts(self) -> dict[Change, int]:
        out = dict.fromkeys(Change, 0)
        for p in self.items:
            out[p.change] += 1
        return out

    def subject(self) -> str:
        parts = [f"{n} {c.value}" for c, n in self.counts().items() if n]
        return f"[mecsa monitor] {self.domain}: {', '.join(parts)}"

    def to_json(self) -> dict[str, Any]:
        from mecsa import __version__

        return {
            "domain": self.domain,
            "sent_at": self.sent_at.isoformat(),
            "mecsa_version": __version__,
            "alerts": [{"change": p.change.value, **p.stored.to_json()} for p in self.items],
        }

    def text(self) -> str:
        lines = [self.subject(), ""]
        for p in self.items:
            a = p.stored.alert
            lines.append(f"{_MARK[p.change]} [{a.severity.value}] {clean(a.message)}")
            lines.append(f"  alert: {clean(a.key)}")
            if p.change is Change.RESOLVED:
                continue
            lines.extend(f"  evidence: {clean(e)}" for e in a.evidence)
            for fix in a.fixes:
                lines.append(f"  fix: {clean(fix.title)}")
                for where, snippet in fix.snippets:
                    lines.append(f"    in {clean(where)}:")
                    lines.extend(f"      {clean(line)}" for line in snippet.splitlines())
        return "\n".join(lines) + "\n"


class Notifier(Protocol):
    @property
    def name(self) -> str: ...

    async def send(self, notice: Notice) -> None: ...


@dataclass(slots=True)
class StdoutNotifier:
    name: str
    stream: TextIO | None = None

    async def send(self, notice: Notice) -> None:
        out = self.stream or sys.stdout
        out.write(notice.text())
        out.flush()


@dataclass(frozen=True, slots=True)
class WebhookNotifier:
    name: str
    url: str
    secret: bytes | None
    timeout: float = 10.0

    async def send(self, notice: Notice) -> None:
        import httpx

        body = json.dumps(notice.to_json(), ensure_ascii=False, sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "mecsa-monitor"}
        if self.secret is not None:
            headers[SIGNATURE_HEADER] = signature(self.secret, body)
        try:
            async with httpx.AsyncClient(
                timeout=self.timeout, follow_redirects=False, trust_env=False
            ) as client:
                response = await client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise NotifyError(f"{self.name}: POST {self.url} failed: {type(exc).__name__}: {exc}") from None
        if not 200 <= response.status_code < 300:
            raise NotifyError(f"{self.name}: POST {self.url} answered HTTP {response.status_code}")


def signature(secret: bytes, body: bytes) -> str:
    """The value of X-Mecsa-Signature for `body`: what a receiver compares (hmac.compare_digest)."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class EmailNotifier:
    """SMTP submission with STARTTLS, always: a server that does not offer it is not sent to."""

    name: str
    config: NotifierConfig
    password: str | None = None

    def message(self, notice: Notice) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.config.sender
        msg["To"] = ", ".join(self.config.recipients)
        msg["Subject"] = notice.subject()
        msg["Date"] = format_datetime(notice.sent_at)
        msg["Message-ID"] = make_msgid(domain=self.config.sender.rpartition("@")[2] or None)
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834 §5: no auto-replies to this
        msg.set_content(notice.text())
        msg.add_attachment(
            json.dumps(notice.to_json(), ensure_ascii=False, indent=1).encode(),
            maintype="application",
            subtype="json",
            filename="alerts.json",
        )
        return msg

    async def send(self, notice: Notice) -> None:
        import aiosmtplib

        c = self.config
        context = ssl.create_default_context(cafile=c.ca_file)
        smtp = aiosmtplib.SMTP(hostname=c.host, port=c.port, start_tls=False, timeout=c.timeout)
        try:
            await smtp.connect()
            await smtp.ehlo()
            if not smtp.supports_extension("starttls"):
                raise NotifyError(
                    f"{self.name}: {c.host}:{c.port} offers no STARTTLS: nothing sent in clear text"
                )
            await smtp.starttls(tls_context=context)
            if c.username:
                await smtp.login(c.username, self.password or "")
            await smtp.send_message(self.message(notice), sender=c.sender, recipients=list(c.recipients))
        except aiosmtplib.SMTPException as exc:
            raise NotifyError(f"{self.name}: SMTP {c.host}:{c.port}: {clean(str(exc))}") from None
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise NotifyError(f"{self.name}: SMTP {c.host}:{c.port}: {type(exc).__name__}: {exc}") from None
        finally:
            if smtp.is_connected:
                try:
                    await asyncio.wait_for(smtp.quit(), c.timeout)
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    smtp.close()


def build_notifiers(configs: Sequence[NotifierConfig], stdout: TextIO | None = None) -> dict[str, Notifier]:
    """The notifiers of the watch list; secrets are read from the environment variables it names."""
    out: dict[str, Notifier] = {}
    for c in configs:
        if c.type == "stdout":
            out[c.name] = StdoutNotifier(c.name, stdout)
        elif c.type == "webhook":
            secret = _env(c.secret_env, c.name) if c.secret_env else None
            out[c.name] = WebhookNotifier(
                c.name, c.url, secret.encode() if secret is not None else None, c.timeout
            )
        else:
            password = _env(c.password_env, c.name) if c.password_env else None
            out[c.name] = EmailNotifier(c.name, c, password)
    return out


def _env(variable: str | None, notifier: str) -> str:
    assert variable is not None
    value = os.environ.get(variable)
    if value is None:
        raise NotifyError(f"{notifier}: the environment variable {variable} is not set")
    return value
