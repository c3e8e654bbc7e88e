"""The TLS-RPT record (RFC 8460 §3): `v=TLSRPTv1` first, then `rua=` and extension fields.

Grammar (RFC 8460 §3):

    tlsrpt-record    = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
    field-delim      = *WSP ";" *WSP
    tlsrpt-field     = tlsrpt-rua / tlsrpt-extension
    tlsrpt-version   = %s"v=TLSRPTv1"
    tlsrpt-rua       = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
    tlsrpt-extension = tlsrpt-ext-name "=" tlsrpt-ext-value

More than one `rua` field is grammatical; their URIs add up. Only `mailto:` and `https:` URIs are
defined. Written by hand because no maintained library parses TLS-RPT records; every error
carries the 0-based offset in the record text where it was found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

VERSION = "v=TLSRPTv1"
_WSP = " \t"
_EXT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}")
# tlsrpt-ext-value: %x21-3A / %x3C / %x3E-7E (no "=", ";", space or control characters)
_EXT_VALUE = re.compile(r"[\x21-\x3a\x3c\x3e-\x7e]+")
_URI_CHARS = re.compile(r"[\x21-\x7e]+")
_MAILBOX = re.compile(r"[^@\s]+@[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?")


@dataclass(frozen=True, slots=True)
class TlsRptError:
    """One syntax error, located by its 0-based offset in the record text."""

    position: int
    message: str

    def __str__(self) -> str:
        return f"at offset {self.position}: {self.message}"


@dataclass(frozen=True, slots=True)
class TlsRptUri:
    """One report destination: `scheme` is `mailto` or `https`."""

    uri: str
    scheme: str


@dataclass(frozen=True, slots=True)
class TlsRptRecord:
    """A parsed TLS-RPT record. It is usable only when `valid`: no errors and at least one URI."""

    text: str
    rua: tuple[TlsRptUri, ...]
    extensions: tuple[tuple[str, str], ...]
    errors: tuple[TlsRptError, ...]

    @property
    def valid(self) -> bool:
        return not self.errors and bool(self.rua)


def looks_like_tls_rpt(text: str) -> bool:
    """True for TXT text that claims to be a TLS-RPT record, in any letter case.

    RFC 8460 §3 has senders discard records not starting with `v=TLSRPTv1` (case-sensitive);
    matching case-insensitively here lets a wrongly-cased record be reported rather than ignored.
    """
    head = text.lstrip(_WSP)
    if head[: len(VERSION)].lower() != VERSION.lower():
        return False
    rest = head[len(VERSION) :]
    return not rest or rest[0] in ";" + _WSP


def parse_tls_rpt(text: str) -> TlsRptRecord:
    """Parse one TLS-RPT record's text (the TXT strings already joined); never raises."""
    errors: list[TlsRptError] = []
    rua: list[TlsRptUri] = []
    extensions: list[tuple[str, str]] = []
    fields = _split_fields(text)
    version_at, version = fields[0]
    if version_at != 0:
        errors.append(TlsRptError(0, f"the record must start with {VERSION!r}, not with white space"))
    elif version != VERSION:
        if version.lower() == VERSION.lower():
            errors.append(TlsRptError(version_at, f"the version must be written exactly {VERSION!r}"))
        else:
            errors.append(TlsRptError(version_at, f"the record must start with {VERSION!r}"))
    body = fields[1:]
    # One empty field at the end is the optional trailing ";"; anywhere else it is a stray ";".
    if body and body[-1][1] == "":
        body = body[:-1]
    saw_rua = False
    for at, field in body:
        if not field:
            errors.append(TlsRptError(at, "empty field (stray ';')"))
            continue
        name, eq, value = field.partition("=")
        saw_rua = saw_rua or (bool(eq) and name.lower() == "rua")
        if not eq:
            errors.append(TlsRptError(at, f"field {field!r} is not name=value"))
        elif name == "rua":
            rua.extend(_parse_rua(value, at + len("rua="), errors))
        elif name.lower() == "rua":
            errors.append(TlsRptError(at, f"field names are case-sensitive: write 'rua', not {name!r}"))
        elif not _EXT_NAME.fullmatch(name):
            errors.append(TlsRptError(at, f"bad field name {name!r}"))
        elif not _EXT_VALUE.fullmatch(value):
            errors.append(TlsRptError(at + len(name) + 1, f"bad value for field {name!r}: {value!r}"))
        else:
            extensions.append((name, value))
    if not saw_rua:
        errors.append(TlsRptError(len(text), "no rua= field: the record names no report destination"))
    return TlsRptRecord(text, tuple(rua), tuple(extensions), tuple(errors))


def _split_fields(text: str) -> list[tuple[int, str]]:
    """The ';'-separated fields with surrounding whitespace removed, each with its start offset."""
    out: list[tuple[int, str]] = []
    start = 0
    for part in text.split(";"):
        stripped = part.lstrip(_WSP)
        out.append((start + len(part) - len(stripped), stripped.rstrip(_WSP)))
        start += len(part) + 1
    return out


def _parse_rua(value: str, at: int, errors: list[TlsRptError]) -> list[TlsRptUri]:
    uris: list[TlsRptUri] = []
    offset = at
    for part in value.split(","):
        stripped = part.strip(_WSP)
        position = offset + len(part) - len(part.lstrip(_WSP))
        offset += len(part) + 1
        uri = parse_uri(stripped)
        if isinstance(uri, str):
            errors.append(TlsRptError(position, uri))
        else:
            uris.append(uri)
    return uris


def parse_uri(text: str) -> TlsRptUri | str:
    """A report URI, or the reason it is not one (RFC 8460 §3: mailto or https only)."""
    if not text:
        return "empty URI in rua"
    if not _URI_CHARS.fullmatch(text):
        return f"URI {text!r} contains spaces or control characters"
    if "!" in text:
        return f"URI {text!r}: '!' must be percent-encoded (RFC 8460 §3)"
    scheme, colon, rest = text.partition(":")
    scheme = scheme.lower()
    if not colon:
        return f"{text!r} is not a URI (no scheme)"
    if scheme == "mailto":
        address = rest.split("?", 1)[0]
        if not _MAILBOX.fullmatch(address):
            return f"{text!r} is not a mailto: URI with an address"
        return TlsRptUri(text, scheme)
    if scheme == "https":
        try:
            host = urlsplit(text).hostname
        except ValueError as exc:
            return f"{text!r} is not a valid https: URI: {exc}"
        if not host:
            return f"{text!r} is an https: URI without a host"
        return TlsRptUri(text, scheme)
    return f"unsupported URI scheme {scheme!r} in {text!r}: only mailto: and https: are defined"
