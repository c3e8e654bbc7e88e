"""The DKIM key record (RFC 6376 §3.6.1, Ed25519 from RFC 8463): a strict, pure parser.

Tags are case-sensitive (RFC 6376 §3.2). ERROR issues mean a verifier cannot use the record
(bad `v`, missing `p`, an undecodable key, an unknown key type); WARNING issues leave it usable
or are judged by the caller (notably `h=`). The key is decoded with `cryptography`, which gives
the RSA modulus size; the checks on top of that are few and written here.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from mecsa.records.taglist import IssueSeverity, RecordIssue, Tag, TagListParse, split_tags

_WHITESPACE = re.compile(r"[ \t\r\n]+")
_KNOWN_TAGS = frozenset({"v", "h", "k", "n", "p", "s", "t"})
_ED25519_RAW_BYTES = 32
# The hash algorithms of RFC 6376 §3.3; sha1 is no longer accepted by verifiers (RFC 8301 §3.1).
KNOWN_HASHES = frozenset({"sha1", "sha256"})

_AddIssue = Callable[[IssueSeverity, str, str, Tag | None], None]


class KeyFormat(StrEnum):
    SPKI = "spki"  # SubjectPublicKeyInfo, what `openssl rsa -pubout` and opendkim-genkey write
    PKCS1 = "pkcs1"  # a bare RSAPublicKey, the literal reading of RFC 6376 §3.6.1 (erratum 3017)
    RAW = "raw"  # Ed25519: the 32 key bytes (RFC 8463 §4.2)


@dataclass(frozen=True, slots=True)
class DkimKeyRecord:
    """A key record a verifier can read. `hash_algorithms` is None when `h=` is absent (all allowed)."""

    text: str
    key_type: str
    public_key: bytes
    key_bits: int | None
    key_format: KeyFormat | None
    hash_algorithms: tuple[str, ...] | None = None
    service_types: tuple[str, ...] = ("*",)
    flags: tuple[str, ...] = ()
    notes: str | None = None
    version: str | None = None

    @property
    def revoked(self) -> bool:
        """An empty `p=` revokes the key (RFC 6376 §3.6.1)."""
        return not self.public_key

    @property
    def testing(self) -> bool:
        """`t=y`: the domain is testing DKIM; verifiers may treat signed mail as unsigned."""
        return "y" in self.flags

    @property
    def strict_subdomains(self) -> bool:
        """`t=s`: the i= domain must equal d=, not be a subdomain of it."""
        return "s" in self.flags

    @property
    def for_email(self) -> bool:
        return any(s in ("*", "email") for s in self.service_types)

    @property
    def sha256_allowed(self) -> bool:
        """True when `h=` is absent or lists sha256: a modern verifier can accept a signature."""
        return self.hash_algorithms is None or "sha256" in self.hash_algorithms


# The outcome of parsing (`record` None: receivers discard the text). Build it as TagListParse(...):
# calling the subscripted alias fails on a frozen, slotted generic (it sets __orig_class__).
DkimParse = TagListParse[DkimKeyRecord]


def looks_like_dkim_key(text: str) -> bool:
    """True for TXT text meant as a DKIM key: `v=DKIM1` first, or a `p=` tag.

    Lets a checker skip what a wildcard TXT (an SPF record, say) puts at a selector's name;
    RFC 6376 §3.6.1 has verifiers discard records whose `v=` is not DKIM1.
    """
    tags, _ = split_tags(text, fold_case=False)
    if tags and tags[0].name == "v":
        return tags[0].value == "DKIM1"
    return any(t.name == "p" for t in tags)


def parse_dkim_key(text: str) -> DkimParse:
    """Parse one key record's text (TXT strings already joined); never raises."""
    tags, syntax = split_tags(text, fold_case=False)
    issues = list(syntax)
    by_name = {t.name: t for t in tags}

    def add(severity: IssueSeverity, code: str, message: str, tag: Tag | None) -> None:
        issues.append(
            RecordIssue(severity, code, message, tag.position if tag else None, tag.name if tag else None)
        )

    version = by_name.get("v")
    if version is not None:
        if tags[0] is not version:
            add(IssueSeverity.ERROR, "v.not_first", "v= must be the first tag (RFC 6376 §3.6.1)", version)
        if version.value != "DKIM1":
            add(
                IssueSeverity.ERROR,
                "v.bad",
                f"v={version.value!r}: must be DKIM1; verifiers discard the record",
                version,
            )
    for tag in tags:
        if tag.name not in _KNOWN_TAGS:
            code = "tag.case" if tag.name.lower() in _KNOWN_TAGS else "tag.unknown"
            add(
                IssueSeverity.WARNING,
                code,
                f"unknown tag {tag.name}= is ignored (tags are case-sensitive)",
                tag,
            )

    key_type_tag = by_name.get("k")
    key_type = key_type_tag.value if key_type_tag else "rsa"
    if key_type not in ("rsa", "ed25519"):
        add(
            IssueSeverity.ERROR,
            "k.unknown",
            f"k={key_type!r}: verifiers know only rsa and ed25519",
            key_type_tag,
        )

    hashes = _colon_list(by_name.get("h"))
    _check_hashes(hashes, by_name.get("h"), add)
    services = _colon_list(by_name.get("s")) or ("*",)
    flags = _colon_list(by_name.get("t")) or ()

    p_tag = by_name.get("p")
    key: bytes = b""
    bits: int | None = None
    key_format: KeyFormat | None = None
    if p_tag is None:
        add(IssueSeverity.ERROR, "p.missing", "the p= tag is required (RFC 6376 §3.6.1)", None)
    elif p_tag.value:
        key, bits, key_format, problem = _decode_key(p_tag.value, key_type)
        if problem is not None:
            add(IssueSeverity.ERROR, problem[0], problem[1], p_tag)
        elif key_format is KeyFormat.PKCS1:
            add(
                IssueSeverity.WARNING,
                "p.pkcs1",
                "the key is a bare PKCS#1 RSAPublicKey; most verifiers accept it, but the usual "
                "form is SubjectPublicKeyInfo (openssl rsa -pubout)",
                p_tag,
            )

    if any(i.severity is IssueSeverity.ERROR for i in issues):
        return TagListParse(text, None, tuple(issues))
    notes = by_name["n"].value if "n" in by_name else None
    record = DkimKeyRecord(
        text,
        key_type,
        key,
        bits,
        key_format,
        hashes,
        services,
        flags,
        notes,
        version.value if version else None,
    )
    return TagListParse(text, record, tuple(issues))


