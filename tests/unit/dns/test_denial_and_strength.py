"""The pure parts of our own validation: NSEC/NSEC3 proofs over zones signed here, and algorithm strength."""

from __future__ import annotations

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

from mecsa.dns.signing import Signing, new_key, sign_zone
from mecsa.dns.validation.denial import Nsec3Set, nsec_nodata, nsec_nxdomain
from mecsa.dns.validation.strength import ds_notes, key_notes, rsa_modulus_bits

ZONE = "w.test."
TEXT = (
    "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\nns IN A 127.0.0.53\n"
    '*.wild IN TXT "any"\nhost IN A 127.0.0.9\nchild IN NS ns.child\nns.child IN A 127.0.0.10\n'
)
KEY = new_key()


def _records(denial: str, kind: dns.rdatatype.RdataType) -> list[dns.rrset.RRset]:
    text = sign_zone(ZONE, TEXT, [KEY], Signing(denial=denial))
    zone = dns.zone.from_text(text, origin=ZONE, relativize=False, check_origin=False)
    out = []
    for name, node in zone.nodes.items():
        found = node.get_rdataset(dns.rdataclass.IN, kind)
        if found is not None:
            out.append(dns.rrset.from_rdata_list(name, found.ttl, list(found)))
    return out


def _n(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


def test_nsec_wildcard_nodata_and_nxdomain() -> None:
    records = _records("nsec", dns.rdatatype.NSEC)
    zone = _n(ZONE)
    # a.wild.w.test would match *.wild, which has TXT but no A: a wildcard NODATA.
    assert nsec_nodata(_n("a.wild.w.test."), dns.rdatatype.A, records, zone).how == "NSEC (wildcard)"
    assert not nsec_nodata(_n("a.wild.w.test."), dns.rdatatype.TXT, records, zone).proven
    assert nsec_nxdomain(_n("nope.w.test."), records, zone).proven
    # the wildcard exists, so a name it would synthesise cannot be NXDOMAIN
    refused = nsec_nxdomain(_n("a.wild.w.test."), records, zone)
    assert not refused.proven and "the wildcard *.wild.w.test. exists" in refused.detail


def test_nsec_ds_denial_needs_the_parent_side_of_a_delegation() -> None:
    records = _records("nsec", dns.rdatatype.NSEC)
    zone = _n(ZONE)
    assert nsec_nodata(_n("child.w.test."), dns.rdatatype.DS, records, zone).proven
    host = nsec_nodata(_n("host.w.test."), dns.rdatatype.DS, records, zone)
    assert not host.proven and "no delegation" in host.detail
    # the zone's own apex NSEC (SOA bit) cannot deny a DS for the apex to a parent
    apex = nsec_nodata(_n("w.test."), dns.rdatatype.DS, records, _n("test."))
    assert not apex.proven


def test_nsec3_wildcard_nodata_nxdomain_and_delegation() -> None:
    records = Nsec3Set(_records("nsec3", dns.rdatatype.NSEC3), _n(ZONE))
    assert records.nodata(_n("a.wild.w.test."), dns.rdatatype.A).how == "NSEC3 (wildcard)"
    assert records.nxdomain(_n("nope.w.test.")).proven
    assert records.nodata(_n("child.w.test."), dns.rdatatype.DS).proven
    assert not records.nodata(_n("host.w.test."), dns.rdatatype.DS).proven
    # names below the delegation are the child's: no closest encloser proof from the parent
    assert not records.nxdomain(_n("x.child.w.test.")).proven
    assert not records.nodata(_n("other.test."), dns.rdatatype.A).proven  # not in the zone at all


def test_strength_of_keys_and_digests() -> None:
    assert key_notes("a.", [new_key(13).dnskey, new_key(15).dnskey]) == ()
    rsa = new_key(8, rsa_bits=1024)
    assert rsa_modulus_bits(rsa.dnskey) == 1024
    (short,) = key_notes("a.", [rsa.dnskey])
    assert short.level == "warn" and "RSA of 1024 bits, under 2048" in short.text
    assert key_notes("a.", [new_key(8).dnskey]) == ()  # RSASHA256 at 2048 bits is fine
    sha1 = new_key(13).ds("a.", "SHA1")
    (note,) = ds_notes("a.", ".", [sha1])
    assert "SHA-1 digest" in note.text and "RFC 8624 §3.3" in note.text


def test_nsec_an_empty_non_terminal_has_no_data_and_is_not_denied() -> None:
    # wild.w.test holds no records but *.wild.w.test is below it: an empty non-terminal, which the
    # NSEC before it (next name *.wild.w.test) proves to exist (RFC 4592 §2.2.2, RFC 4034 §4.1.1).
    records = _records("nsec", dns.rdatatype.NSEC)
    zone = _n(ZONE)
    ent = _n("wild.w.test.")
    for qtype in (dns.rdatatype.TXT, dns.rdatatype.A, dns.rdatatype.MX):
        assert nsec_nodata(ent, qtype, records, zone).how == "NSEC (empty non-terminal)"
    refused = nsec_nxdomain(ent, records, zone)
    assert not refused.proven and "exists (an empty non-terminal)" in refused.detail
    ds = nsec_nodata(ent, dns.rdatatype.DS, records, zone)  # no delegation, so no proof of an unsigned one
    assert not ds.proven and "no delegation" in ds.detail
    # The control: a name the same kind of NSEC covers without anything below it is not an ENT.
    assert not nsec_nodata(_n("nope.w.test."), dns.rdatatype.TXT, records, zone).proven
    assert nsec_nxdomain(_n("nope.w.test."), records, zone).proven


def test_nsec3_an_empty_non_terminal_has_its_own_nsec3() -> None:
    records = _records("nsec3", dns.rdatatype.NSEC3)
    nsec3 = Nsec3Set(records, _n(ZONE))
    assert nsec3.nodata(_n("wild.w.test."), dns.rdatatype.TXT).proven
    assert not nsec3.nxdomain(_n("wild.w.test.")).proven
