"""The chain walker's memo keys (mecsa.dns.validation.walker): canonical octets, made once per rdata."""

from __future__ import annotations

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from mecsa.dns.validation.anchors import iana_root_anchors
from mecsa.dns.validation.walker import ChainValidator, Fetched

RRSIG = "NSEC 13 2 300 20300101000000 20200101000000 12345 Example. Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4"


async def _never(name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Fetched:
    raise AssertionError("no question is asked here")


def _rrsig(text: str = RRSIG) -> dns.rdata.Rdata:
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.RRSIG, text)


def test_an_rdatas_digest_is_its_canonical_octets_computed_once() -> None:
    validator = ChainValidator(_never, iana_root_anchors())
    rd = _rrsig()
    first = validator._digest(rd)
    assert first == rd.to_digestable()
    assert b"\x07example\x00" in first  # canonical: the signer's name in lower case (RFC 4034 §6.2)
    assert validator._digest(rd) is first  # the same object: not made again


def test_equal_records_read_apart_give_equal_digests_and_different_ones_do_not() -> None:
    validator = ChainValidator(_never, iana_root_anchors())
    one, same, other = _rrsig(), _rrsig(), _rrsig(RRSIG.replace("12345", "54321"))
    assert one is not same
    assert validator._digest(one) == validator._digest(same)
    assert validator._digest(other) != validator._digest(one)
