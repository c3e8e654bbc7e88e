"""Typed readings of one assessment document (the JSON of `mecsa assess --json`, as stored).

The monitor reads documents, not the in-memory model: stored documents are the contract, and the
previous assessment exists only as a document. Every reader tolerates a key that is missing (an older
document, a check that was skipped): it returns nothing rather than guessing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

Document = Mapping[str, Any]
AREAS: tuple[str, ...] = ("confidentiality", "phishing", "integrity")


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def check(doc: Document, name: str) -> Mapping[str, Any]:
    return _dict(_dict(doc.get("checks")).get(name))


def levels(doc: Document) -> dict[str, int | None]:
    scores = _dict(doc.get("scores"))
    return {a: v if isinstance(v := scores.get(a), int) and not isinstance(v, bool) else None for a in AREAS}


def protocol_status(doc: Document) -> dict[str, tuple[str, str]]:
    """protocol -> (status, reason)."""
    out: dict[str, tuple[str, str]] = {}
    for name, verdict in _dict(doc.get("protocols")).items():
        v = _dict(verdict)
        out[str(name)] = (str(v.get("status", "error")), str(v.get("reason", "")))
    return out


def findings(doc: Document) -> list[Mapping[str, Any]]:
    return [f for f in _list(doc.get("findings")) if isinstance(f, Mapping) and f.get("id")]


def finding_key(f: Mapping[str, Any]) -> tuple[str, str]:
    return str(f["id"]), str(f.get("subject") or "")


def mx_addresses(doc: Document) -> dict[str, tuple[str, ...]]:
    """MX host -> its addresses, as the mx check found them."""
    out: dict[str, tuple[str, ...]] = {}
    for host in _list(check(doc, "mx").get("hosts")):
        h = _dict(host)
        if h.get("name"):
            out[str(h["name"]).lower().rstrip(".")] = tuple(sorted(str(a) for a in _list(h.get("addresses"))))
    return out


@dataclass(frozen=True, slots=True)
class CertSeen:
    """The leaf certificate one MX address presented."""

    host: str
    address: str
    subject: str
    not_after: str
    serial: str
    days_left: int | None
    spki_sha256: str | None


def certificates(doc: Document) -> dict[tuple[str, str], CertSeen]:
    """(host, address) -> the leaf it presented, from the x509 check."""
    out: dict[tuple[str, str], CertSeen] = {}
    for host in _list(check(doc, "x509").get("hosts")):
        h = _dict(host)
        for address in _list(h.get("addresses")):
            a = _dict(address)
            cert = _dict(a.get("certificate"))
            if not cert or not h.get("name") or not a.get("address"):
                continue
            days = a.get("days_left")
            spki = cert.get("spki_sha256")
            out[(str(h["name"]), str(a["address"]))] = CertSeen(
                str(h["name"]),
                str(a["address"]),
                str(cert.get("subject", "")),
                str(cert.get("not_after", "")),
                str(cert.get("serial", "")),
                days if isinstance(days, int) else None,
                str(spki) if spki else None,
            )
    return out


@dataclass(frozen=True, slots=True)
class DaneHost:
    """One MX host's TLSA records and, per address, whether the presented certificate matched."""

    host: str
    tlsa: tuple[str, ...]  # "3 1 1 <hex>" as published
    dnssec: str
    matched: Mapping[str, str]  # address -> "matched" | "no_match" | ...
    records_matched: Mapping[str, tuple[tuple[str, bool], ...]]  # address -> ((record, matched), ...)


def dane_hosts(doc: Document) -> Iterator[DaneHost]:
    for host in _list(check(doc, "dane").get("hosts")):
        h = _dict(host)
        if not h.get("name"):
            continue
        matched: dict[str, str] = {}
        records: dict[str, tuple[tuple[str, bool], ...]] = {}
        for address in _list(h.get("addresses")):
            a = _dict(address)
            if a.get("address"):
                matched[str(a["address"])] = str(a.get("dane", ""))
                records[str(a["address"])] = tuple(
                    (str(_dict(r).get("record", "")), bool(_dict(r).get("matched")))
                    for r in _list(a.get("records"))
                )
        yield DaneHost(
            str(h["name"]),
            tuple(str(r) for r in _list(h.get("tlsa"))),
            str(h.get("tlsa_dnssec", "")),
            matched,
            records,
        )


def smtp_unreachable(doc: Document) -> set[tuple[str, str]]:
    """(host, address) pairs whose port 25 did not answer: no connection, or no greeting."""
    out: set[tuple[str, str]] = set()
    for host in _list(check(doc, "starttls").get("hosts")):
        h = _dict(host)
        for address in _list(h.get("addresses")):
            a = _dict(address)
            smtp = _dict(a.get("smtp"))
            if not smtp or not h.get("name") or not a.get("address"):
                continue
            if not smtp.get("connected") or smtp.get("failed_stage") in ("connect", "banner"):
                out.add((str(h["name"]), str(a["address"])))
    return out


@dataclass(frozen=True, slots=True)
class StsPolicySeen:
    txt_id: str
    policy_sha256: str


def mta_sts(doc: Document) -> StsPolicySeen | None:
    """The MTA-STS record's id and the SHA-256 of the policy text served, when both were seen."""
    details = _dict(_dict(_dict(doc.get("protocols")).get("mta-sts")).get("details"))
    txt_id, digest = details.get("txt_id"), details.get("policy_sha256")
    if not txt_id or not digest:
        return None
    return StsPolicySeen(str(txt_id), str(digest))
