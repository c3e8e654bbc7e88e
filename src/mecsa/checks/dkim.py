"""DKIM: key records under the selectors the user names plus a built-in list of common ones.

DNS cannot list selectors, so only guessed or given names can be looked at. Verdict rule:
- pass: at least one usable key (valid, for email, sha256 allowed, RSA of 1024 bits or more,
  or Ed25519) and no broken key among those found. Failed lookups of other selectors do not
  block a pass: a usable key is already proof, and each failure is its own error finding.
- fail: a broken key anywhere (it breaks mail signed with it; a sub-1024-bit key can be
  factored and used to forge), or no usable key found while every lookup answered. An empty
  p= (revoked) is the RFC's way to retire a selector: info beside a usable key, fail alone.
- error: no key found and some lookups failed: a key may sit behind them.
When nothing is found, `_domainkey.<domain>` existing (NOERROR) hints at keys under an unknown
selector (RFC 8020: NXDOMAIN would mean nothing below it exists); a hint, never proof.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable
from dataclasses import dataclass

from mecsa.checks.base import CheckSpec
from mecsa.dns.answer import DnsAnswer, Rcode
from mecsa.model import CheckResult, Finding, FindingKind, ProtocolVerdict, Status, VerdictStatus
from mecsa.observe import Context
from mecsa.records.dkim import DkimParse, KeyFormat, looks_like_dkim_key, parse_dkim_key

PROTOCOL = "dkim"

# --- the findings this check declares (id, status, protocol, meaning, remedy) ---

LOOKUP_FAILED = FindingKind(
    "dkim.lookup_failed", Status.ERROR, PROTOCOL, "a selector lookup failed: the tool could not find out"
)
MULTIPLE_RECORDS = FindingKind(
    "dkim.multiple_records",
    Status.WARN,
    PROTOCOL,
    "a selector holds more than one key record",
    "dkim.fix_record",
)
INVALID = FindingKind(
    "dkim.invalid",
    Status.FAIL,
    PROTOCOL,
    "a key record verifiers cannot use (syntax, v=, k=, p=)",
    "dkim.fix_record",
)
REVOKED = FindingKind(
    "dkim.revoked", Status.FAIL, PROTOCOL, "a revoked key (empty p=) and no usable key", "dkim.publish"
)
# The same id beside a usable key: the revoked key is then a leftover, not a failure.
REVOKED_BESIDE_USABLE = FindingKind(
    "dkim.revoked", Status.INFO, PROTOCOL, "a revoked key (empty p=) beside a usable key"
)
HASH_RSA_SHA256 = FindingKind(
    "dkim.hash_rsa_sha256",
    Status.FAIL,
    PROTOCOL,
    "h=rsa-sha256, a signature algorithm where a hash belongs: verifiers reject",
    "dkim.fix_h_tag",
)
HASH_UNUSABLE = FindingKind(
    "dkim.hash_unusable", Status.FAIL, PROTOCOL, "h= allows no hash that verifiers accept", "dkim.fix_h_tag"
)
NOT_FOR_EMAIL = FindingKind(
    "dkim.not_for_email", Status.FAIL, PROTOCOL, "s= excludes email", "dkim.fix_record"
)
KEY_TOO_SMALL = FindingKind(
    "dkim.key_too_small", Status.FAIL, PROTOCOL, "RSA key below 1024 bits", "dkim.rotate_key"
)
KEY_WEAK = FindingKind("dkim.key_weak", Status.WARN, PROTOCOL, "RSA key below 2048 bits", "dkim.rotate_key")
TESTING = FindingKind("dkim.testing", Status.WARN, PROTOCOL, "t=y testing mode", "dkim.leave_testing")
PKCS1_KEY = FindingKind(
    "dkim.pkcs1_key", Status.INFO, PROTOCOL, "the key is published as bare PKCS#1, not SubjectPublicKeyInfo"
)
RECORD_WARNING = FindingKind(
    "dkim.record_warning", Status.WARN, PROTOCOL, "a doubtful tag in a key record", "dkim.fix_record"
)
KEY_OK = FindingKind("dkim.key_ok", Status.PASS, PROTOCOL, "a usable key")
MISSING = FindingKind(
    "dkim.missing", Status.FAIL, PROTOCOL, "no key under any selector tried", "dkim.publish"
)
LIKELY_UNKNOWN_SELECTOR = FindingKind(
    "dkim.likely_unknown_selector",
    Status.WARN,
    PROTOCOL,
    "_domainkey exists: keys likely sit under an unknown selector",
    "dkim.give_selector",
)

MIN_RSA_BITS = 1024
GOOD_RSA_BITS = 2048

# Selectors seen widely: generic ones, Microsoft 365 (selector1/2), Google, Mailchimp/Mandrill (k1..),
# SendGrid/Amazon-style (s1/s2), Zoho, Proton, Fastmail (fm1..), and common key-size names.
COMMON_SELECTORS: tuple[str, ...] = (
    "default",
    "selector1",
    "selector2",
    "google",
    "k1",
    "k2",
    "k3",
    "s1",
    "s2",
    "mail",
    "dkim",
    "mx",
    "smtp",
    "email",
    "key1",
    "key2",
    "dk",
    "sig1",
    "s1024",
    "s2048",
    "mandrill",
    "zoho",
    "protonmail",
    "fm1",
    "fm2",
    "fm3",
)


def dated_selectors(today: datetime.date) -> tuple[str, ...]:
    """`sYYYYMM` for this month and the previous one: `mecsa harden` names new keys so."""
    previous = (today.replace(day=1) - datetime.timedelta(days=1)).replace(day=1)
    return (f"s{today:%Y%m}", f"s{previous:%Y%m}")


@dataclass(frozen=True, slots=True)
class SelectorLookup:
    """One selector's TXT answer; `given` when the user named it (`--dkim-selector`)."""

    selector: str
    given: bool
    answer: DnsAnswer

    @property
    def key_texts(self) -> tuple[str, ...]:
        """TXT strings meant as key records; others (e.g. a wildcard's SPF record) are ignored."""
        return tuple(t for t in self.answer.texts() if looks_like_dkim_key(t))


