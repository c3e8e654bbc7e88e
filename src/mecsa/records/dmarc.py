"""The DMARC policy record under two rule sets: RFC 9989 (the standard since May 2026, the default)
and RFC 7489 (with `np` from RFC 9091), the rules MECSA and profile mecsa-st still apply.

A strict, pure parser; every problem is reported with its place. Severity follows what receivers
do: a duplicate tag, broken tag-list syntax or a bad `v` makes receivers discard the record
(ERROR, no `DmarcRecord`); a bad value in an optional tag is ignored in favour of its default
(WARNING, and the record carries the default). The rule sets differ in four places:

- a missing or bad `p`, or a bad `sp`: RFC 7489 receivers discard the record (this parser's old
  rule; RFC 7489 §6.6.3 step 6 is laxer). RFC 9989 §4.10.1: with a usable `rua` URI receivers act
  as if the record said `p=none`; without one, they discard it;
- `np` (RFC 9091 §4.1 under RFC 7489), `psd` and `t` (RFC 9989 §4.7) are parsed; `psd` and `t`
  are unknown tags to an RFC 7489 receiver;
- `pct`, `rf` and `ri` were removed by RFC 9989 (Appendix C.5.2): a warning, and receivers ignore
  them; under RFC 7489 they are judged as before;
- unknown tags are ignored with a warning under both (RFC 9989 §4.7: "unknown tags MUST be ignored").

Written by hand because the maintained DMARC library seen here (authheaders) gets policy lookups
wrong (see NOTES.md).
"""

from __future__ import annotations

import functools
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
_FO_VALUES = frozenset({"0", "1", "d", "s"})


class Rules(StrEnum):
    """Which DMARC specification a receiver follows."""

    RFC9989 = "rfc9989"
    RFC7489 = "rfc7489"


_KNOWN_TAGS = {
    Rules.RFC7489: frozenset({"v", "p", "sp", "np", "adkim", "aspf", "fo", "rf", "ri", "pct", "rua", "ruf"}),
    # RFC 9989 §4.7 (Table 2); pct, rf and ri are handled as removed tags
    Rules.RFC9989: frozenset({"v", "p", "sp", "np", "psd", "t", "adkim", "aspf", "fo", "rua", "ruf"}),
}
_REMOVED_TAGS = frozenset({"pct", "rf", "ri"})


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


class Psd(StrEnum):
    """RFC 9989 §4.7 `psd`: y, a public suffix domain; n, an organisational domain; u, unsaid."""

    YES = "y"
    NO = "n"
    UNSAID = "u"


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
    psd: Psd = Psd.UNSAID
    testing: bool = False
    rules: Rules = Rules.RFC9989

    @property
    def effective_subdomain_policy(self) -> Policy:
        """`sp`, defaulting to `p` (RFC 7489 §6.3)."""
        return self.subdomain_policy or self.policy

    @property
    def effective_nonexistent_policy(self) -> Policy:
        """`np`, defaulting to `sp`, then `p` (RFC 9091 §4.1)."""
        return self.nonexistent_policy or self.effective_subdomain_policy

    @property
    def reporting(self) -> bool:
        """True when aggregate or failure reports are requested with a usable URI."""
        return bool(self.rua or self.ruf)

    def policy_for(self, domain: str, record_domain: str, *, exists: bool = True) -> Policy:
        """The policy that applies to mail from `domain`, given the record found at `record_domain`.

        `p` applies to the domain the record was published for; `sp` (or `np` for a name that
        does not exist) only to its subdomains found through the organisational-domain fallback.
        (authheaders 0.16 applied `sp` to the organisational domain itself: NOTES.md.)
        """
        if _bare(domain) == _bare(record_domain):
            return self.policy
        return self.effective_subdomain_policy if exists else self.effective_nonexistent_policy


def weaker(policy: Policy) -> Policy:
    """The next weaker policy: what `t=y` asks receivers to apply (RFC 9989 §4.7), and what
    RFC 7489 §6.6.4 applies to mail outside `pct`."""
    return {Policy.REJECT: Policy.QUARANTINE, Policy.QUARANTINE: Policy.NONE}.get(policy, Policy.NONE)


# The outcome of parsing (`record` None: receivers discard the text). Build it as TagListParse(...):
# calling the subscripted alias fails on a frozen, slotted generic (it sets __orig_class__).
DmarcParse = TagListParse[DmarcRecord]


def is_dmarc_record(text: str) -> bool:
    """True when TXT text starts with the `v=DMARC1` version tag; other TXT at `_dmarc` is ignored
    (RFC 7489 §6.6.3 step 3)."""
    return _VERSION.match(text) is not None


