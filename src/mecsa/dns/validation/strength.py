"""Algorithm strength of a zone's keys and its DS digests, per RFC 8624 §3 (updated by RFC 9904)
and RFC 9905 (SHA-1 signing algorithms deprecated)."""

from __future__ import annotations

from collections.abc import Iterable

import dns.dnssec
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.DS

from mecsa.dns.validation.verdict import StrengthNote

RSA_ALGORITHMS = frozenset({5, 7, 8, 10})
# RFC 9905 §2: RSASHA1 (5) and RSASHA1-NSEC3-SHA1 (7) MUST NOT be used to create signatures.
SHA1_ALGORITHMS = frozenset({5, 7})
# RFC 8624 §3.1: RSAMD5, DSA and DSA-NSEC3-SHA1 MUST NOT be used for validation: we treat them as
# unsupported, so a zone signed only with them is insecure (RFC 4035 §5.2), never secure.
REFUSED_ALGORITHMS = frozenset({1, 3, 6})
# The algorithms dns.dnssec validates here (RFC 8624 §3.1 "MUST"/"RECOMMENDED"/"MAY" for validation).
VALIDATED_ALGORITHMS = frozenset({5, 7, 8, 10, 13, 14, 15, 16})
# DS digest types we can compute: SHA-1 (1), SHA-256 (2), SHA-384 (4) (RFC 8624 §3.3).
VALIDATED_DIGESTS = frozenset({1, 2, 4})
MIN_RSA_BITS = 2048


def algorithm_name(number: int) -> str:
    try:
        return f"{dns.dnssec.algorithm_to_text(number)} ({number})"
    except ValueError:
        return f"algorithm {number}"


def rsa_modulus_bits(key: dns.rdtypes.ANY.DNSKEY.DNSKEY) -> int:
    """The RSA modulus size of a DNSKEY (RFC 3110 §2: exponent length, exponent, modulus)."""
    blob = key.key
    if not blob:
        return 0
    if blob[0] == 0:
        exp_len, start = int.from_bytes(blob[1:3], "big"), 3
    else:
        exp_len, start = blob[0], 1
    modulus = blob[start + exp_len :]
    return int.from_bytes(modulus, "big").bit_length()


def key_notes(zone: str, keys: Iterable[dns.rdtypes.ANY.DNSKEY.DNSKEY]) -> tuple[StrengthNote, ...]:
    """What is weak about the keys a zone signs with."""
    notes: list[StrengthNote] = []
    for key in keys:
        name = algorithm_name(key.algorithm)
        tag = dns.dnssec.key_id(key)
        if key.algorithm in REFUSED_ALGORITHMS:
            text = f"{zone} has a key {tag} with {name}: MUST NOT be validated (RFC 8624 §3.1)"
            notes.append(StrengthNote(zone, "fail", text))
        elif key.algorithm in SHA1_ALGORITHMS:
            text = f"{zone} signs with {name} (key {tag}): SHA-1 signing is deprecated (RFC 9905 §2)"
            notes.append(StrengthNote(zone, "warn", text))
        if key.algorithm in RSA_ALGORITHMS and (bits := rsa_modulus_bits(key)) < MIN_RSA_BITS:
            text = f"{zone} key {tag} is RSA of {bits} bits, under {MIN_RSA_BITS} (RFC 8624 §3.1)"
            notes.append(StrengthNote(zone, "warn", text))
    return _unique(notes)


def ds_notes(zone: str, parent: str, records: Iterable[dns.rdtypes.ANY.DS.DS]) -> tuple[StrengthNote, ...]:
    notes = [
        StrengthNote(
            zone,
            "warn",
            f"DS for {zone} at {parent} (key {ds.key_tag}) uses a SHA-1 digest: MUST NOT (RFC 8624 §3.3)",
        )
        for ds in records
        if ds.digest_type == 1
    ]
    return _unique(notes)


def _unique(notes: list[StrengthNote]) -> tuple[StrengthNote, ...]:
    out: list[StrengthNote] = []
    for note in notes:
        if note not in out:
            out.append(note)
    return tuple(out)
