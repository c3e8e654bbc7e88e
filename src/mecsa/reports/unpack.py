"""From a file, an attachment or an archive member to bounded report payloads.

The container is recognised by its first bytes, never by its name: gzip (1f 8b), zip (PK 03 04),
XML (`<`) for DMARC aggregate reports, JSON (`{`) for TLS reports. Decompressed bytes are
counted as they stream (`LimitedReader`): a gzip or zip bomb stops at `Limits.max_decompressed`,
an archive with more than `Limits.max_members` files is refused, archives inside archives are
refused. One bad member is one problem; the other members still come out.
"""

from __future__ import annotations

import gzip
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from mecsa.reports.limits import ByteStream, LimitedReader, Limits, ReportError
from mecsa.reports.model import ReportKind

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
_SNIFF = 512


@dataclass(frozen=True, slots=True)
class Payload:
    """One report's bytes: `stream` yields them decompressed and bounded."""

    name: str
    kind: ReportKind
    stream: ByteStream


@dataclass(frozen=True, slots=True)
class Problem:
    """Something that is not a usable report, with its name and a one-line reason."""

    name: str
    reason: str


class Prefixed:
    """`prefix` then the rest of `stream`: lets a sniffed stream be read from its start."""

    def __init__(self, prefix: bytes, stream: ByteStream) -> None:
        self._prefix = prefix
        self._stream = stream

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            data, self._prefix = self._prefix + self._stream.read(), b""
            return data
        if self._prefix:
            data, self._prefix = self._prefix[:size], self._prefix[size:]
            return data
        return self._stream.read(size)


def sniff_kind(prefix: bytes) -> ReportKind | None:
    """DMARC for XML, TLS-RPT for JSON, None otherwise (from a report's first bytes)."""
    text = prefix.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"<"):
        return ReportKind.DMARC
    if text.startswith((b"{", b"[")):
        return ReportKind.TLSRPT
    return None


def _report(name: str, stream: ByteStream) -> Payload | Problem:
    try:
        prefix = stream.read(_SNIFF)
    except (ReportError, OSError, EOFError, zlib.error) as exc:
        return Problem(name, f"cannot read: {exc}")
    kind = sniff_kind(prefix)
    if kind is None:
        if prefix.startswith((GZIP_MAGIC, ZIP_MAGIC)):
            return Problem(name, "an archive inside an archive is refused")
        return Problem(name, "neither an XML (DMARC) nor a JSON (TLS-RPT) report")
    return Payload(name, kind, Prefixed(prefix, stream))


def payloads(name: str, source: BinaryIO, limits: Limits) -> Iterator[Payload | Problem]:
    """The reports in `source` (a plain report, a gzip file or a zip archive), one by one.

    `source` must be seekable (a file, or `io.BytesIO` for an attachment): zip needs it.

    Consume each payload's stream before asking for the next: zip members share `source`.
    """
    head = source.read(4)
    source.seek(0)
    if head.startswith(GZIP_MAGIC):
        gz = gzip.GzipFile(fileobj=source, mode="rb")
        yield _report(name, LimitedReader(gz, limits.max_decompressed, name))
        return
    if head.startswith(ZIP_MAGIC):
        yield from _zip(name, source, limits)
        return
    yield _report(name, LimitedReader(source, limits.max_decompressed, name))


def _zip(name: str, stream: BinaryIO, limits: Limits) -> Iterator[Payload | Problem]:
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError) as exc:
        yield Problem(name, f"not a readable zip archive: {exc}")
        return
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) > limits.max_members:
        yield Problem(name, f"zip archive with {len(members)} files: more than {limits.max_members} refused")
        return
    budget = limits.max_decompressed  # one budget for the whole archive, not one per member
    for member in members:
        member_name = f"{name}!{member.filename}"
        if budget <= 0:
            yield Problem(
                member_name, f"archive: more than {limits.max_decompressed} bytes after decompression"
            )
            return
        try:
            raw = archive.open(member)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError) as exc:
            yield Problem(member_name, f"cannot open: {exc}")
            continue
        reader = LimitedReader(raw, budget, name)
        yield _report(member_name, reader)
        budget -= reader.count