# Discovery, the check's verdicts, its report-destination lookups and mail mode all read the same
# record: the parse (pure, immutable) is memoised, so a record is parsed once however often asked.
@functools.lru_cache(maxsize=1024)
def parse_dmarc(text: str, rules: Rules = Rules.RFC9989) -> DmarcParse:
    """Parse one DMARC record's text (TXT strings already joined) under `rules`; never raises."""
    tags, syntax = split_tags(text, fold_case=True)
    issues = list(syntax)
    error = _issue(issues, IssueSeverity.ERROR)
    warn = _issue(issues, IssueSeverity.WARNING)
    by_name = {t.name.lower(): t for t in tags}

    if not tags or tags[0].name.lower() != "v":
        error("v.not_first", "the record must start with v=DMARC1 (RFC 7489 §6.3)", 0, "v")
    elif tags[0].value != "DMARC1":
        error("v.bad", f"v={tags[0].value!r}: the version must be exactly DMARC1", tags[0].position, "v")

    new_rules = rules is Rules.RFC9989
    rua = _uris(by_name.get("rua"), warn)
    # RFC 9989 §4.10.1: a bad or missing p, or a bad sp/np, means p=none when rua has a usable URI
    fallback = new_rules and bool(rua)
    policy_issue = warn if fallback else error
    policy = _policy(by_name.get("p"), policy_issue, rules)
    if "p" not in by_name:
        if fallback:
            warn("p.missing", "no p= tag: receivers act as if p=none (RFC 9989 §4.10.1)", None, "p")
        else:
            error("p.missing", f"the p= tag is required ({_P_REQUIRED[rules]})", None, "p")
    elif tags[0].name.lower() == "v" and len(tags) > 1 and tags[1].name.lower() != "p":
        warn(
            "p.not_second",
            "p= should come right after v=: RFC 7489 §6.4 wants it there and some older receivers "
            "insist (RFC 9989 allows any order)",
            tags[1].position,
            "p",
        )
    sp = _policy(by_name.get("sp"), policy_issue, rules)
    # RFC 9091 §4.1: an invalid np is ignored, not fatal; RFC 9989 §4.10.1 treats it like a bad sp
    np = _policy(by_name.get("np"), policy_issue if new_rules else warn, rules)
    bad_policy = any(f"{t}.bad" == i.code for i in issues for t in ("p", "sp", "np"))
    if fallback and (policy is None or bad_policy):
        policy, sp, np = Policy.NONE, None, None

    for tag in tags:
        name = tag.name.lower()
        if new_rules and name in _REMOVED_TAGS:
            warn(
                f"{name}.removed",
                f"{tag.name}= was removed in RFC 9989; receivers ignore it "
                "(RFC 7489 receivers still apply it)",
                tag.position,
                tag.name,
            )
        elif name not in _KNOWN_TAGS[rules]:
            warn("tag.unknown", _unknown_tag(tag.name, rules), tag.position, tag.name)
        elif tag.name != tag.name.lower():
            warn(
                "tag.case",
                f"tag {tag.name}= is not lower case; some receivers miss it",
                tag.position,
                tag.name,
            )

    ruf = _uris(by_name.get("ruf"), warn)
    for name, uris in (("rua", rua), ("ruf", ruf)):
        for uri in uris if new_rules else ():
            if uri.max_bytes is not None:
                # RFC 9989 §4.8: obs-dmarc-report-size; reporters ignore it
                warn(
                    f"{name}.size_obsolete",
                    f"{uri.uri}!…: the size limit is obsolete syntax (RFC 9989 §4.8); reporters ignore it",
                    by_name[name].position,
                    by_name[name].name,
                )
    # removed tags are not judged under RFC 9989: their values are kept for the report only
    legacy = _issue([], IssueSeverity.WARNING) if new_rules else warn
    psd, testing = Psd.UNSAID, False
    if new_rules:
        psd = _psd(by_name.get("psd"), warn)
        testing = _testing(by_name.get("t"), warn)
    if policy is None or any(i.severity is IssueSeverity.ERROR for i in issues):
        return TagListParse(text, None, tuple(issues))
    record = DmarcRecord(
        text,
        policy,
        sp,
        np,
        adkim=_alignment(by_name.get("adkim"), warn),
        aspf=_alignment(by_name.get("aspf"), warn),
        pct=_pct(by_name.get("pct"), legacy),
        rua=rua,
        ruf=ruf,
        fo=_fo(by_name.get("fo"), warn),
        rf=_rf(by_name.get("rf"), legacy),
        ri=_ri(by_name.get("ri"), legacy),
        psd=psd,
        testing=testing,
        rules=rules,
    )
    return TagListParse(text, record, tuple(issues))


_P_REQUIRED = {Rules.RFC7489: "RFC 7489 §6.3", Rules.RFC9989: "without a usable rua=, RFC 9989 §4.10.1"}


def _unknown_tag(name: str, rules: Rules) -> str:
    if rules is Rules.RFC7489 and name.lower() in ("psd", "t"):
        return f"{name}= is an RFC 9989 tag; RFC 7489 receivers ignore it"
    return f"unknown tag {name}= is ignored (a typo?)"


def _psd(tag: Tag | None, warn: _Add) -> Psd:
    if tag is None:
        return Psd.UNSAID
    try:
        return Psd(tag.value.lower())
    except ValueError:
        warn("psd.bad", f"psd={tag.value!r}: must be y, n or u; receivers use u", tag.position, tag.name)
        return Psd.UNSAID


def _testing(tag: Tag | None, warn: _Add) -> bool:
    if tag is None:
        return False
    value = tag.value.lower()
    if value not in ("y", "n"):
        warn("t.bad", f"t={tag.value!r}: must be y or n; receivers use n", tag.position, tag.name)
    return value == "y"


class _Add:
    def __init__(self, issues: list[RecordIssue], severity: IssueSeverity) -> None:
        self.issues, self.severity = issues, severity

    def __call__(self, code: str, message: str, position: int | None, tag: str | None) -> None:
        self.issues.append(RecordIssue(self.severity, code, message, position, tag))


def _issue(issues: list[RecordIssue], severity: IssueSeverity) -> _Add:
    return _Add(issues, severity)


def _policy(tag: Tag | None, complain: _Add, rules: Rules) -> Policy | None:
    if tag is None:
        return None
    try:
        return Policy(tag.value.lower())
    except ValueError:
        consequence = ""
        if complain.severity is IssueSeverity.WARNING and rules is Rules.RFC9989:
            consequence = "; receivers act as if p=none (RFC 9989 §4.10.1)"
        complain(
            f"{tag.name.lower()}.bad",
            f"{tag.name}={tag.value!r}: must be none, quarantine or reject{consequence}",
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
