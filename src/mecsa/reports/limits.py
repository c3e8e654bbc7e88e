"""Resource limits for untrusted reports, and the one error type a bad report raises.

Reports come from anyone who can send mail to the report address, so every size is bounded
before the bytes are believed (RFC 9990 §"Report Contents as an Attack": zip and XML bombs).
Sizes are counted on *decompressed* bytes while they stream, never taken from an archive header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

MiB = 1024 * 1024
CHUNK = 64 * 1024


class ReportError(ValueError):
    """A report (or a container of reports) that cannot be used, with a one-line reason."""


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds one ingestion applies.

    - `max_decompressed`: bytes of one report after gzip/zip decompression (a 100,000-record
      aggregate report is about 60 MiB of XML);
    - `max_json`: bytes of one TLS report (JSON is parsed whole, so it gets a smaller bound);
    - `max_members`: files in one zip archive;
    - `max_records`: `<record>` elements in one aggregate report;
    - `max_policies` / `max_failure_details`: entries in one TLS report;
    - `max_message`: octets of one report mail;
    - `max_text`: characters kept of one free-text field (org names, human_result, comments).
    """

    max_decompressed: int = 256 * MiB
    max_json: int = 16 * MiB
    max_members: int = 16
    max_records: int = 1_000_000
    max_policies: int = 10_000
    max_failure_details: int = 100_000
    max_message: int = 64 * MiB
    max_text: int = 1024


DEFAULT_LIMITS = Limits()


class ByteStream(Protocol):
    """What the parsers read from: anything with `read(size) -> bytes`."""

    def read(self, size: int = -1, /) -> bytes: ...


class LimitedReader:
    """A read-only binary stream that raises `ReportError` once more than `limit` bytes came out."""

    def __init__(self, raw: ByteStream, limit: int, what: str) -> None:
        self._raw = raw
        self._limit = limit
        self._what = what
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            return b"".join(iter(lambda: self.read(CHUNK), b""))
        # Never ask the underlying (decompressing) stream for more than one byte past the limit,
        # so a bomb is stopped after at most limit+1 bytes of output, in chunks of CHUNK.
        size = min(size, CHUNK, self._limit + 1 - self.count)
        data = self._raw.read(size) if size > 0 else b""
        self.count += len(data)
        if self.count > self._limit:
            raise ReportError(f"{self._what}: more than {self._limit} bytes after decompression")
        return data


def clip(text: str | None, limit: int) -> str:
    """`text` stripped and cut to `limit` characters (free text from the network)."""
    value = (text or "").strip()
    return value if len(value) <= limit else value[: limit - 1] + "…"
