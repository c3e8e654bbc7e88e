"""An ingestion run: files, archives, mails and mailboxes in; stored reports and problems out.

Every report is one `IngestItem`: stored, a duplicate, or an error with its one-line reason.
A bad report never stops the run: the reports before and after it are kept.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

from mecsa.reports.dmarc_xml import AggregateReader
from mecsa.reports.limits import DEFAULT_LIMITS, Limits, ReportError
from mecsa.reports.mail import (
    is_maildir,
    looks_like_mail,
    looks_like_mbox,
    maildir_messages,
    mbox_messages,
    report_attachments,
)
from mecsa.reports.model import ReportKind
from mecsa.reports.storage import Outcome, ReportStore
from mecsa.reports.tlsrpt_json import read_tlsrpt
from mecsa.reports.unpack import GZIP_MAGIC, ZIP_MAGIC, Payload, Problem, payloads, sniff_kind

# What a broken archive or stream raises while it is read (gzip.BadGzipFile is an OSError).
_READ_ERRORS = (ReportError, OSError, EOFError, zlib.error, zipfile.BadZipFile)


class ItemStatus(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class IngestItem:
    """The fate of one report (or of one thing that was not a report)."""

    source: str
    status: ItemStatus
    kind: ReportKind | None = None
    org: str | None = None
    report_id: str | None = None
    domain: str | None = None
    records: int = 0
    error: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "status": self.status.value,
            "kind": self.kind.value if self.kind else None,
            "org": self.org,
            "report_id": self.report_id,
            "domain": self.domain,
            "records": self.records,
            "error": self.error,
        }


class Intake:
    """Ingests into one store under one set of limits."""

    def __init__(self, store: ReportStore, limits: Limits = DEFAULT_LIMITS) -> None:
        self.store = store
        self.limits = limits

    # --- one report ---------------------------------------------------------------------------

    def payload(self, payload: Payload) -> IngestItem:
        try:
            if payload.kind is ReportKind.DMARC:
                return self._dmarc(payload)
            return self._tls(payload)
        except _READ_ERRORS as exc:
            return IngestItem(payload.name, ItemStatus.ERROR, payload.kind, error=_reason(exc))

    def _dmarc(self, payload: Payload) -> IngestItem:
        reader = AggregateReader(payload.stream, self.limits)
        header = reader.header()
        meta = header.metadata
        try:
            added = self.store.add_dmarc(header, reader.records(), payload.name)
        except _READ_ERRORS as exc:
            return IngestItem(
                payload.name,
                ItemStatus.ERROR,
                ReportKind.DMARC,
                meta.org_name,
                meta.report_id,
                header.policy.domain,
                error=_reason(exc),
            )
        status = ItemStatus.STORED if added.outcome is Outcome.STORED else ItemStatus.DUPLICATE
        return IngestItem(
            payload.name,
            status,
            ReportKind.DMARC,
            meta.org_name,
            meta.report_id,
            header.policy.domain,
            added.records,
        )

    def _tls(self, payload: Payload) -> IngestItem:
        report = read_tlsrpt(payload.stream, self.limits)
        added = self.store.add_tls(report, payload.name)
        status = ItemStatus.STORED if added.outcome is Outcome.STORED else ItemStatus.DUPLICATE
        return IngestItem(
            payload.name,
            status,
            ReportKind.TLSRPT,
            report.organization_name,
            report.report_id,
            " ".join(report.policy_domains),
            added.records,
        )

    # --- containers ---------------------------------------------------------------------------

    def report_bytes(self, name: str, data: bytes) -> list[IngestItem]:
        """A report, a gzip or a zip archive, held in memory (an attachment)."""
        return self._payloads(name, io.BytesIO(data))

    def _payloads(self, name: str, source: BinaryIO) -> list[IngestItem]:
        items: list[IngestItem] = []
        try:
            for found in payloads(name, source, self.limits):
                if isinstance(found, Problem):
                    items.append(IngestItem(found.name, ItemStatus.ERROR, error=found.reason))
                else:
                    items.append(self.payload(found))
        except _READ_ERRORS as exc:
            items.append(IngestItem(name, ItemStatus.ERROR, error=_reason(exc)))
        return items

    def message(self, name: str, raw: bytes) -> list[IngestItem]:
        """Every report attached to one mail."""
        if len(raw) > self.limits.max_message:
            return [IngestItem(name, ItemStatus.ERROR, error=f"mail over {self.limits.max_message} octets")]
        items: list[IngestItem] = []
        try:
            attachments = list(report_attachments(raw))
        except Exception as exc:  # the email package raises many types on hostile MIME
            return [IngestItem(name, ItemStatus.ERROR, error=f"unreadable mail: {_reason(exc)}")]
        for attachment in attachments:
            items.extend(self.report_bytes(f"{name}:{attachment.filename}", attachment.data))
        if not items:
            items.append(IngestItem(name, ItemStatus.ERROR, error="mail without a report attachment"))
        return items

    def messages(self, mails: Iterable[tuple[str, bytes | None]]) -> Iterator[IngestItem]:
        """Every report in `mails`; a None mail is one that was too big to fetch."""
        for name, raw in mails:
            if raw is None:
                yield IngestItem(name, ItemStatus.ERROR, error=f"mail over {self.limits.max_message} octets")
            else:
                yield from self.message(name, raw)

    def path(self, path: Path) -> Iterator[IngestItem]:
        """A report file, archive, mail, mbox, Maildir, or a directory of those (recursively)."""
        if is_maildir(path):
            yield from self.messages(maildir_messages(path))
            return
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if not child.name.startswith("."):
                    yield from self.path(child)
            return
        try:
            with path.open("rb") as handle:
                prefix = handle.read(512)
                if prefix.startswith((GZIP_MAGIC, ZIP_MAGIC)) or sniff_kind(prefix) is not None:
                    handle.seek(0)
                    yield from self._payloads(str(path), handle)
                    return
        except OSError as exc:
            yield IngestItem(str(path), ItemStatus.ERROR, error=_reason(exc))
            return
        if looks_like_mbox(prefix):
            yield from self.messages(mbox_messages(path))
        elif looks_like_mail(prefix):
            size = path.stat().st_size
            if size > self.limits.max_message:
                yield IngestItem(
                    str(path), ItemStatus.ERROR, error=f"mail over {self.limits.max_message} octets"
                )
            else:
                yield from self.message(str(path), path.read_bytes())
        else:
            yield IngestItem(
                str(path), ItemStatus.ERROR, error="not a report, an archive, a mail or a mailbox"
            )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ReportError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