def _colon_list(tag: Tag | None) -> tuple[str, ...] | None:
    if tag is None:
        return None
    return tuple(item.strip() for item in tag.value.split(":") if item.strip())


def _check_hashes(hashes: tuple[str, ...] | None, tag: Tag | None, add: _AddIssue) -> None:
    if hashes is None:
        return
    unknown = [h for h in hashes if h not in KNOWN_HASHES]
    if "sha256" in hashes:
        if unknown:
            add(
                IssueSeverity.WARNING,
                "h.unknown",
                f"h= values {', '.join(unknown)} are unknown and ignored",
                tag,
            )
        return
    if "rsa-sha256" in hashes or "rsa-sha1" in hashes:
        # opendkim-genkey -h rsa-sha256 writes this (NOTES.md); verifiers ignore the unknown
        # values, so no hash is left that they may accept and every signature fails.
        add(
            IssueSeverity.WARNING,
            "h.signature_algorithm",
            f"h={tag.value if tag else ''}: h= lists hash algorithms (sha256), not signature "
            "algorithms (rsa-sha256); verifiers reject every signature under this key",
            tag,
        )
        return
    add(
        IssueSeverity.WARNING,
        "h.no_sha256",
        f"h={tag.value if tag else ''} does not allow sha256; verifiers no longer accept sha1 "
        "(RFC 8301 §3.1), so they reject every signature under this key",
        tag,
    )


def _decode_key(
    value: str, key_type: str
) -> tuple[bytes, int | None, KeyFormat | None, tuple[str, str] | None]:
    """Decode p= (base64; whitespace is allowed anywhere in it, RFC 6376 §3.6.1)."""
    try:
        raw = base64.b64decode(_WHITESPACE.sub("", value), validate=True)
    except (binascii.Error, ValueError) as exc:
        return b"", None, None, ("p.base64", f"p= is not valid base64: {exc}")
    if key_type == "ed25519":
        if len(raw) == _ED25519_RAW_BYTES:
            return raw, 256, KeyFormat.RAW, None
        return (
            raw,
            None,
            None,
            (
                "p.ed25519_size",
                f"an ed25519 p= must be the 32 raw key bytes (RFC 8463 §4.2), not {len(raw)} bytes "
                "(a SubjectPublicKeyInfo is 44)",
            ),
        )
    if key_type != "rsa":
        return raw, None, None, None  # unknown type: reported by the caller
    return _decode_rsa(raw)


def _decode_rsa(raw: bytes) -> tuple[bytes, int | None, KeyFormat | None, tuple[str, str] | None]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        # accepts SubjectPublicKeyInfo and a bare PKCS#1 RSAPublicKey alike
        key = serialization.load_der_public_key(raw)
    except (ValueError, TypeError) as exc:
        return raw, None, None, ("p.undecodable", f"p= is not a DER public key: {exc}")
    if not isinstance(key, rsa.RSAPublicKey):
        return (
            raw,
            None,
            None,
            (
                "p.type_mismatch",
                f"k=rsa (or no k=) but p= holds a {type(key).__name__.removeprefix('_')} key",
            ),
        )
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    key_format = KeyFormat.SPKI if spki == raw else KeyFormat.PKCS1
    return raw, key.key_size, key_format, None
