"""The DMARC policy record (RFC 7489 §6.3-6.4, `np` from RFC 9091): a strict, pure parser.

Every problem is reported with its place. IssueSeverity follows what receivers do (RFC 7489 §6.3,
§6.6.3): a bad or missing `v`/`p`, a bad `sp`, a duplicate tag or broken tag-list syntax makes
receivers discard the record (ERROR, no `DmarcRecord`); a bad value in any other tag is ignored
in favour of its default (WARNING, and the record carries the default). Written by hand because
the maintained DMARC library seen here (authheaders) gets policy lookups wrong (see NOTES.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote

from mecsa.records.taglist import IssueSeverity, RecordIssue, Tag, TagListParse, split_tags

# RFC 7489 §6.4: dmarc-version = "v" *WSP "=" *WSP %x44.4d.41.52.43.31 ("DMARC1", case-sensitive)
_VERSION = re.compile(r"[ \t]*[vV][ \t]*=[ \t]*DMARC1[ \t]*(?:;|$)")
_SIZE = re.compile(r"([0-9]+)([kmgtKMGT]?)")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_KNOWN_TAGS = frozenset({"v", "p", "sp", "np", "adkim", "aspf", "fo", "rf", "ri", "pct", "rua", "ruf"})
_FO_VALUES = frozenset({"0", "1", "d", "s"})


class Policy(StrEnum):
    NONE = "none"
    QUARANTINE = "quarantine"
    REJECT = "reject"

    @property
    def strength(self) -> int:
        """Orders policies: none < quarantine < reject."""
        return ("none", "quarantine", "reject").index(self.value)


class Alignment(StrEnum):
    RELAXED = "r"
    STRICT = "s"


@dataclass(frozen=True, slots=True)
class ReportUri:
    """One rua/ruf destination. For mailto URIs, `address` and `domain` are filled in."""

    uri: str
    scheme: str
    address: str | None = None
    domain: str | None = None
    max_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class DmarcRecord:
    """A usable DMARC record: tags with their defaults (RFC 7489 §6.3) already applied."""

    text: str
    policy: Policy
    subdomain_policy: Policy | None = None
    nonexistent_policy: Policy | None = None
    adkim: Alignment = Alignment.RELAXED
    aspf: Alignment = Alignment.RELAXED
    pct: int = 100
    rua: tuple[ReportUri, ...] = ()
    ruf: tuple[ReportUri, ...] = ()
    fo: tuple[str, ...] = ("0",)
    rf: tuple[str, ...] = ("afrf",)
    ri: int = 86400

    @property
    def effective_subdomain_policy(self) -> Policy:
        """`sp`, defaulting to `p` (RFC 7489 §6.3)."""
        return self.subdomain_policy or self.policy

    @property
    def effective_nonexistent_policy(self) -> Policy:
        """`np`, defaulting to `sp`, then `p` (RFC 9091 §4.1)."""
        return self.nonexistent_policy or self.effective_subdomain_policy

    def policy_for(self, domain: str, record_domain: str, *, exists: bool = True) -> Policy:
        """The policy that applies to mail from `domain`, given the record found at `record_domain`.

        `p` applies to the domain the record was published for; `sp` (or `np` for a name that
        does not exist) only to its subdomains found through the organisational-domain fallback.
        (authheaders 0.16 applied `sp` to the organisational domain itself: NOTES.md.)
        """
        if _bare(domain) == _bare(record_domain):
            return self.policy
        return self.effective_subdomain_policy if exists else self.effective_nonexistent_policy


# The outcome of parsing (`record` None: receivers discard the text). Build it as TagListParse(...):
# calling the subscripted alias fails on a frozen, slotted generic (it sets __orig_class__).
DmarcParse = TagListParse[DmarcRecord]


def is_dmarc_record(text: str) -> bool:
    """True when TXT text starts with the `v=DMARC1` version tag; other TXT at `_dmarc` is ignored
    (RFC 7489 §6.6.3 step 3)."""
    return _VERSION.match(text) is not None


def parse_dmarc(text: str) -> DmarcParse:
    """Parse one DMARC record's text (TXT strings already joined); never raises."""
    tags, syntax = split_tags(text, fold_case=True)
    issues = list(syntax)
    error = _issue(issues, IssueSeverity.ERROR)
    warn = _issue(issues, IssueSeverity.WARNING)
    by_name = {t.name.lower(): t for t in tags}

    if not tags or tags[0].name.lower() != "v":
        error("v.not_first", "the record must start with v=DMARC1 (RFC 7489 §6.3)", 0, "v")
    elif tags[0].value != "DMARC1":
        error("v.bad", f"v={tags[0].value!r}: the version must be exactly DMARC1", tags[0].position, "v")

    policy = _policy(by_name.get("p"), error)
    if "p" not in by_name:
        error("p.missing", "the p= tag is required (RFC 7489 §6.3)", None, "p")
    elif tags[0].name.lower() == "v" and len(tags) > 1 and tags[1].name.lower() != "p":
        warn(
            "p.not_second",
            "p= should come right after v= (RFC 7489 §6.4); some receivers insist",
            tags[1].position,
            "p",
        )
    sp = _policy(by_name.get("sp"), error)
    # RFC 9091 §4.1: an invalid np is ignored, not fatal
    np = _policy(by_name.get("np"), warn)

    for tag in tags:
        if tag.name.lower() not in _KNOWN_TAGS:
            warn("tag.unknown", f"unknown tag {tag.name}= is ignored (a typo?)", tag.position, tag.name)
        elif tag.name != tag.name.lower():
            warn(
                "tag.case",
                f"tag {tag.name}= is not lower case; some receivers miss it",
                tag.position,
                tag.name,
            )

    if policy is None or any(i.severity is IssueSeverity.ERROR for i in issues):
        return TagListParse(text, None, tuple(issues))
    record = DmarcRecord(
        text,
        policy,
        sp,
        np,
        adkim=_alignment(by_name.get("adkim"), warn),
        aspf=_alignment(by_name.get("aspf"), warn),
        pct=_pct(by_name.get("pct"), warn),
        rua=_uris(by_name.get("rua"), warn),
        ruf=_uris(by_name.get("ruf"), warn),
        fo=_fo(by_name.get("fo"), warn),
        rf=_rf(by_name.get("rf"), warn),
        ri=_ri(by_name.get("ri"), warn),
    )
    return TagListParse(text, record, tuple(issues))


