"""Our own DNSSEC validation: walk the chain of trust from a trust anchor down to an answer.

The zone cuts come from the answers themselves (RRSIG signer names, SOA owners), so each zone on
the way costs one round trip: its DS (at the parent) and its DNSKEY are asked at once, and the
parent's trust is awaited concurrently. Every zone's trust is worked out once per assessment and
shared by all answers (RFC 4035 §5: authenticate the DNSKEY via DS, the RRset via RRSIG; §5.4
and RFC 5155 §8 for denial of existence).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import dns.dnssec
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.DS
import dns.rdtypes.ANY.RRSIG
import dns.rrset
from dns.rdtypes.dnskeybase import Flag

from mecsa.dns.answer import DnssecStatus
from mecsa.dns.validation.anchors import TrustAnchors
from mecsa.dns.validation.denial import (
    MAX_NSEC3_ITERATIONS,
    Denial,
    Nsec3Set,
    nsec_no_exact_match,
    nsec_nodata,
    nsec_nxdomain,
)
from mecsa.dns.validation.strength import (
    VALIDATED_ALGORITHMS,
    VALIDATED_DIGESTS,
    algorithm_name,
    ds_notes,
    key_notes,
)
from mecsa.dns.validation.verdict import ChainVerdict, StrengthNote, secure_link, worst

IN = dns.rdataclass.IN
_MAX_CNAME_CHAIN = 16
_ALLOW_ALL = dns.dnssec.allow_all_policy  # strength is judged apart (strength.py), not by refusing


@dataclass(frozen=True, slots=True)
class Fetched:
    """One reply fetched for validation (DO=1, CD=1), or why none came."""

    message: dns.message.Message | None
    failure: str = ""


Fetch = Callable[[dns.name.Name, dns.rdatatype.RdataType], Awaitable[Fetched]]


@dataclass(frozen=True, slots=True)
class ZoneTrust:
    """What is known of one zone: secure with its validated DNSKEY RRset, or why not."""

    zone: dns.name.Name
    status: DnssecStatus
    link: str
    chain: tuple[str, ...] = ()
    keys: dns.rrset.RRset | None = None
    notes: tuple[StrengthNote, ...] = ()

    def verdict(self) -> ChainVerdict:
        return ChainVerdict(self.status, self.link, self.chain, self.notes)


def owner_text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True) or "."


def zone_text(name: dns.name.Name) -> str:
    return name.to_text()


def _when(stamp: int) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%MZ")


def _rrsigs(
    message: dns.message.Message, section: list[dns.rrset.RRset], rrset: dns.rrset.RRset
) -> list[dns.rdtypes.ANY.RRSIG.RRSIG]:
    sigs = message.get_rrset(section, rrset.name, IN, dns.rdatatype.RRSIG, rrset.rdtype)
    return list(sigs) if sigs is not None else []


class ChainValidator:
    """One assessment's validator: trust anchors, a fetcher, and the per-zone memo."""

    def __init__(self, fetch: Fetch, anchors: TrustAnchors, *, now: Callable[[], float] = time.time) -> None:
        self._fetch = fetch
        self.anchors = anchors
        self._now = now
        self._trust: dict[dns.name.Name, asyncio.Task[ZoneTrust]] = {}
        self._prefetching: set[asyncio.Task[Fetched]] = set()
        # The same SOA and NSEC RRsets come back in many negative answers: verify each once.
        self._verified: dict[tuple[object, ...], tuple[str, int]] = {}  # -> (error, labels of the good RRSIG)
        # Each rdata's canonical octets, by the object: the reply reader hands out one object for
        # every copy of a record (mecsa.dns.reply), and the memo's key is made at every look-up.
        # The object is held with its octets, so no other can take its id while the entry lives.
        self._digests: dict[int, tuple[dns.rdata.Rdata, bytes]] = {}
        self._zone_of: dict[dns.name.Name, asyncio.Task[tuple[dns.name.Name | None, str]]] = {}

    # ---- answers ------------------------------------------------------------------------------

    async def validate(
        self, qname: dns.name.Name, qtype: dns.rdatatype.RdataType, message: dns.message.Message
    ) -> ChainVerdict:
        """Our verdict on one reply (fetched with DO=1) to `qname`/`qtype`."""
        rcode = message.rcode()
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            why = f"indeterminate (no answer to validate: {dns.rcode.to_text(rcode)})"
            return ChainVerdict(DnssecStatus.INDETERMINATE, why)
        positive: list[dns.rrset.RRset] = []
        current = qname
        final: dns.rrset.RRset | None = None
        for _ in range(_MAX_CNAME_CHAIN):
            found = message.get_rrset(message.answer, current, IN, qtype)
            if found is not None:
                positive.append(found)
                final = found
                break
            cname = None
            if qtype != dns.rdatatype.CNAME:
                cname = message.get_rrset(message.answer, current, IN, dns.rdatatype.CNAME)
            if cname is None:
                break
            # RFC 6672 §5.3.3: a CNAME synthesised from a DNAME comes unsigned; the DNAME is what counts.
            positive.append(_dname_behind(message, current, cname) or cname)
            current = cname[0].target
        parts: list[Awaitable[ChainVerdict]] = [self._positive(r, message) for r in positive]
        if final is None:
            parts.append(self._negative(current, qtype, message, rcode == dns.rcode.NXDOMAIN))
        return worst(list(await asyncio.gather(*parts)))

    async def _positive(self, rrset: dns.rrset.RRset, message: dns.message.Message) -> ChainVerdict:
        what = f"{owner_text(rrset.name)} {dns.rdatatype.to_text(rrset.rdtype)}"
        sigs = _rrsigs(message, message.answer, rrset)
        if not sigs:
            return await self._unsigned(rrset.name, f"no RRSIG over {what}")
        signer = _signer(rrset.name, sigs)
        if signer is None:
            signed_by = zone_text(sigs[0].signer)
            return _bogus(f"RRSIG over {what} is signed by {signed_by}, not by a zone above it")
        trust = await self.trust(signer)
        if trust.status is not DnssecStatus.SECURE:
            return trust.verdict()
        error = self._verify(rrset, sigs, trust)
        if error:
            return _bogus(error)
        # The labels of the signature that verified, not of any other (a forged one could hide a wildcard).
        labels = self._verified_labels(rrset, sigs, trust)
        if labels < len(rrset.name) - 1:
            # RFC 4035 §5.3.4: a wildcard expansion is secure only with proof that the name itself is absent.
            encloser = rrset.name.split(labels + 1)[1]
            denial = self._denial_records(message, trust)
            if isinstance(denial, ChainVerdict):
                return denial
            nsec3 = Nsec3Set(denial, signer)
            if nsec3:
                proof = nsec3.no_exact_match(rrset.name, encloser)
            else:
                proof = nsec_no_exact_match(rrset.name, denial)
            wildcard = f"*.{zone_text(encloser)}"
            if not proof.proven:
                return _bogus(f"{what} is expanded from the wildcard {wildcard} but {proof.detail}")
            link = secure_link(trust.chain)[:-1] + f"; expanded from {wildcard}, proven by {proof.how})"
            return ChainVerdict(DnssecStatus.SECURE, link, trust.chain, trust.notes)
        return trust.verdict()

    async def _negative(
        self,
        name: dns.name.Name,
        qtype: dns.rdatatype.RdataType,
        message: dns.message.Message,
        nxdomain: bool,
    ) -> ChainVerdict:
        what = (
            f"NXDOMAIN for {owner_text(name)}"
            if nxdomain
            else (f"no {dns.rdatatype.to_text(qtype)} at {owner_text(name)}")
        )
        soa = next((r for r in message.authority if r.rdtype == dns.rdatatype.SOA), None)
        if soa is None or not _rrsigs(message, message.authority, soa):
            return await self._unsigned(name, f"{what} comes without signed SOA")
        if not name.is_subdomain(soa.name):
            # Another zone's NSEC chain "covers" outside names by wrapping round: it proves nothing.
            return _bogus(f"{what} comes with the SOA of {zone_text(soa.name)}, not of a zone above it")
        trust = await self.trust(soa.name)
        if trust.status is not DnssecStatus.SECURE:
            return trust.verdict()
        error = self._verify(soa, _rrsigs(message, message.authority, soa), trust)
        if error:
            return _bogus(error)
        result = self._deny(message, name, qtype, trust, nxdomain)
        if isinstance(result, ChainVerdict):
            return result
        if result.opt_out:
            return ChainVerdict(
                DnssecStatus.INSECURE,
                f"insecure ({what}: covered by an NSEC3 opt-out span at {zone_text(trust.zone)})",
                trust.chain,
                trust.notes,
            )
        if not result.proven:
            return _bogus(f"{what} without a valid proof: {result.detail}")
        link = secure_link(trust.chain)[:-1] + f"; {what} proven by {result.how})"
        return ChainVerdict(DnssecStatus.SECURE, link, trust.chain, self._nsec3_notes(message, trust))

    async def _unsigned(self, name: dns.name.Name, what: str) -> ChainVerdict:
        """Data without signatures: insecure if its zone is provably unsigned, else bogus."""
        known = self._settled_above(name)
        if known is not None:
            return known.verdict()
        # The zone is not known yet (an SOA question finds it): ask the DS and DNSKEY of the name and
        # its ancestors meanwhile, so the proof costs one round trip, not two. At most two wasted
        # questions when the name is no apex.
        self._prefetch_ancestors(name)
        zone, why = await self.zone_of(name)
        if zone is None:
            return ChainVerdict(DnssecStatus.INDETERMINATE, f"indeterminate ({what}; {why})")
        trust = await self.trust(zone)
        if trust.status is DnssecStatus.SECURE:
            return _bogus(f"{what}, though {zone_text(zone)} is signed (chain {' → '.join(trust.chain)})")
        return trust.verdict()

    # ---- zones --------------------------------------------------------------------------------

    def _settled_above(self, name: dns.name.Name) -> ZoneTrust | None:
        """An ancestor already proven insecure or bogus: all below it is the same (RFC 4035 §4.3),
        unless a trust anchor sits lower. Saves the SOA question that would find the name's zone."""
        anchor = self.anchors.closest(name)
        ancestor = name
        while True:
            task = self._trust.get(ancestor)
            if task is not None and task.done() and not task.cancelled():
                trust = task.result()
                settled = trust.status in (DnssecStatus.INSECURE, DnssecStatus.BOGUS)
                if settled and (anchor is None or ancestor.is_subdomain(anchor)):
                    return trust
            if ancestor == dns.name.root:
                return None
            ancestor = ancestor.parent()

    async def trust(self, zone: dns.name.Name) -> ZoneTrust:
        """The trust of one zone, worked out once (concurrent askers share the work)."""
        task = self._trust.get(zone)
        if task is None:
            task = asyncio.ensure_future(self._zone_trust(zone))
            self._trust[zone] = task
        return await asyncio.shield(task)

    async def zone_of(self, name: dns.name.Name) -> tuple[dns.name.Name | None, str]:
        """The apex of the zone holding `name` (the SOA owner), or None with the reason."""
        task = self._zone_of.get(name)
        if task is None:
            task = asyncio.ensure_future(self._find_zone(name))
            self._zone_of[name] = task
        return await asyncio.shield(task)

    async def _find_zone(self, name: dns.name.Name) -> tuple[dns.name.Name | None, str]:
        fetched = await self._fetch(name, dns.rdatatype.SOA)
        message = fetched.message
        if message is None:
            return None, f"could not find the zone of {owner_text(name)}: {fetched.failure}"
        if message.get_rrset(message.answer, name, IN, dns.rdatatype.SOA) is not None:
            return name, ""
        if message.get_rrset(message.answer, name, IN, dns.rdatatype.CNAME) is not None and name.parent():
            # A CNAME owner is never an apex: its zone is its parent's.
            return await self.zone_of(name.parent())
        soa = next((r for r in message.authority if r.rdtype == dns.rdatatype.SOA), None)
        if soa is not None and name.is_subdomain(soa.name):
            return soa.name, ""
        rcode = dns.rcode.to_text(message.rcode())
        return None, f"could not find the zone of {owner_text(name)}: {rcode} without SOA"

    def _prefetch_ancestors(self, zone: dns.name.Name) -> None:
        """Ask for the DS and DNSKEY of every name from `zone` up to its trust anchor at once.

        The walk itself learns each parent only from the child's DS signer, one round trip per
        zone cut; asked together, the whole chain costs about one round trip. A label that is no
        zone cut costs two wasted questions (a NODATA each), which the per-assessment memo shares.
        """
        anchor = self.anchors.closest(zone)
        if anchor is None:
            return
        name = zone
        while True:
            kinds = (dns.rdatatype.DNSKEY,) if name == anchor else (dns.rdatatype.DS, dns.rdatatype.DNSKEY)
            for kind in kinds:
                task = asyncio.ensure_future(self._fetch(name, kind))
                self._prefetching.add(task)
                task.add_done_callback(self._prefetching.discard)
            if name == anchor or name == dns.name.root:
                return
            name = name.parent()

    async def _zone_trust(self, zone: dns.name.Name) -> ZoneTrust:
        self._prefetch_ancestors(zone)
        anchor = self.anchors.ds.get(zone)
        if anchor is not None:
            return await self._anchored(zone, anchor)
        if self.anchors.closest(zone) is None:
            return ZoneTrust(
                zone, DnssecStatus.INDETERMINATE, f"indeterminate (no trust anchor covers {zone_text(zone)})"
            )
        ds_reply, key_reply = await asyncio.gather(
            self._fetch(zone, dns.rdatatype.DS), self._fetch(zone, dns.rdatatype.DNSKEY)
        )
        message = ds_reply.message
        if message is None:
            return _unknown(zone, f"could not fetch DS for {zone_text(zone)}: {ds_reply.failure}")
        ds_rrset = message.get_rrset(message.answer, zone, IN, dns.rdatatype.DS)
        if ds_rrset is not None:
            return await self._delegated(zone, ds_rrset, message, key_reply)
        if message.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            return _unknown(zone, f"DS for {zone_text(zone)}: {dns.rcode.to_text(message.rcode())}")
        soa = next((r for r in message.authority if r.rdtype == dns.rdatatype.SOA), None)
        parent = soa.name if soa is not None and soa.name != zone and zone.is_subdomain(soa.name) else None
        if parent is None:
            parent, why = await self.zone_of(zone.parent())
            if parent is None:
                return _unknown(zone, why)
        parent_trust = await self.trust(parent)
        if parent_trust.status is not DnssecStatus.SECURE:
            return replace(parent_trust, zone=zone)
        nodata = f"no DS for {owner_text(zone)} at {zone_text(parent)}"
        if soa is None or not _rrsigs(message, message.authority, soa):
            return _bogus_zone(zone, f"{nodata}, and the denial is not signed")
        error = self._verify(soa, _rrsigs(message, message.authority, soa), parent_trust)
        if error:
            return _bogus_zone(zone, error)
        nxdomain = message.rcode() == dns.rcode.NXDOMAIN
        result = self._deny(message, zone, dns.rdatatype.DS, parent_trust, nxdomain)
        if isinstance(result, ChainVerdict):
            return ZoneTrust(zone, result.status, result.link, (), None, result.notes)
        if not result.proven:
            return _bogus_zone(zone, f"{nodata}, and {result.detail}")
        notes = self._nsec3_notes(message, parent_trust)
        link = f"insecure ({nodata}, proven by {result.how})"
        return ZoneTrust(zone, DnssecStatus.INSECURE, link, (), None, notes)

    async def _delegated(
        self, zone: dns.name.Name, ds_rrset: dns.rrset.RRset, message: dns.message.Message, key_reply: Fetched
    ) -> ZoneTrust:
        sigs = _rrsigs(message, message.answer, ds_rrset)
        if not sigs:
            parent, why = await self.zone_of(zone.parent())
            if parent is None:
                return _unknown(zone, why)
            parent_trust = await self.trust(parent)
            if parent_trust.status is DnssecStatus.SECURE:
                return _bogus_zone(zone, f"DS for {owner_text(zone)} at {zone_text(parent)} is not signed")
            return replace(parent_trust, zone=zone)
        parent = _signer(zone, sigs, strict=True)
        if parent is None:
            signed_by = zone_text(sigs[0].signer)
            return _bogus_zone(zone, f"DS for {owner_text(zone)} is signed by {signed_by}, not a parent")
        parent_trust = await self.trust(parent)
        if parent_trust.status is not DnssecStatus.SECURE:
            return replace(parent_trust, zone=zone)
        error = self._verify(ds_rrset, sigs, parent_trust)
        if error:
            return _bogus_zone(zone, error)
        at = f"DS at {zone_text(parent)} for {zone_text(zone)}"
        records = [rd for rd in ds_rrset if isinstance(rd, dns.rdtypes.ANY.DS.DS)]
        usable = [ds for ds in records if _usable(ds)]
        if not usable:
            # RFC 4035 §5.2: no supported algorithm in an authenticated DS RRset is treated as no DS.
            listed = ", ".join(sorted({algorithm_name(ds.algorithm) for ds in records}))
            return ZoneTrust(
                zone,
                DnssecStatus.INSECURE,
                f"insecure ({at} lists only {listed} or digests not accepted here, RFC 4035 §5.2)",
                (),
                None,
                parent_trust.notes,
            )
        if key_reply.message is None:
            return _unknown(zone, f"could not fetch DNSKEY for {zone_text(zone)}: {key_reply.failure}")
        keys = key_reply.message.get_rrset(key_reply.message.answer, zone, IN, dns.rdatatype.DNSKEY)
        first = usable[0]
        if keys is None:
            ds_text = f"key tag {first.key_tag}, alg {first.algorithm}"
            return _bogus_zone(zone, f"no DNSKEY at {zone_text(zone)}, though {at} ({ds_text})")
        matched = _keys_matching(zone, usable, keys)
        if not matched:
            tags = {(ds.key_tag, ds.algorithm) for ds in usable}
            same_tag = any((dns.dnssec.key_id(k), k.algorithm) in tags for k in keys)
            what = "has a digest that matches no DNSKEY" if same_tag else "matches no DNSKEY"
            return _bogus_zone(zone, f"{at} (key tag {first.key_tag}, alg {first.algorithm}) {what}")
        entry = ZoneTrust(zone, DnssecStatus.SECURE, "", keys=_subset(keys, matched))
        error = self._verify(keys, _rrsigs(key_reply.message, key_reply.message.answer, keys), entry)
        if error:
            return _bogus_zone(zone, error)
        chain = (*parent_trust.chain, zone_text(zone))
        notes = (
            *parent_trust.notes,
            *ds_notes(zone_text(zone), zone_text(parent), records),
            *key_notes(zone_text(zone), keys),
        )
        unique = tuple(dict.fromkeys(notes))
        return ZoneTrust(zone, DnssecStatus.SECURE, secure_link(chain), chain, keys, unique)

    async def _anchored(self, zone: dns.name.Name, anchor: Sequence[dns.rdtypes.ANY.DS.DS]) -> ZoneTrust:
        reply = await self._fetch(zone, dns.rdatatype.DNSKEY)
        if reply.message is None:
            return _unknown(zone, f"could not fetch DNSKEY for {zone_text(zone)}: {reply.failure}")
        keys = reply.message.get_rrset(reply.message.answer, zone, IN, dns.rdatatype.DNSKEY)
        if keys is None or not _rrsigs(reply.message, reply.message.answer, keys):
            # An anchored zone's DNSKEY always comes signed: without it, the resolver strips DNSSEC
            # records (or answers DNSKEY wrongly), and then nothing can be said, not "bogus".
            return _unknown(
                zone,
                f"the resolver passes no signed DNSKEY for the trust anchor {zone_text(zone)}: "
                "it does not pass DNSSEC records",
            )
        matched = _keys_matching(zone, list(anchor), keys)
        if not matched:
            tags = ", ".join(str(ds.key_tag) for ds in anchor)
            return _bogus_zone(zone, f"DNSKEY at {zone_text(zone)} matches no trust anchor (key tag {tags})")
        entry = ZoneTrust(zone, DnssecStatus.SECURE, "", keys=_subset(keys, matched))
        error = self._verify(keys, _rrsigs(reply.message, reply.message.answer, keys), entry)
        if error:
            return _bogus_zone(zone, error)
        chain = (zone_text(zone),)
        notes = key_notes(zone_text(zone), keys)
        return ZoneTrust(zone, DnssecStatus.SECURE, secure_link(chain), chain, keys, notes)

    # ---- signatures and denial ------------------------------------------------------------------

    def _verify(
        self, rrset: dns.rrset.RRset, sigs: Sequence[dns.rdtypes.ANY.RRSIG.RRSIG], trust: ZoneTrust
    ) -> str:
        """'' when one RRSIG by the zone verifies the RRset (RFC 4035 §5.3), else what is wrong."""
        # Keyed on the data and the signatures, never on the signatures alone (they could be replayed
        # over other data); the clock is not in the key, as one assessment lasts minutes at most.
        key = self._memo_key(rrset, sigs, trust)
        known = self._verified.get(key)
        if known is None:
            known = self._verify_now(rrset, sigs, trust)
            self._verified[key] = known
        return known[0]

    def _verified_labels(
        self, rrset: dns.rrset.RRset, sigs: Sequence[dns.rdtypes.ANY.RRSIG.RRSIG], trust: ZoneTrust
    ) -> int:
        """The labels field of the RRSIG that verified `rrset` (after `_verify` said yes)."""
        self._verify(rrset, sigs, trust)
        key = self._memo_key(rrset, sigs, trust)
        return self._verified[key][1]

    def _memo_key(
        self, rrset: dns.rrset.RRset, sigs: Sequence[dns.rdtypes.ANY.RRSIG.RRSIG], trust: ZoneTrust
    ) -> tuple[object, ...]:
        digest = self._digest
        return (
            trust.zone,
            rrset.name,
            rrset.rdtype,
            frozenset(digest(rd) for rd in rrset),
            tuple(digest(sig) for sig in sigs),
        )

    def _digest(self, rd: dns.rdata.Rdata) -> bytes:
        known = self._digests.get(id(rd))
        if known is not None and known[0] is rd:
            return known[1]
        octets = rd.to_digestable()
        self._digests[id(rd)] = (rd, octets)
        return octets

    def _verify_now(
        self, rrset: dns.rrset.RRset, sigs: Sequence[dns.rdtypes.ANY.RRSIG.RRSIG], trust: ZoneTrust
    ) -> tuple[str, int]:
        what = f"{owner_text(rrset.name)} {dns.rdatatype.to_text(rrset.rdtype)}"
        assert trust.keys is not None
        now = self._now()
        errors: list[str] = []
        for sig in sigs:
            if sig.signer != trust.zone or sig.type_covered != rrset.rdtype:
                continue
            # RFC 4035 §5.3.1 validity window, with the clock skew validators allow (Unbound: 10% of
            # the window, at least 1 h, at most 24 h; val-sig-skew-min/max), so that we agree with them.
            skew = min(max((sig.expiration - sig.inception) // 10, 3600), 86400)
            if sig.expiration + skew < now:
                errors.append(f"RRSIG over {what} expired {_when(sig.expiration)}")
                continue
            if sig.inception - skew > now:
                errors.append(f"RRSIG over {what} is not valid before {_when(sig.inception)}")
                continue
            inside = min(max(now, sig.inception), sig.expiration)  # the skew is granted: check the maths
            keys = [k for k in trust.keys if _key_is(k, sig.key_tag, sig.algorithm)]
            if not keys:
                errors.append(
                    f"RRSIG over {what} (key tag {sig.key_tag}, alg {sig.algorithm}) has no DNSKEY at "
                    f"{zone_text(trust.zone)}"
                )
                continue
            try:
                dns.dnssec.validate_rrsig(rrset, sig, {trust.zone: trust.keys}, now=inside, policy=_ALLOW_ALL)
                return "", sig.labels
            except dns.exception.UnsupportedAlgorithm:
                algorithm = algorithm_name(sig.algorithm)
                errors.append(f"RRSIG over {what} uses {algorithm}, which cannot be checked")
            except dns.exception.ValidationFailure as exc:
                errors.append(f"RRSIG over {what} (key tag {sig.key_tag}) does not verify: {exc}")
        return (errors[0] if errors else f"no RRSIG by {zone_text(trust.zone)} over {what}"), 0

    def _denial_records(
        self, message: dns.message.Message, trust: ZoneTrust
    ) -> list[dns.rrset.RRset] | ChainVerdict:
        """The zone's NSEC/NSEC3 RRsets in the authority section, each signature verified."""
        out: list[dns.rrset.RRset] = []
        for rrset in message.authority:
            if rrset.rdtype not in (dns.rdatatype.NSEC, dns.rdatatype.NSEC3):
                continue
            if not rrset.name.is_subdomain(trust.zone):
                continue
            error = self._verify(rrset, _rrsigs(message, message.authority, rrset), trust)
            if error:
                return _bogus(error)
            out.append(rrset)
        return out

    def _deny(
        self,
        message: dns.message.Message,
        name: dns.name.Name,
        qtype: dns.rdatatype.RdataType,
        trust: ZoneTrust,
        nxdomain: bool,
    ) -> Denial | ChainVerdict:
        records = self._denial_records(message, trust)
        if isinstance(records, ChainVerdict):
            return records
        if not records:
            return Denial(False, "", "no NSEC or NSEC3 record proves it")
        nsec3 = Nsec3Set(records, trust.zone)
        if nsec3:
            if nsec3.iterations > MAX_NSEC3_ITERATIONS:
                return ChainVerdict(
                    DnssecStatus.INSECURE,
                    f"insecure (NSEC3 at {zone_text(trust.zone)} uses {nsec3.iterations} iterations, over "
                    f"{MAX_NSEC3_ITERATIONS}: treated as insecure, RFC 9276 §3.2)",
                    trust.chain,
                    self._nsec3_notes(message, trust),
                )
            return nsec3.nxdomain(name) if nxdomain else nsec3.nodata(name, qtype)
        if nxdomain:
            return nsec_nxdomain(name, records, trust.zone)
        return nsec_nodata(name, qtype, records, trust.zone)

    def _nsec3_notes(self, message: dns.message.Message, trust: ZoneTrust) -> tuple[StrengthNote, ...]:
        nsec3 = Nsec3Set([r for r in message.authority if r.rdtype == dns.rdatatype.NSEC3], trust.zone)
        if not nsec3 or nsec3.iterations == 0:
            return trust.notes
        zone = zone_text(trust.zone)
        text = f"NSEC3 at {zone} uses {nsec3.iterations} extra iterations; RFC 9276 §3.1 says 0"
        note = StrengthNote(zone, "warn", text)
        return (*trust.notes, note)


def _dname_behind(
    message: dns.message.Message, owner: dns.name.Name, cname: dns.rrset.RRset
) -> dns.rrset.RRset | None:
    """The DNAME in the answer that synthesised this unsigned CNAME, if one did."""
    if _rrsigs(message, message.answer, cname):
        return None
    for rrset in message.answer:
        if rrset.rdtype != dns.rdatatype.DNAME or owner == rrset.name or not owner.is_subdomain(rrset.name):
            continue
        prefix = owner.relativize(rrset.name)
        if prefix.concatenate(rrset[0].target) == cname[0].target:
            return rrset
    return None


def _signer(
    owner: dns.name.Name, sigs: Sequence[dns.rdtypes.ANY.RRSIG.RRSIG], *, strict: bool = False
) -> dns.name.Name | None:
    """The deepest signer that is a zone at or above the owner (RFC 4035 §5.3.1); strictly above for DS."""
    candidates = [
        s.signer for s in sigs if owner.is_subdomain(s.signer) and not (strict and s.signer == owner)
    ]
    return max(candidates, key=len) if candidates else None


def _keys_matching(
    zone: dns.name.Name, ds_records: Sequence[dns.rdtypes.ANY.DS.DS], keys: dns.rrset.RRset
) -> list[dns.rdtypes.ANY.DNSKEY.DNSKEY]:
    """DNSKEYs with a DS's key tag, algorithm and digest (RFC 4035 §5.2), zone-key bit set."""
    matched: list[dns.rdtypes.ANY.DNSKEY.DNSKEY] = []
    for key in keys:
        if not isinstance(key, dns.rdtypes.ANY.DNSKEY.DNSKEY) or not key.flags & Flag.ZONE:
            continue
        for ds in ds_records:
            if dns.dnssec.key_id(key) != ds.key_tag or key.algorithm != ds.algorithm:
                continue
            try:
                made = dns.dnssec.make_ds(zone, key, ds.digest_type, policy=_ALLOW_ALL)
            except (dns.exception.UnsupportedAlgorithm, ValueError):
                continue
            if made.digest == ds.digest and key not in matched:
                matched.append(key)
    return matched


def _usable(ds: dns.rdtypes.ANY.DS.DS) -> bool:
    return ds.algorithm in VALIDATED_ALGORITHMS and ds.digest_type in VALIDATED_DIGESTS


def _key_is(key: dns.rdata.Rdata, tag: int, algorithm: int) -> bool:
    return isinstance(key, dns.rdtypes.ANY.DNSKEY.DNSKEY) and (
        dns.dnssec.key_id(key) == tag and key.algorithm == algorithm
    )


def _subset(keys: dns.rrset.RRset, chosen: list[dns.rdtypes.ANY.DNSKEY.DNSKEY]) -> dns.rrset.RRset:
    return dns.rrset.from_rdata_list(keys.name, keys.ttl, chosen)


def _bogus(why: str) -> ChainVerdict:
    return ChainVerdict(DnssecStatus.BOGUS, f"bogus: {why}")


def _bogus_zone(zone: dns.name.Name, why: str) -> ZoneTrust:
    return ZoneTrust(zone, DnssecStatus.BOGUS, f"bogus: {why}")


def _unknown(zone: dns.name.Name, why: str) -> ZoneTrust:
    return ZoneTrust(zone, DnssecStatus.INDETERMINATE, f"indeterminate ({why})")
