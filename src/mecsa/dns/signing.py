"""A small zone signer for tests and benchmarks: keys, RRSIGs, NSEC or NSEC3 chains, all made
with dns.dnssec. Not for production zones (use Knot or ldns-signzone).

Written out in full rather than with `dns.dnssec.sign_zone` so that each test can break exactly one
link: an expired signature, an NSEC3 opt-out span, a high iteration count, a missing DNSKEY.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any

import dns.dnssec
import dns.name
import dns.node
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.DS
import dns.rrset
import dns.zone
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from mecsa.dns.validation.denial import nsec3_hash

IN = dns.rdataclass.IN
NOW = int(time.time())
DAY = 86400


@dataclass(frozen=True)
class Key:
    private: Any
    dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY

    @property
    def tag(self) -> int:
        return dns.dnssec.key_id(self.dnskey)

    def ds(self, owner: str, digest: str = "SHA256") -> dns.rdtypes.ANY.DS.DS:
        return dns.dnssec.make_ds(owner, self.dnskey, digest, policy=dns.dnssec.allow_all_policy)


def new_key(algorithm: int = 13, *, ksk: bool = True, rsa_bits: int = 2048) -> Key:
    private: Any
    if algorithm in (5, 7, 8, 10):
        private = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    elif algorithm == 13:
        private = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == 15:
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(algorithm)
    flags = 257 if ksk else 256
    dnskey = dns.dnssec.make_dnskey(private.public_key(), algorithm, flags)
    return Key(private, dnskey)


@dataclass
class Signing:
    """How to sign one zone; the defaults make a healthy zone."""

    denial: str = "nsec"  # "nsec", "nsec3" or "none"
    iterations: int = 0
    salt: bytes = b""
    opt_out: bool = False
    inception: int = NOW - DAY
    expiration: int = NOW + 30 * DAY
    expired: set[tuple[str, str]] = field(default_factory=set)  # (owner, TYPE) signed in the past
    unsigned: set[tuple[str, str]] = field(default_factory=set)  # (owner, TYPE) left without RRSIG
    drop_dnskey: bool = False


def sign_zone(origin: str, text: str, keys: list[Key], how: Signing | None = None) -> str:
    """Zone text in, signed zone text out."""
    how = how or Signing()
    apex = dns.name.from_text(origin)
    zone = dns.zone.from_text(text, origin=apex, relativize=False, check_origin=False)
    with zone.writer() as txn:
        txn.add(apex, dns.rdataset.from_rdata_list(3600, [k.dnskey for k in keys]))
    cuts = {n for n, node in zone.nodes.items() if n != apex and node.get_rdataset(IN, dns.rdatatype.NS)}
    below = {n for n in zone.nodes if any(n != c and n.is_subdomain(c) for c in cuts)}
    if how.denial == "nsec":
        _nsec_chain(zone, apex, below)
    elif how.denial == "nsec3":
        _nsec3_chain(zone, apex, cuts, below, how)
    signed: list[dns.rrset.RRset] = []
    for name, node in list(zone.nodes.items()):
        if name in below:
            continue
        for rdataset in node.rdatasets:
            if rdataset.rdtype == dns.rdatatype.RRSIG:
                continue
            if name in cuts and rdataset.rdtype not in (dns.rdatatype.DS, dns.rdatatype.NSEC):
                continue  # RFC 4035 §2.2: delegation NS and glue are not signed
            key = (name.to_text(), dns.rdatatype.to_text(rdataset.rdtype))
            if key in how.unsigned:
                continue
            rrset = dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset))
            inception, expiration = how.inception, how.expiration
            if key in how.expired:
                inception, expiration = NOW - 30 * DAY, NOW - 2 * DAY
            sigs = [
                dns.dnssec.sign(
                    rrset,
                    k.private,
                    apex,
                    k.dnskey,
                    inception,
                    expiration,
                    policy=dns.dnssec.allow_all_policy,
                )
                for k in keys
            ]
            signed.append(dns.rrset.from_rdata_list(name, rdataset.ttl, sigs))
    with zone.writer() as txn:
        for rrset in signed:
            txn.add(rrset)
        if how.drop_dnskey:
            txn.delete(apex, dns.rdatatype.DNSKEY)
    return zone.to_text(relativize=False)


def _types(node: dns.node.Node, *extra: dns.rdatatype.RdataType) -> list[dns.rdatatype.RdataType]:
    return sorted({rds.rdtype for rds in node.rdatasets} | set(extra))


def _nsec_chain(zone: dns.zone.Zone, apex: dns.name.Name, below: set[dns.name.Name]) -> None:
    names = sorted(n for n in zone.nodes if n not in below)
    with zone.writer() as txn:
        for index, name in enumerate(names):
            following = names[(index + 1) % len(names)]
            types = _types(zone.nodes[name], dns.rdatatype.NSEC, dns.rdatatype.RRSIG)
            text = f"{following} " + " ".join(dns.rdatatype.to_text(t) for t in types)
            txn.add(name, dns.rdataset.from_text(IN, dns.rdatatype.NSEC, 300, text))


def _nsec3_chain(
    zone: dns.zone.Zone,
    apex: dns.name.Name,
    cuts: set[dns.name.Name],
    below: set[dns.name.Name],
    how: Signing,
) -> None:
    names: set[dns.name.Name] = set()
    for name in zone.nodes:
        if name in below:
            continue
        unsigned_cut = name in cuts and zone.nodes[name].get_rdataset(IN, dns.rdatatype.DS) is None
        if how.opt_out and unsigned_cut:
            continue  # RFC 5155 §7.1: opt-out leaves insecure delegations out of the chain
        while name != apex and name.is_subdomain(apex):  # empty non-terminals get NSEC3 too
            names.add(name)
            name = name.parent()
    names.add(apex)
    hashed = sorted((nsec3_hash(n, how.salt, how.iterations), n) for n in names)
    salt = how.salt.hex() or "-"
    flags = 1 if how.opt_out else 0
    with zone.writer() as txn:
        for index, (digest, name) in enumerate(hashed):
            following = hashed[(index + 1) % len(hashed)][0]
            node = zone.nodes.get(name)
            types: list[dns.rdatatype.RdataType] = []
            if node is not None:
                signed = name not in cuts or node.get_rdataset(IN, dns.rdatatype.DS) is not None
                types = _types(node, dns.rdatatype.RRSIG) if signed else _types(node)
                if name == apex:
                    types = sorted(set(types) | {dns.rdatatype.NSEC3PARAM})
            owner = dns.name.Name((_b32(digest),)).concatenate(apex)
            bitmap = " ".join(dns.rdatatype.to_text(t) for t in types)
            text = f"1 {flags} {how.iterations} {salt} {_b32(following).decode()} {bitmap}"
            txn.add(owner, dns.rdataset.from_text(IN, dns.rdatatype.NSEC3, 300, text))
        txn.add(apex, dns.rdataset.from_text(IN, dns.rdatatype.NSEC3PARAM, 0, f"1 0 {how.iterations} {salt}"))


def _b32(digest: bytes) -> bytes:
    return base64.b32hexencode(digest).rstrip(b"=").lower()