class _Add:
    def __init__(self, issues: list[RecordIssue], severity: IssueSeverity) -> None:
        self.issues, self.severity = issues, severity

    def __call__(self, code: str, message: str, position: int | None, tag: str | None) -> None:
        self.issues.append(RecordIssue(self.severity, code, message, position, tag))


def _issue(issues: list[RecordIssue], severity: IssueSeverity) -> _Add:
    return _Add(issues, severity)


def _policy(tag: Tag | None, complain: _Add) -> Policy | None:
    if tag is None:
        return None
    try:
        return Policy(tag.value.lower())
    except ValueError:
        complain(
            f"{tag.name.lower()}.bad",
            f"{tag.name}={tag.value!r}: must be none, quarantine or reject",
            tag.position,
            tag.name,
        )
        return None


def _alignment(tag: Tag | None, warn: _Add) -> Alignment:
    if tag is None:
        return Alignment.RELAXED
    try:
        return Alignment(tag.value.lower())
    except ValueError:
        warn(
            f"{tag.name.lower()}.bad",
            f"{tag.name}={tag.value!r}: must be r or s; receivers use r",
            tag.position,
            tag.name,
        )
        return Alignment.RELAXED


def _pct(tag: Tag | None, warn: _Add) -> int:
    if tag is None:
        return 100
    if tag.value.isascii() and tag.value.isdigit() and int(tag.value) <= 100:
        return int(tag.value)
    warn(
        "pct.bad",
        f"pct={tag.value!r}: must be an integer from 0 to 100; receivers use 100",
        tag.position,
        tag.name,
    )
    return 100


