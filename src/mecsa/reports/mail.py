"""Report mails: the attachments that carry reports, and the mailboxes that hold such mails.

RFC 9990 §"Email" puts the aggregate report in an attachment of type `application/gzip` (or
`text/xml`); RFC 8460 §5.3 uses `application/tlsrpt+gzip` or `application/tlsrpt+json`. Senders
also use zip and `application/octet-stream`, so any part with one of those types, or with a
report file name, is tried; the payload's own bytes then decide what it is (`unpack`).
Forwarded reports (`message/rfc822` parts) are searched too.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

REPORT_TYPES = frozenset(
    {
        "application/gzip",
        "application/x-gzip",
        "application/zip",
        "application/x-zip",
        "application/x-zip-compressed",
        "application/xml",
        "text/xml",
        "application/json",
        "application/tlsrpt+json",
        "application/tlsrpt+gzip",
        "application/octet-stream",
    }
)
REPORT_SUFFIXES = (".xml", ".xml.gz", ".gz", ".zip", ".json", ".json.gz")
_HEADER_LINE = re.compile(rb"^[!-9;-~]+:")  # RFC 5322 §2.2 field name, then ':'


@dataclass(frozen=True, slots=True)
class Attachment:
    """One candidate report part of a mail."""

    filename: str
    content_type: str
    data: bytes


def looks_like_mail(prefix: bytes) -> bool:
    """True when `prefix` starts like an RFC 5322 message (a header field)."""
    return _HEADER_LINE.match(prefix.lstrip(b"\r\n")) is not None


def looks_like_mbox(prefix: bytes) -> bool:
    return prefix.startswith(b"From ")


def report_attachments(raw: bytes) -> Iterator[Attachment]:
    """The parts of one mail that may carry a report."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    for part in message.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type().lower()
        filename = str(part.get_filename() or "")
        if content_type not in REPORT_TYPES and not filename.lower().endswith(REPORT_SUFFIXES):
            continue
        data = part.get_payload(decode=True)
        if isinstance(data, bytes) and data:
            yield Attachment(filename or f"part.{content_type.replace('/', '.')}", content_type, data)


def subject(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    return str(message.get("Subject", "")) if isinstance(message, EmailMessage) else ""


def maildir_messages(path: Path) -> Iterator[tuple[str, bytes]]:
    """(name, raw bytes) of every mail in the Maildir at `path` (new/ and cur/)."""
    box = mailbox.Maildir(path, factory=None, create=False)
    for key in sorted(box.iterkeys()):
        yield f"{path}/{key}", box.get_bytes(key)


def mbox_messages(path: Path) -> Iterator[tuple[str, bytes]]:
    """(name, raw bytes) of every mail in the mbox file at `path`."""
    box = mailbox.mbox(path, factory=None, create=False)
    try:
        for index, key in enumerate(box.iterkeys()):
            yield f"{path}#{index + 1}", box.get_bytes(key)
    finally:
        box.close()


def is_maildir(path: Path) -> bool:
    return path.is_dir() and all((path / sub).is_dir() for sub in ("cur", "new"))
