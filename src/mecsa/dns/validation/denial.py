"""Authenticated denial of existence: NSEC (RFC 4035 §5.4) and NSEC3 (RFC 5155 §8) proofs.

Pure functions over RRsets whose signatures the caller has already verified. Each proof says
whether it holds and, when not, what is missing, so the status can name the broken link.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import dns.name
import dns.rdatatype
import dns.rdtypes.ANY.NSEC
import dns.rdtypes.ANY.NSEC3
import dns.rrset

# RFC 9276 §3.2: validators may treat NSEC3 with more iterations as insecure; 150 is the limit
# Unbound, BIND and Knot Resolver apply (RFC 9276 §3.2 names 150 as the value seen in the field).
MAX_NSEC3_ITERATIONS = 150
_OPT_OUT = 0x01  # RFC 5155 §3.1.2.1

WILDCARD = dns.name.Name((b"*",))


@dataclass(frozen=True, slots=True)
class Denial:
    """The outcome of one proof. `how` names the mechanism that proved it, for the named link."""

    proven: bool
    how: str
    detail: str = ""
    opt_out: bool = False


def bitmap_types(rd: dns.rdtypes.ANY.NSEC.NSEC | dns.rdtypes.ANY.NSEC3.NSEC3) -> frozenset[int]:
    """The RR types an NSEC/NSEC3 type bitmap lists (RFC 4034 §4.1.2)."""
    types: set[int] = set()
    for window, bitmap in rd.windows:
        for index, byte in enumerate(bitmap):
            for bit in range(8):
                if byte & (0x80 >> bit):
                    types.add(window * 256 + index * 8 + bit)
    return frozenset(types)


def _type(rdtype: int) -> str:
    return dns.rdatatype.to_text(dns.rdatatype.RdataType.make(rdtype))


def _is_cut(types: frozenset[int]) -> bool:
    """An owner with NS and without SOA: the parent's side of a delegation (RFC 6840 §4.1)."""
    return dns.rdatatype.NS in types and dns.rdatatype.SOA not in types


def _wildcard_at(encloser: dns.name.Name) -> dns.name.Name:
    return WILDCARD.concatenate(encloser)


def _next_closer(qname: dns.name.Name, encloser: dns.name.Name) -> dns.name.Name:
    """The ancestor of `qname` one label longer than `encloser` (RFC 5155 §1.3)."""
    return qname.split(len(encloser) + 1)[1]


# ---- NSEC (RFC 4035 §5.4, RFC 4034 §6.1 canonical order) -------------------------------------


def nsec_covers(owner: dns.name.Name, nxt: dns.name.Name, name: dns.name.Name) -> bool:
    """`owner < name < next` in canonical order; the last NSEC wraps to the apex."""
    if owner < nxt:
        return bool(owner < name < nxt)
    return bool(name > owner or name < nxt)


def _proves_empty_non_terminal(owner: dns.name.Name, nxt: dns.name.Name, name: dns.name.Name) -> bool:
    """The NSEC precedes `name` and its next name is below it: `name` exists, holding no records."""
    return bool(owner < name) and nxt.is_subdomain(name) and nxt != name


def _nsecs(rrsets: Sequence[dns.rrset.RRset]) -> list[tuple[dns.name.Name, dns.rdtypes.ANY.NSEC.NSEC]]:
    return [(r.name, rd) for r in rrsets if r.rdtype == dns.rdatatype.NSEC for rd in r]


def _common_ancestor(a: dns.name.Name, b: dns.name.Name) -> dns.name.Name:
    _, _, common = a.fullcompare(b)  # (relation, order, labels in common)
    return a.split(common)[1] if common < len(a) else a


