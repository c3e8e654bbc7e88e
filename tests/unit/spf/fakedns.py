"""A dict-backed DNS for SPF tests, built from the RFC 7208 suite's `zonedata` format.

Rules, as the suite's header and pyspf's driver define them:
- names are case-insensitive; CNAMEs are followed (a loop gives SERVFAIL, as a resolver would);
- `TIMEOUT` at a name makes every question there without data of the asked type time out;
- `SPF` entries stand in for TXT at names with no `TXT` entry (the suite's "auto-magic duplication"),
  and are otherwise ignored: RFC 7208 never asks for type SPF (99). `TXT: NONE` means no TXT;
- several strings of one TXT record are kept as separate character-strings (the evaluator joins them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT

from mecsa.dns.answer import DnsAnswer, Rcode


def _name(text: str) -> str:
    return text.lower().removesuffix(".")


def _bytes(text: str) -> bytes:
    # The suite writes raw octets as "\xNN" in YAML, which arrive as code points below 256.
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _txt(value: Any) -> dns.rdata.Rdata:
    strings = [value] if isinstance(value, str) else list(value)
    # A TXT record with no strings is illegal and cannot be built; one empty string is the nearest wire form.
    return dns.rdtypes.ANY.TXT.TXT(
        dns.rdataclass.IN, dns.rdatatype.TXT, [_bytes(s) for s in strings] or [b""]
    )


def _rdata(rdtype: str, value: Any) -> dns.rdata.Rdata:
    if rdtype == "TXT":
        return _txt(value)
    if rdtype == "MX":
        preference, exchange = value
        return dns.rdata.from_text("IN", "MX", f"{preference} {exchange or '.'}".rstrip(".") + ".")
    text = value if value.endswith(".") or rdtype in ("A", "AAAA") else value + "."
    return dns.rdata.from_text("IN", rdtype, text)


class FakeDns:
    """Answers `resolve(name, rdtype)` from zone data; records which questions were asked."""

    def __init__(self, zonedata: Mapping[str, Sequence[Any]]) -> None:
        self.records: dict[str, dict[str, list[dns.rdata.Rdata]]] = {}
        self.timeouts: set[str] = set()
        self.failures: dict[tuple[str, str], Rcode] = {}
        self.asked: list[tuple[str, str]] = []
        spf: dict[str, list[Any]] = {}
        for owner, entries in zonedata.items():
            name = _name(owner)
            by_type = self.records.setdefault(name, {})
            for entry in entries:
                if entry == "TIMEOUT":
                    self.timeouts.add(name)
                    continue
                ((rdtype, value),) = entry.items()
                if rdtype == "SPF":
                    spf.setdefault(name, []).append(value)
                    continue
                found = by_type.setdefault(rdtype, [])
                if not (rdtype == "TXT" and value == "NONE"):
                    found.append(_rdata(rdtype, value))
        for name, values in spf.items():
            if "TXT" not in self.records[name]:
                self.records[name]["TXT"] = [_txt(v) for v in values]

    def fail(self, name: str, rdtype: str, rcode: Rcode) -> None:
        """Make one question fail with `rcode` (SERVFAIL, REFUSED, TIMEOUT...)."""
        self.failures[(_name(name), rdtype)] = rcode

    async def resolve(self, name: str, rdtype: str) -> DnsAnswer:
        self.asked.append((_name(name), rdtype))
        current = _name(name)
        chain: list[str] = []
        for _ in range(8):
            failure = self.failures.get((current, rdtype))
            if failure is not None:
                return DnsAnswer(name, rdtype, failure, detail="injected failure")
            by_type = self.records.get(current)
            if by_type is None:
                if current in self.timeouts:
                    return DnsAnswer(name, rdtype, Rcode.TIMEOUT, detail="zonedata TIMEOUT")
                exists = any(other.endswith("." + current) for other in self.records)
                return DnsAnswer(name, rdtype, Rcode.NOERROR if exists else Rcode.NXDOMAIN)
            if by_type.get(rdtype):
                return DnsAnswer(name, rdtype, Rcode.NOERROR, tuple(by_type[rdtype]), 300, tuple(chain))
            cname = by_type.get("CNAME")
            if cname and rdtype != "CNAME":
                current = _name(cname[0].target.to_text())  # type: ignore[attr-defined]
                chain.append(current)
                continue
            if current in self.timeouts:
                return DnsAnswer(name, rdtype, Rcode.TIMEOUT, detail="zonedata TIMEOUT")
            return DnsAnswer(name, rdtype, Rcode.NOERROR, (), None, tuple(chain))
        return DnsAnswer(name, rdtype, Rcode.SERVFAIL, detail="CNAME loop")