@dataclass(frozen=True, slots=True)
class DkimObservation:
    """Every selector asked and the `_domainkey.<domain>` answer (RFC 6376 §3.6.2.1)."""

    domain: str
    lookups: tuple[SelectorLookup, ...]
    domainkey: DnsAnswer


async def observe(ctx: Context) -> DkimObservation:
    """Look up every selector (given, common, dated) and `_domainkey.<domain>` concurrently."""
    given = tuple(dict.fromkeys(s.lower() for s in ctx.options.dkim_selectors))
    builtin = (*COMMON_SELECTORS, *dated_selectors(datetime.datetime.now(datetime.UTC).date()))
    selectors = (*given, *(s for s in dict.fromkeys(builtin) if s not in given))
    answers = await asyncio.gather(
        ctx.resolver.resolve(f"_domainkey.{ctx.domain}", "TXT"),
        # Guesses wait for the assessment's other first questions (MX first: dns/resolver.py).
        *(
            ctx.resolver.resolve(f"{s}._domainkey.{ctx.domain}", "TXT", background=s not in given)
            for s in selectors
        ),
    )
    lookups = tuple(SelectorLookup(s, s in given, a) for s, a in zip(selectors, answers[1:], strict=True))
    return DkimObservation(ctx.domain, lookups, answers[0])


@dataclass
class _Tally:
    """The keys sorted as usable, broken or revoked while the findings are made."""

    usable: list[str]
    broken: list[Finding]
    revoked: list[tuple[str, str, tuple[str, ...]]]


def evaluate(obs: DkimObservation) -> CheckResult:
    """Judge every key found and derive the `dkim` verdict (rule in the module docstring)."""
    findings: list[Finding] = []
    add = findings.append
    tally = _Tally([], [], [])
    per_selector: dict[str, object] = {}
    failed = [lk for lk in obs.lookups if lk.answer.failed]
    for lookup in obs.lookups:
        per_selector[lookup.selector] = _lookup_json(lookup)
        if lookup.answer.failed:
            add(
                LOOKUP_FAILED(
                    f"could not look up selector {lookup.selector}: {lookup.answer.describe_failure()}",
                    subject=lookup.answer.qname,
                )
            )
            continue
        texts = lookup.key_texts
        if len(texts) > 1:
            add(
                MULTIPLE_RECORDS(
                    f"selector {lookup.selector} has {len(texts)} key records; verifiers may use any one "
                    "(RFC 6376 §3.6.2.2)",
                    texts,
                    lookup.answer.qname,
                )
            )
        for text in texts:
            _judge_key(lookup.selector, lookup.answer.qname, parse_dkim_key(text), add, tally)

    for selector, name, evidence in tally.revoked:
        kind = REVOKED_BESIDE_USABLE if tally.usable else REVOKED
        add(
            kind(
                f"selector {selector}: the key is revoked (empty p=); mail signed with it fails",
                evidence,
                name,
            )
        )
    verdict = _verdict(obs, tally, failed, add)
    details = {
        "selectors_tried": len(obs.lookups),
        "selectors": per_selector,
        "domainkey_rcode": obs.domainkey.rcode.value,
        "usable_selectors": tally.usable,
    }
    return CheckResult("dkim", tuple(findings), (verdict,), details)


