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

from mecsa.checks.base import CheckSpec, Context
from mecsa.dns.answer import DnsAnswer, Rcode
from mecsa.model import CheckResult, Finding, ProtocolVerdict, Status, VerdictStatus
from mecsa.records.dkim import DkimParse, KeyFormat, looks_like_dkim_key, parse_dkim_key

PROTOCOL = "dkim"
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
    selector: str
    given: bool
    answer: DnsAnswer

    @property
    def key_texts(self) -> tuple[str, ...]:
        """TXT strings meant as key records; others (e.g. a wildcard's SPF record) are ignored."""
        return tuple(t for t in self.answer.texts() if looks_like_dkim_key(t))


@dataclass(frozen=True, slots=True)
class DkimObservation:
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
        *(ctx.resolver.resolve(f"{s}._domainkey.{ctx.domain}", "TXT") for s in selectors),
    )
    lookups = tuple(SelectorLookup(s, s in given, a) for s, a in zip(selectors, answers[1:], strict=True))
    return DkimObservation(ctx.domain, lookups, answers[0])


@dataclass
class _Tally:
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
                Finding(
                    "dkim.lookup_failed",
                    Status.ERROR,
                    PROTOCOL,
                    f"could not look up selector {lookup.selector}: {lookup.answer.describe_failure()}",
                    subject=lookup.answer.qname,
                )
            )
            continue
        texts = lookup.key_texts
        if len(texts) > 1:
            add(
                Finding(
                    "dkim.multiple_records",
                    Status.WARN,
                    PROTOCOL,
                    f"selector {lookup.selector} has {len(texts)} key records; verifiers may use any one "
                    "(RFC 6376 §3.6.2.2)",
                    texts,
                    "dkim.fix_record",
                    lookup.answer.qname,
                )
            )
        for text in texts:
            _judge_key(lookup.selector, lookup.answer.qname, parse_dkim_key(text), add, tally)

    for selector, name, evidence in tally.revoked:
        status = Status.INFO if tally.usable else Status.FAIL
        add(
            Finding(
                "dkim.revoked",
                status,
                PROTOCOL,
                f"selector {selector}: the key is revoked (empty p=); mail signed with it fails",
                evidence,
                None if tally.usable else "dkim.publish",
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

    def finding(fid: str, status: Status, message: str, fix: str | None = None) -> None:
        found = Finding(fid, status, PROTOCOL, f"selector {selector}: {message}", evidence, fix, name)
        add(found)
        if status is Status.FAIL:
            tally.broken.append(found)

    record = parsed.record
    if record is None:
        finding(
            "dkim.invalid",
            Status.FAIL,
            "verifiers cannot use this key record: " + "; ".join(map(str, parsed.errors)),
            "dkim.fix_record",
        )
        return
    if record.revoked:
        tally.revoked.append((selector, name, evidence))
        return
    codes = {i.code: i for i in parsed.warnings}
    if "h.signature_algorithm" in codes:
        finding(
            "dkim.hash_rsa_sha256",
            Status.FAIL,
            str(codes.pop("h.signature_algorithm"))
            + " (fix: replace h=rsa-sha256 with h=sha256, or drop h=)",
            "dkim.fix_h_tag",
        )
    elif not record.sha256_allowed:
        finding("dkim.hash_unusable", Status.FAIL, str(codes.pop("h.no_sha256")), "dkim.fix_h_tag")
    if not record.for_email:
        finding(
            "dkim.not_for_email",
            Status.FAIL,
            f"s={':'.join(record.service_types)} excludes email (needs * or email)",
            "dkim.fix_record",
        )
    strength_ok = True
    if record.key_type == "rsa" and record.key_bits is not None:
        if record.key_bits < MIN_RSA_BITS:
            strength_ok = False
            finding(
                "dkim.key_too_small",
                Status.FAIL,
                f"{record.key_bits}-bit RSA key: below {MIN_RSA_BITS} bits verifiers reject it "
                "(RFC 8301 §3.2) and it can be factored to forge mail",
                "dkim.rotate_key",
            )
        elif record.key_bits < GOOD_RSA_BITS:
            finding(
                "dkim.key_weak",
                Status.WARN,
                f"{record.key_bits}-bit RSA key: use {GOOD_RSA_BITS} bits (RFC 8301 §3.2)",
                "dkim.rotate_key",
            )
    if record.testing:
        finding(
            "dkim.testing",
            Status.WARN,
            "t=y: testing mode, verifiers may treat signed mail as unsigned",
            "dkim.leave_testing",
        )
    if record.key_format is KeyFormat.PKCS1:
        finding("dkim.pkcs1_key", Status.INFO, str(codes.pop("p.pkcs1")))
    for issue in codes.values():
        finding("dkim.record_warning", Status.WARN, str(issue), "dkim.fix_record")
    usable = record.sha256_allowed and record.for_email and strength_ok
    if usable:
        size = "Ed25519" if record.key_type == "ed25519" else f"{record.key_bits}-bit RSA"
        finding("dkim.key_ok", Status.PASS, f"{size} key, usable")
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
        add(Finding("dkim.missing", Status.FAIL, PROTOCOL, why, (), "dkim.publish"))
        add(Finding("dkim.likely_unknown_selector", Status.WARN, PROTOCOL, hint, (), "dkim.give_selector"))
        return ProtocolVerdict(PROTOCOL, VerdictStatus.FAIL, f"{why}; {hint}")
    if obs.domainkey.rcode is Rcode.NXDOMAIN:
        why += f"; {domainkey} does not exist (NXDOMAIN), so no selector exists below it (RFC 8020)"
    add(Finding("dkim.missing", Status.FAIL, PROTOCOL, why, (), "dkim.publish"))
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
    findings={
        "dkim.lookup_failed": "a selector lookup failed: the tool could not find out",
        "dkim.multiple_records": "a selector holds more than one key record",
        "dkim.invalid": "a key record verifiers cannot use (syntax, v=, k=, p=)",
        "dkim.revoked": "a revoked key (empty p=): info beside a usable key, fail alone",
        "dkim.hash_rsa_sha256": "h=rsa-sha256, a signature algorithm where a hash belongs: verifiers reject",
        "dkim.hash_unusable": "h= allows no hash that verifiers accept",
        "dkim.not_for_email": "s= excludes email",
        "dkim.key_too_small": "RSA key below 1024 bits",
        "dkim.key_weak": "RSA key below 2048 bits",
        "dkim.testing": "t=y testing mode",
        "dkim.pkcs1_key": "the key is published as bare PKCS#1, not SubjectPublicKeyInfo",
        "dkim.record_warning": "a doubtful tag in a key record",
        "dkim.key_ok": "a usable key",
        "dkim.missing": "no key under any selector tried",
        "dkim.likely_unknown_selector": "_domainkey exists: keys likely sit under an unknown selector",
    },
)