def nsec_nodata(
    qname: dns.name.Name, qtype: int, rrsets: Sequence[dns.rrset.RRset], zone: dns.name.Name
) -> Denial:
    """The name exists without the type: an NSEC at `qname` (or a wildcard's) lacking it and CNAME."""
    if not qname.is_subdomain(zone):
        return Denial(False, "NSEC", f"{qname} is not in {zone}")
    records = _nsecs(rrsets)
    for owner, rd in records:
        if owner == qname:
            types = bitmap_types(rd)
            if qtype in types or dns.rdatatype.CNAME in types:
                return Denial(False, "NSEC", f"the NSEC at {qname} lists {_type(qtype)}")
            if qtype == dns.rdatatype.DS and dns.rdatatype.SOA in types and qname != zone:
                # RFC 6840 §4.4: a child apex NSEC cannot deny the parent's DS.
                return Denial(False, "NSEC", f"the NSEC at {qname} is the child's, not the parent's")
            if qtype == dns.rdatatype.DS and not _is_cut(types):
                # RFC 4035 §5.2: only an NSEC at a delegation (NS bit) proves an unsigned child;
                # without this, stripped signatures plus a forged SOA would pass as "insecure".
                return Denial(False, "NSEC", f"{qname} is no delegation in {zone} (its NSEC has no NS bit)")
            if qtype != dns.rdatatype.DS and qname != zone and _is_cut(types):
                return Denial(False, "NSEC", f"the NSEC at {qname} is the parent's side of a delegation")
            return Denial(True, "NSEC")
    # An empty non-terminal (RFC 4592 §2.2.2: no records, names below it): the NSEC just before
    # qname names as next (RFC 4034 §4.1.1, the next owner in canonical order) a name below qname,
    # so qname exists and has no type at all.
    for owner, rd in records:
        if _proves_empty_non_terminal(owner, rd.next, qname):
            if qtype == dns.rdatatype.DS:  # as for any name that is no delegation (RFC 4035 §5.2)
                return Denial(False, "NSEC", f"{qname} is no delegation in {zone} (an empty non-terminal)")
            return Denial(True, "NSEC (empty non-terminal)")
    # Wildcard NODATA (RFC 4035 §5.4): qname is covered, and the wildcard that would match lacks the type.
    for owner, rd in records:
        if nsec_covers(owner, rd.next, qname):
            encloser = _closest_encloser_nsec(qname, owner, rd.next)
            wildcard = _wildcard_at(encloser)
            for w_owner, w_rd in records:
                if w_owner == wildcard:
                    types = bitmap_types(w_rd)
                    if qtype not in types and dns.rdatatype.CNAME not in types:
                        return Denial(True, "NSEC (wildcard)")
    return Denial(False, "NSEC", f"no NSEC proves that {qname} has no {_type(qtype)}")


def _closest_encloser_nsec(qname: dns.name.Name, owner: dns.name.Name, nxt: dns.name.Name) -> dns.name.Name:
    a, b = _common_ancestor(qname, owner), _common_ancestor(qname, nxt)
    return a if len(a) >= len(b) else b


def nsec_nxdomain(qname: dns.name.Name, rrsets: Sequence[dns.rrset.RRset], zone: dns.name.Name) -> Denial:
    """The name does not exist: an NSEC covers it and one covers the wildcard at its closest encloser."""
    if not qname.is_subdomain(zone):
        return Denial(False, "NSEC", f"{qname} is not in {zone}")
    records = _nsecs(rrsets)
    for owner, rd in records:
        if owner != zone and qname.is_subdomain(owner) and _is_cut(bitmap_types(rd)):
            # RFC 6840 §4.1: names below a delegation are the child's; the parent cannot deny them.
            return Denial(False, "NSEC", f"{owner} is a delegation: its parent cannot deny {qname}")
    covering = [(o, rd) for o, rd in records if nsec_covers(o, rd.next, qname)]
    if not covering:
        return Denial(False, "NSEC", f"no NSEC covers {qname}")
    if any(_proves_empty_non_terminal(o, rd.next, qname) for o, rd in covering):
        # A name with names below it exists: an NSEC that says so cannot deny it.
        return Denial(False, "NSEC", f"an NSEC proves that {qname} exists (an empty non-terminal)")
    owner, rd = covering[0]
    encloser = _closest_encloser_nsec(qname, owner, rd.next)
    if not encloser.is_subdomain(zone):
        encloser = zone
    wildcard = _wildcard_at(encloser)
    if any(o == wildcard for o, _ in records):
        return Denial(False, "NSEC", f"the wildcard {wildcard} exists, so {qname} should have matched it")
    if not any(nsec_covers(o, r.next, wildcard) for o, r in records):
        return Denial(False, "NSEC", f"no NSEC proves the wildcard {wildcard} absent")
    return Denial(True, "NSEC")