def _judge_key(
    selector: str, name: str, parsed: DkimParse, add: Callable[[Finding], None], tally: _Tally
) -> None:
    """Judge one key record; findings name the record (`name`) so that fixes can address it."""
    evidence = (parsed.text,)

    def finding(kind: FindingKind, message: str) -> None:
        found = kind(f"selector {selector}: {message}", evidence, name)
        add(found)
        if kind.status is Status.FAIL:
            tally.broken.append(found)

    record = parsed.record
    if record is None:
        finding(INVALID, "verifiers cannot use this key record: " + "; ".join(map(str, parsed.errors)))
        return
    if record.revoked:
        tally.revoked.append((selector, name, evidence))
        return
    codes = {i.code: i for i in parsed.warnings}
    if "h.signature_algorithm" in codes:
        finding(
            HASH_RSA_SHA256,
            str(codes.pop("h.signature_algorithm"))
            + " (fix: replace h=rsa-sha256 with h=sha256, or drop h=)",
        )
    elif not record.sha256_allowed:
        finding(HASH_UNUSABLE, str(codes.pop("h.no_sha256")))
    if not record.for_email:
        finding(NOT_FOR_EMAIL, f"s={':'.join(record.service_types)} excludes email (needs * or email)")
    strength_ok = True
    if record.key_type == "rsa" and record.key_bits is not None:
        if record.key_bits < MIN_RSA_BITS:
            strength_ok = False
            finding(
                KEY_TOO_SMALL,
                f"{record.key_bits}-bit RSA key: below {MIN_RSA_BITS} bits verifiers reject it "
                "(RFC 8301 §3.2) and it can be factored to forge mail",
            )
        elif record.key_bits < GOOD_RSA_BITS:
            finding(KEY_WEAK, f"{record.key_bits}-bit RSA key: use {GOOD_RSA_BITS} bits (RFC 8301 §3.2)")
    if record.testing:
        finding(TESTING, "t=y: testing mode, verifiers may treat signed mail as unsigned")
    if record.key_format is KeyFormat.PKCS1:
        finding(PKCS1_KEY, str(codes.pop("p.pkcs1")))
    for issue in codes.values():
        finding(RECORD_WARNING, str(issue))
    usable = record.sha256_allowed and record.for_email and strength_ok
    if usable:
        size = "Ed25519" if record.key_type == "ed25519" else f"{record.key_bits}-bit RSA"
        finding(KEY_OK, f"{size} key, usable")
        tally.usable.append(selector)


def _verdict(
    obs: DkimObservation, tally: _Tally, failed: list[SelectorLookup], add: Callable[[Finding], None]
) -> ProtocolVerdict:
    tried = len(obs.lookups)
    if tally.broken:
        return ProtocolVerdict(PROTOCOL, VerdictStatus.FAIL, tally.broken[0].message)
    if tally.usable:
        return ProtocolVerdict(
            PROTOCOL, VerdictStatus.PASS, f"usable key under selector(s) {', '.join(tally.usable)}"
        )
    if tally.revoked:
        names = ", ".join(s for s, _, _ in tally.revoked)
        return ProtocolVerdict(PROTOCOL, VerdictStatus.FAIL, f"only revoked keys found (selector(s) {names})")
    if failed:
        why = f"no key found, and {len(failed)} of {tried} selector lookups failed: a key may be behind them"
        return ProtocolVerdict(PROTOCOL, VerdictStatus.ERROR, why)
    why = f"no DKIM key under the {tried} selectors tried"
    domainkey = f"_domainkey.{obs.domain}"
    if obs.domainkey.exists:
        hint = (
            f"{domainkey} exists, so keys are likely published under a selector not tried; "
            "name it with --dkim-selector (a hint from the DNS tree, not proof)"
        )
        add(MISSING(why, ()))
        add(LIKELY_UNKNOWN_SELECTOR(hint, ()))
        return ProtocolVerdict(PROTOCOL, VerdictStatus.FAIL, f"{why}; {hint}")
    if obs.domainkey.rcode is Rcode.NXDOMAIN:
        why += f"; {domainkey} does not exist (NXDOMAIN), so no selector exists below it (RFC 8020)"
    add(MISSING(why, ()))
    return ProtocolVerdict(PROTOCOL, VerdictStatus.FAIL, why)


def _lookup_json(lookup: SelectorLookup) -> dict[str, object]:
    out: dict[str, object] = {"given": lookup.given, "rcode": lookup.answer.rcode.value}
    keys = []
    for text in lookup.key_texts:
        record = parse_dkim_key(text).record
        keys.append(
            {"valid": False, "record": text}
            if record is None
            else {
                "valid": True,
                "type": record.key_type,
                "bits": record.key_bits,
                "revoked": record.revoked,
                "testing": record.testing,
                "hashes": list(record.hash_algorithms) if record.hash_algorithms is not None else None,
            }
        )
    if keys:
        out["keys"] = keys
    ignored = len(lookup.answer.texts()) - len(lookup.key_texts)
    if ignored:
        out["ignored_txt"] = ignored
    return out


CHECK = CheckSpec(
    name="dkim",
    summary="DKIM key records under given and common selectors: syntax, key type and size, h=, t=",
    protocols=(PROTOCOL,),
    observe=observe,
    evaluate=evaluate,
    findings=(
        LOOKUP_FAILED,
        MULTIPLE_RECORDS,
        INVALID,
        REVOKED,
        HASH_RSA_SHA256,
        HASH_UNUSABLE,
        NOT_FOR_EMAIL,
        KEY_TOO_SMALL,
        KEY_WEAK,
        TESTING,
        PKCS1_KEY,
        RECORD_WARNING,
        KEY_OK,
        MISSING,
        REVOKED_BESIDE_USABLE,
        LIKELY_UNKNOWN_SELECTOR,
    ),
)
