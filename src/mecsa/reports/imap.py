"""Report mails from an IMAP mailbox (RFC 9051/3501), over TLS only, read-only.

`imaps://USER@HOST[:PORT]/MAILBOX` connects with TLS from the first byte (port 993);
`imap://USER@HOST[:PORT]/MAILBOX` connects to port 143 and requires STARTTLS before LOGIN
(RFC 8314 prefers the first; a server without STARTTLS is refused, never spoken to in clear).
The mailbox is opened with EXAMINE (read-only) and messages are fetched with BODY.PEEK[], so
nothing is marked \\Seen: ingestion is repeatable and duplicates are recognised by the store.
The password never goes in the URL (it would show in `ps` and shell history).
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from mecsa.reports.limits import ReportError


class ImapError(ReportError):
    """The IMAP server could not be used (connection, TLS, login, mailbox)."""


@dataclass(frozen=True, slots=True)
class ImapSource:
    host: str
    port: int
    user: str
    mailbox: str = "INBOX"
    implicit_tls: bool = True
    search: str = "ALL"

    @property
    def label(self) -> str:
        scheme = "imaps" if self.implicit_tls else "imap"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{self.mailbox}"


def parse_imap_url(url: str, search: str = "ALL") -> ImapSource:
    """An `ImapSource` from `imaps://user@host[:port]/mailbox`; ValueError with the reason."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("imaps", "imap"):
        raise ValueError(f"{url!r}: the URL must start with imaps:// (or imap:// for STARTTLS)")
    if parts.password is not None:
        raise ValueError("no password in the URL: give it in MECSA_IMAP_PASSWORD or --imap-password-file")
    if not parts.hostname or not parts.username:
        raise ValueError(f"{url!r}: expected imaps://USER@HOST[:PORT]/MAILBOX")
    try:
        port = parts.port or (993 if parts.scheme == "imaps" else 143)
    except ValueError as exc:
        raise ValueError(f"{url!r}: bad port") from exc
    mailbox = unquote(parts.path.lstrip("/")) or "INBOX"
    if not re.fullmatch(r"[A-Z]+( [A-Z]+)*", search):
        raise ValueError(f"IMAP search {search!r}: give search keys such as ALL or UNSEEN")
    return ImapSource(parts.hostname, port, unquote(parts.username), mailbox, parts.scheme == "imaps", search)


def _quote(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def fetch_messages(
    source: ImapSource,
    password: str,
    context: ssl.SSLContext,
    *,
    timeout: float = 30.0,
    max_message: int,
) -> Iterator[tuple[str, bytes | None]]:
    """(name, raw bytes) of every message the search finds; None for a mail over `max_message`
    octets, which is not fetched (the intake reports it)."""
    try:
        if source.implicit_tls:
            client: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                source.host, source.port, ssl_context=context, timeout=timeout
            )
        else:
            client = imaplib.IMAP4(source.host, source.port, timeout=timeout)
            if "STARTTLS" not in client.capabilities:
                client.shutdown()
                raise ImapError(f"{source.label}: the server offers no STARTTLS; refusing to log in in clear")
            client.starttls(ssl_context=context)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise ImapError(f"{source.label}: cannot connect over TLS: {exc}") from exc
    try:
        try:
            client.login(source.user, password)
        except imaplib.IMAP4.error as exc:
            raise ImapError(f"{source.label}: login refused: {exc}") from exc
        status, _ = client.select(_quote(source.mailbox), readonly=True)
        if status != "OK":
            raise ImapError(f"{source.label}: no such mailbox")
        status, found = client.uid("SEARCH", source.search)
        if status != "OK":
            raise ImapError(f"{source.label}: SEARCH {source.search} failed")
        uids = b" ".join(x for x in found if isinstance(x, bytes)).split()
        for uid in uids:
            name = f"{source.label};UID={uid.decode()}"
            size = _size(client, uid)
            if size is not None and size > max_message:
                yield name, None
                continue
            status, data = client.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
            raw = next((item[1] for item in data if isinstance(item, tuple)), None)
            if status == "OK" and isinstance(raw, bytes):
                yield name, raw
    except (OSError, imaplib.IMAP4.error) as exc:
        raise ImapError(f"{source.label}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            client.logout()


def _size(client: imaplib.IMAP4, uid: bytes) -> int | None:
    status, data = client.uid("FETCH", uid.decode(), "(RFC822.SIZE)")
    if status != "OK":
        return None
    for item in data:
        text = item if isinstance(item, bytes) else b""
        match = re.search(rb"RFC822\.SIZE (\d+)", text)
        if match:
            return int(match.group(1))
    return None