def nsec_no_exact_match(qname: dns.name.Name, rrsets: Sequence[dns.rrset.RRset]) -> Denial:
    """For a wildcard-expanded answer: an NSEC proves `qname` itself does not exist (RFC 4035 §5.3.4)."""
    if any(nsec_covers(o, rd.next, qname) for o, rd in _nsecs(rrsets)):
        return Denial(True, "NSEC")
    return Denial(False, "NSEC", f"no NSEC proves that {qname} does not exist")


# ---- NSEC3 (RFC 5155 §8) ---------------------------------------------------------------------


def nsec3_hash(name: dns.name.Name, salt: bytes, iterations: int) -> bytes:
    """RFC 5155 §5: IH(salt, x, 0) = H(x || salt); H is SHA-1 (hash algorithm 1)."""
    wire = name.canonicalize().to_wire() or b""
    digest = hashlib.sha1(wire + salt).digest()
    for _ in range(iterations):
        digest = hashlib.sha1(digest + salt).digest()
    return digest


@dataclass(frozen=True, slots=True)
class Nsec3Record:
    """One NSEC3 record with its owner's hash decoded (RFC 5155 §3: base32hex, RFC 4648 §7)."""

    owner_hash: bytes
    rd: dns.rdtypes.ANY.NSEC3.NSEC3

    @classmethod
    def of(cls, owner: dns.name.Name, rd: dns.rdtypes.ANY.NSEC3.NSEC3) -> Nsec3Record | None:
        label = owner.labels[0].decode("ascii", errors="replace").upper()
        try:
            return cls(base64.b32hexdecode(label + "=" * (-len(label) % 8)), rd)
        except ValueError:
            return None

    def covers(self, digest: bytes) -> bool:
        if self.owner_hash < self.rd.next:
            return self.owner_hash < digest < self.rd.next
        return digest > self.owner_hash or digest < self.rd.next