def _ri(tag: Tag | None, warn: _Add) -> int:
    if tag is None:
        return 86400
    if tag.value.isascii() and tag.value.isdigit() and int(tag.value) < 2**32:
        return int(tag.value)
    warn(
        "ri.bad",
        f"ri={tag.value!r}: must be a whole number of seconds; receivers use 86400",
        tag.position,
        tag.name,
    )
    return 86400


def _fo(tag: Tag | None, warn: _Add) -> tuple[str, ...]:
    if tag is None:
        return ("0",)
    options = tuple(o.strip().lower() for o in tag.value.split(":"))
    bad = [o for o in options if o not in _FO_VALUES]
    if bad:
        warn(
            "fo.bad", f"fo={tag.value!r}: options are 0, 1, d and s, separated by ':'", tag.position, tag.name
        )
        good = tuple(o for o in options if o in _FO_VALUES)
        return good or ("0",)
    return options


def _rf(tag: Tag | None, warn: _Add) -> tuple[str, ...]:
    if tag is None:
        return ("afrf",)
    formats = tuple(f.strip().lower() for f in tag.value.split(":"))
    if any(f != "afrf" for f in formats):
        warn("rf.bad", f"rf={tag.value!r}: afrf is the only registered report format", tag.position, tag.name)
    return formats


def _uris(tag: Tag | None, warn: _Add) -> tuple[ReportUri, ...]:
    """rua/ruf: comma-separated `URI [ "!" size [k|m|g|t] ]` (RFC 7489 §6.4); bad URIs are dropped."""
    if tag is None:
        return ()
    found: list[ReportUri] = []
    offset = 0
    for item in tag.value.split(","):
        at = tag.value_position + offset + len(item) - len(item.lstrip())
        offset += len(item) + 1
        uri = _uri(item.strip(), tag.name, at, warn)
        if uri is not None:
            found.append(uri)
    if not found:
        warn(
            f"{tag.name.lower()}.empty",
            f"{tag.name}= has no usable URI: no reports will be sent",
            tag.position,
            tag.name,
        )
    return tuple(found)


def _uri(text: str, tag_name: str, at: int, warn: _Add) -> ReportUri | None:
    code = f"{tag_name.lower()}.bad_uri"
    if not text:
        warn(code, f"{tag_name}= has an empty URI", at, tag_name)
        return None
    uri, max_bytes = text, None
    if "!" in text:
        uri, _, size = text.rpartition("!")
        match = _SIZE.fullmatch(size)
        if match is None or "!" in uri:
            warn(
                code,
                f"{text!r}: '!' must be followed by a size like 10m ('!' in a URI must be %21)",
                at,
                tag_name,
            )
            return None
        max_bytes = int(match.group(1)) * _UNITS[match.group(2).lower()]
    if _SCHEME.match(uri) is None or any(c in uri for c in ' \t<>"'):
        warn(code, f"{text!r} is not a URI (expected mailto:address@domain)", at, tag_name)
        return None
    scheme = uri.split(":", 1)[0].lower()
    if scheme != "mailto":
        warn(
            f"{tag_name.lower()}.not_mailto",
            f"{uri!r}: receivers send reports only to mailto: URIs",
            at,
            tag_name,
        )
        return ReportUri(uri, scheme, max_bytes=max_bytes)
    address = unquote(uri.split(":", 1)[1].split("?", 1)[0])
    local, at_sign, domain = address.rpartition("@")
    domain = domain.lower().removesuffix(".")
    if not at_sign or not local or not _is_hostname(domain):
        warn(code, f"{uri!r}: not a mail address (expected mailto:local@domain)", at, tag_name)
        return None
    return ReportUri(uri, scheme, address, domain, max_bytes)


def _is_hostname(name: str) -> bool:
    labels = name.split(".")
    return len(labels) >= 2 and len(name) <= 253 and all(_LABEL.fullmatch(label) for label in labels)


def _bare(name: str) -> str:
    return name.lower().removesuffix(".")
