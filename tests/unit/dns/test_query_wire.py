"""The query octets `mecsa.dns.udp` writes are the ones dnspython's make_query renders."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rdatatype
import pytest

from mecsa.dns.udp import Query, make_query


@pytest.mark.parametrize(
    ("name", "rdtype", "cd"),
    [
        ("example.test.", dns.rdatatype.MX, False),
        ("_25._tcp.mx1.Example.TEST.", dns.rdatatype.TLSA, True),
        (".", dns.rdatatype.SOA, False),
        ("sel\\.ector._domainkey.a-b.test.", dns.rdatatype.TXT, False),
    ],
)
def test_query_octets_equal_dnspythons_rendering(
    name: str, rdtype: dns.rdatatype.RdataType, cd: bool
) -> None:
    ours = make_query(dns.name.from_text(name), rdtype, cd=cd)
    theirs = dns.message.make_query(name, rdtype, use_edns=0, payload=1232, want_dnssec=True)
    if cd:
        theirs.flags |= dns.flags.CD
    theirs.id = ours.id
    assert ours.wire == theirs.to_wire()


def _reply_to(query: Query, **changes: object) -> dns.message.Message:
    reply = dns.message.make_response(query.message())
    for key, value in changes.items():
        setattr(reply, key, value)
    return reply


def test_a_reply_must_carry_the_id_and_the_question() -> None:
    query = make_query(dns.name.from_text("a.test."), dns.rdatatype.A)
    assert query.answered_by(_reply_to(query))
    assert not query.answered_by(_reply_to(query, id=(query.id + 1) % 65536))
    other = dns.message.make_response(dns.message.make_query("b.test.", "A"))
    other.id = query.id
    assert not query.answered_by(other)
    not_a_response = query.message()
    assert not query.answered_by(not_a_response)


def test_ids_are_random() -> None:
    name = dns.name.from_text("a.test.")
    assert len({make_query(name, dns.rdatatype.A).id for _ in range(64)}) > 32