class Nsec3Set:
    """The NSEC3 records of one zone in one response, with their shared parameters."""

    def __init__(self, rrsets: Sequence[dns.rrset.RRset], zone: dns.name.Name) -> None:
        self.zone = zone
        self.records: list[Nsec3Record] = []
        for rrset in rrsets:
            if rrset.rdtype != dns.rdatatype.NSEC3 or rrset.name.parent() != zone:
                continue
            for rd in rrset:
                record = Nsec3Record.of(rrset.name, rd)
                if record is not None:
                    self.records.append(record)
        first = self.records[0].rd if self.records else None
        self.iterations = first.iterations if first else 0
        self.salt: bytes = (first.salt or b"") if first else b""
        self.algorithm = first.algorithm if first else 1

    def __bool__(self) -> bool:
        return bool(self.records)

    def _hash(self, name: dns.name.Name) -> bytes:
        return nsec3_hash(name, self.salt, self.iterations)

    def matching(self, name: dns.name.Name) -> Nsec3Record | None:
        digest = self._hash(name)
        return next((r for r in self.records if r.owner_hash == digest and self._same(r)), None)

    def covering(self, name: dns.name.Name) -> Nsec3Record | None:
        digest = self._hash(name)
        return next((r for r in self.records if r.covers(digest) and self._same(r)), None)

    def _same(self, record: Nsec3Record) -> bool:
        # RFC 5155 §8.2: only records with the zone's parameters take part in a proof.
        return record.rd.iterations == self.iterations and record.rd.salt == self.salt

    def closest_encloser(self, qname: dns.name.Name) -> tuple[dns.name.Name, Nsec3Record] | None:
        """RFC 5155 §8.3: the deepest existing ancestor, with the NSEC3 covering the next closer name."""
        candidate = qname
        while len(candidate) > len(self.zone):
            candidate = candidate.parent()
            match = self.matching(candidate)
            if match is not None:
                if candidate != self.zone and _is_cut(bitmap_types(match.rd)):
                    return None  # RFC 5155 §8.3: a delegation cannot be the closest encloser
                cover = self.covering(_next_closer(qname, candidate))
                return (candidate, cover) if cover is not None else None
        return None

    def nodata(self, qname: dns.name.Name, qtype: int) -> Denial:
        if not qname.is_subdomain(self.zone):
            return Denial(False, "NSEC3", f"{qname} is not in {self.zone}")
        match = self.matching(qname)
        if match is not None:
            types = bitmap_types(match.rd)
            if qtype in types or dns.rdatatype.CNAME in types:
                return Denial(False, "NSEC3", f"the NSEC3 for {qname} lists {_type(qtype)}")
            if qtype == dns.rdatatype.DS and not _is_cut(types):
                # RFC 5155 §8.6: the matching NSEC3 must have the NS bit set and SOA clear.
                return Denial(
                    False, "NSEC3", f"{qname} is no delegation in {self.zone} (NSEC3 without NS bit)"
                )
            if qtype != dns.rdatatype.DS and qname != self.zone and _is_cut(types):
                return Denial(False, "NSEC3", f"the NSEC3 for {qname} is the parent's side of a delegation")
            return Denial(True, "NSEC3")
        proof = self.closest_encloser(qname)
        if proof is not None:
            encloser, cover = proof
            if qtype == dns.rdatatype.DS and cover.rd.flags & _OPT_OUT:
                # RFC 5155 §8.6: an opt-out span may hold unsigned delegations: insecure, not denied.
                return Denial(True, "NSEC3 opt-out", opt_out=True)
            wildcard = self.matching(_wildcard_at(encloser))
            if wildcard is not None:  # RFC 5155 §8.7: wildcard NODATA
                types = bitmap_types(wildcard.rd)
                if qtype not in types and dns.rdatatype.CNAME not in types:
                    return Denial(True, "NSEC3 (wildcard)")
        return Denial(False, "NSEC3", f"no NSEC3 proves that {qname} has no {_type(qtype)}")

    def nxdomain(self, qname: dns.name.Name) -> Denial:
        """RFC 5155 §8.4: closest encloser proof plus an NSEC3 covering the wildcard at it."""
        if not qname.is_subdomain(self.zone):
            return Denial(False, "NSEC3", f"{qname} is not in {self.zone}")
        if self.matching(qname) is not None:
            return Denial(False, "NSEC3", f"an NSEC3 says {qname} exists")
        proof = self.closest_encloser(qname)
        if proof is None:
            return Denial(False, "NSEC3", f"no closest encloser proof for {qname}")
        encloser, cover = proof
        if self.covering(_wildcard_at(encloser)) is None:
            return Denial(False, "NSEC3", f"no NSEC3 proves the wildcard at {encloser} absent")
        return Denial(True, "NSEC3", opt_out=bool(cover.rd.flags & _OPT_OUT))

    def no_exact_match(self, qname: dns.name.Name, encloser: dns.name.Name) -> Denial:
        """RFC 5155 §8.8: a wildcard answer needs the next closer name covered."""
        if self.covering(_next_closer(qname, encloser)) is not None:
            return Denial(True, "NSEC3")
        return Denial(False, "NSEC3", f"no NSEC3 proves that {qname} does not exist")
