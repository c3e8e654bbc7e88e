"""Every DKIM signature of a message, verified with dkimpy against keys fetched through our resolver.

dkimpy does the cryptography and canonicalisation (`dkim.DKIM(msg).verify(idx, dnsfunc=...)`
reaches every signature, not only the first). It hides *why* a key could not be used (it logs
and returns False), so the key TXT records are fetched first, concurrently, through the
project's resolver, and judged here: a failed lookup is a temperror, a missing or broken key a
permerror, and only a usable key with a failing signature is a `fail`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from mecsa.dns.answer import DnsAnswer
from mecsa.records.dkim import looks_like_dkim_key, parse_dkim_key
from mecsa.spf.evaluator import DnsLookup

_WSP = re.compile(rb"\s+")


class DkimResult(StrEnum):
    """Per-signature results, as RFC 8601 §2.7.1 names them."""

    PASS = "pass"
    FAIL = "fail"  # the key was usable and the signature (or body hash) did not verify
    PERMERROR = "permerror"  # malformed signature, no key, unusable or revoked key
    TEMPERROR = "temperror"  # the key lookup failed: could not find out


class KeyStatus(StrEnum):
    FOUND = "found"
    NO_KEY = "no_key"
    LOOKUP_FAILED = "lookup_failed"


@dataclass(frozen=True, slots=True)
class KeyLookup:
    """The key record at `<s>._domainkey.<d>`, as looked up before verification."""

    name: str
    status: KeyStatus
    text: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class DkimSignatureResult:
    """The verdict on one DKIM-Signature header field (index 0 is the topmost)."""

    index: int
    result: DkimResult
    reason: str
    domain: str | None
    selector: str | None
    algorithm: str | None
    key_type: str | None = None
    key_bits: int | None = None
    identity: str | None = None
    signed_headers: tuple[str, ...] = ()
    testing_key: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "result": self.result.value,
            "reason": self.reason,
            "d": self.domain,
            "s": self.selector,
            "a": self.algorithm,
            "key_type": self.key_type,
            "key_bits": self.key_bits,
            "i": self.identity,
            "h": list(self.signed_headers),
            "testing_key": self.testing_key,
        }


@dataclass(frozen=True, slots=True)
class _Signature:
    index: int
    tags: Mapping[str, str]
    problem: str | None

    @property
    def key_name(self) -> str | None:
        d, s = self.tags.get("d"), self.tags.get("s")
        return f"{s}._domainkey.{d}".lower().rstrip(".") if d and s else None


def _signatures(raw: bytes) -> list[_Signature]:
    import dkim
    from dkim.util import DuplicateTag, InvalidTagSpec, parse_tag_value

    try:
        headers = dkim.DKIM(raw).headers
    except dkim.DKIMException:
        return []
    out: list[_Signature] = []
    for value in (v for n, v in headers if n.lower() == b"dkim-signature"):
        index = len(out)
        try:
            parsed = parse_tag_value(_WSP.sub(b" ", value))
        except (InvalidTagSpec, DuplicateTag) as exc:
            out.append(_Signature(index, {}, f"malformed DKIM-Signature tag list: {exc}"))
            continue
        tags = {k.decode("ascii", "replace"): _text(v) for k, v in parsed.items()}
        out.append(_Signature(index, tags, None))
    return out


def _text(value: bytes) -> str:
    return _WSP.sub(b"", value).decode("ascii", "replace")


async def _fetch_key(resolver: DnsLookup, name: str) -> KeyLookup:
    answer: DnsAnswer = await resolver.resolve(name, "TXT")
    if answer.failed:
        return KeyLookup(name, KeyStatus.LOOKUP_FAILED, None, answer.describe_failure())
    keys = [t for t in answer.texts() if looks_like_dkim_key(t)]
    if not keys:
        why = "no such name" if answer.rcode.value == "NXDOMAIN" else "no DKIM key record (TXT) there"
        return KeyLookup(name, KeyStatus.NO_KEY, None, f"{name}: {why}")
    return KeyLookup(name, KeyStatus.FOUND, keys[0], f"key record at {name}")


async def fetch_keys(resolver: DnsLookup, names: Sequence[str]) -> dict[str, KeyLookup]:
    """Look up every distinct key record name concurrently."""
    unique = sorted(set(names))
    found = await asyncio.gather(*(_fetch_key(resolver, n) for n in unique))
    return dict(zip(unique, found, strict=True))


async def check_dkim(raw: bytes, resolver: DnsLookup) -> tuple[DkimSignatureResult, ...]:
    """Verify every DKIM signature of `raw`: keys fetched concurrently, then verified off the loop."""
    signatures = await asyncio.to_thread(_signatures, raw)
    keys = await fetch_keys(resolver, [n for s in signatures if (n := s.key_name)])
    return await asyncio.to_thread(verify_all, raw, signatures, keys)


def verify_all(
    raw: bytes, signatures: Sequence[_Signature], keys: Mapping[str, KeyLookup]
) -> tuple[DkimSignatureResult, ...]:
    """Verify each signature with dkimpy; `keys` answers its DNS questions (no network here)."""
    return tuple(_verify_one(raw, sig, keys) for sig in signatures)


def _verify_one(raw: bytes, sig: _Signature, keys: Mapping[str, KeyLookup]) -> DkimSignatureResult:
    import dkim

    tags = sig.tags
    template = DkimSignatureResult(
        index=sig.index,
        result=DkimResult.PERMERROR,
        reason="",
        domain=tags.get("d", "").lower().rstrip(".") or None,
        selector=tags.get("s") or None,
        algorithm=tags.get("a") or None,
        identity=tags.get("i"),
        signed_headers=tuple(h.strip().lower() for h in tags.get("h", "").split(":") if h.strip()),
    )
    if sig.problem is not None:
        return replace(template, reason=sig.problem)
    name = sig.key_name
    lookup = keys.get(name) if name else None
    if lookup is not None and lookup.status is KeyStatus.FOUND and lookup.text is not None:
        record = parse_dkim_key(lookup.text).record
        if record is not None:
            bits = 256 if record.key_type == "ed25519" else record.key_bits
            template = replace(template, key_type=record.key_type, key_bits=bits, testing_key=record.testing)
            unfit = _unfit_key(template.algorithm, record.key_type, record.hash_algorithms, name)
            if unfit is not None:
                return replace(template, reason=unfit)

    def dnsfunc(qname: bytes | str, timeout: float = 5) -> bytes | None:
        text = qname.decode("ascii", "replace") if isinstance(qname, bytes) else qname
        found = keys.get(text.lower().rstrip("."))
        return found.text.encode("utf-8") if found and found.text else None

    try:
        ok = dkim.DKIM(raw).verify(sig.index, dnsfunc=dnsfunc)
    except dkim.ValidationError as exc:
        text = str(exc)
        if text.startswith("body hash mismatch"):
            return replace(template, result=DkimResult.FAIL, reason="the body was altered: " + text)
        return replace(template, reason=f"invalid signature: {text}")
    except dkim.DKIMException as exc:  # key too small, malformed message or signature
        return replace(template, reason=f"{type(exc).__name__}: {exc}")
    if ok:
        return replace(template, result=DkimResult.PASS, reason=f"signature verified with the key at {name}")
    status, reason = _why_not(lookup, name)
    return replace(template, result=status, reason=reason)


def _unfit_key(
    algorithm: str | None, key_type: str, hashes: Sequence[str] | None, name: str | None
) -> str | None:
    """Why the key cannot verify a signature with this a= (RFC 6376 §6.1.2), or None when it can.

    §6.1.2 makes a key whose k= does not match the signature's algorithm, or whose h= excludes
    its hash, "inappropriate": the verifier must not try it, and the result is a permerror.
    """
    key_alg, dash, hash_alg = (algorithm or "").lower().partition("-")
    if not dash:
        return None  # malformed a=: dkimpy reports it
    if key_alg != key_type.lower():
        return (
            f"inappropriate key algorithm: a={algorithm} cannot use the key at {name}, which is k={key_type}"
        )
    if hashes is not None and hash_alg not in (h.lower() for h in hashes):
        return (
            f"inappropriate hash algorithm: a={algorithm}, but the key at {name} allows only "
            f"h={':'.join(hashes)}"
        )
    return None


def _why_not(lookup: KeyLookup | None, name: str | None) -> tuple[DkimResult, str]:
    """Why dkimpy said False: read from what we know of the key, never guessed as `fail`."""
    if lookup is None:
        return DkimResult.PERMERROR, f"no key record name (d= or s= missing): {name}"
    if lookup.status is KeyStatus.LOOKUP_FAILED:
        return DkimResult.TEMPERROR, f"key lookup failed: {lookup.reason}"
    if lookup.status is KeyStatus.NO_KEY:
        return DkimResult.PERMERROR, f"no key: {lookup.reason}"
    parsed = parse_dkim_key(lookup.text or "")
    if parsed.record is None:
        problems = "; ".join(str(i) for i in parsed.errors)
        return DkimResult.PERMERROR, f"the key record at {name} is unusable: {problems}"
    if parsed.record.revoked:
        return DkimResult.PERMERROR, f"the key at {name} is revoked (empty p=)"
    return DkimResult.FAIL, f"the signature does not verify with the key at {name}"
