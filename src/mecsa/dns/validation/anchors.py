"""Trust anchors: where the chain of trust starts (RFC 4033 §3.1, RFC 7958).

IANA's root KSK DS records ship with the package; `--trust-anchor FILE` replaces them (the lab's
own root, a private root). A file holds zone-file lines of DS or DNSKEY records, as Unbound's
`trust-anchor-file` and `keymgr ... ds` write them; `;` starts a comment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.DS
import dns.zone


class TrustAnchorError(ValueError):
    """A trust anchor file could not be used."""


@dataclass(frozen=True, slots=True)
class TrustAnchors:
    """DS records per anchored zone; a DNSKEY anchor is kept as its SHA-256 DS."""

    ds: dict[dns.name.Name, tuple[dns.rdtypes.ANY.DS.DS, ...]]
    source: str

    def zones(self) -> tuple[dns.name.Name, ...]:
        return tuple(self.ds)

    def closest(self, name: dns.name.Name) -> dns.name.Name | None:
        """The deepest anchored zone at or above `name`."""
        best: dns.name.Name | None = None
        for zone in self.ds:
            if name.is_subdomain(zone) and (best is None or len(zone) > len(best)):
                best = zone
        return best


def parse_anchors(text: str, source: str) -> TrustAnchors:
    """DS/DNSKEY lines (absolute owners) to anchors; anything else is an error."""
    try:
        # Trust anchor files (Unbound, keymgr) often carry no TTL: give one.
        zone = dns.zone.from_text(
            "$TTL 0\n" + text, origin=dns.name.root, relativize=False, check_origin=False
        )
    except (dns.exception.DNSException, ValueError) as exc:
        raise TrustAnchorError(f"trust anchor {source}: {exc}") from None
    found: dict[dns.name.Name, list[dns.rdtypes.ANY.DS.DS]] = {}
    for name, node in zone.nodes.items():
        for rdataset in node.rdatasets:
            for rd in rdataset:
                if isinstance(rd, dns.rdtypes.ANY.DS.DS):
                    found.setdefault(name, []).append(rd)
                elif isinstance(rd, dns.rdtypes.ANY.DNSKEY.DNSKEY):
                    # Imported only here: the cold CLI parses a DS file before its first packet.
                    import dns.dnssec as dnssec

                    ds = dnssec.make_ds(name, rd, "SHA256", policy=dnssec.allow_all_policy)
                    found.setdefault(name, []).append(ds)
                else:
                    kind = dns.rdatatype.to_text(rdataset.rdtype)
                    raise TrustAnchorError(f"trust anchor {source}: {name} {kind} is neither DS nor DNSKEY")
    if not found:
        raise TrustAnchorError(f"trust anchor {source}: no DS or DNSKEY record in it")
    return TrustAnchors({name: tuple(rds) for name, rds in found.items()}, source)


def load_anchor_file(path: str | Path) -> TrustAnchors:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrustAnchorError(f"trust anchor {path}: {exc}") from None
    return parse_anchors(text, str(path))


def iana_root_anchors() -> TrustAnchors:
    """The root KSK DS records IANA publishes (key tags 20326 and 38696)."""
    # Beside this module, as `mecsa.orgdomain` finds its rules: `importlib.resources` (tempfile,
    # shutil: ~2 ms) would sit before the cold CLI's first question (issue 20). certifi imports
    # it later anyway, once the questions are out.
    text = Path(__file__).with_name("root-anchors.txt").read_text(encoding="utf-8")
    return parse_anchors(text, "IANA root anchors (built in)")
