"""DNS answers shared across a scan's assessments, within their TTL; failures never cached."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator

import dns.message
import dns.name
import dns.rdatatype
import dns.rrset
import pytest

from mecsa.dns.answer import Rcode
from mecsa.dns.resolver import Nameserver, Resolver
from mecsa.dns.zoneserver import Fault, ZoneData, ZoneServer
from mecsa.scan.dnscache import SharedDnsClient, reply_lifetime

ZONE = (
    "$TTL 300\n@ SOA ns h 1 300 300 300 60\n@ NS ns\nns A 127.0.0.53\n"
    '@ TXT "v=spf1 -all"\nshort 1 TXT "one second"\n'
)


class CountingZoneData(ZoneData):
    """Counts the questions that reach the server.

    The UDP server consults `fault_for` twice per question it answers (to answer, then to decide on
    truncation), so `queries` halves the count.
    """

    asked: collections.Counter[tuple[str, str]]

    def fault_for(self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Fault | None:
        self.asked[(qname.to_text(), dns.rdatatype.to_text(rdtype))] += 1
        return super().fault_for(qname, rdtype)

    def queries(self, name: str, rdtype: str) -> int:
        return self.asked[(name, rdtype)] // 2


@pytest.fixture
async def server() -> AsyncIterator[tuple[ZoneServer, CountingZoneData]]:
    data = CountingZoneData.from_texts({"c.test": ZONE}, faults={"broken.c.test": Fault.SERVFAIL})
    assert isinstance(data, CountingZoneData)
    data.asked = collections.Counter()
    started = await ZoneServer(data).start()
    yield started, data
    await started.stop()


def client_for(server: ZoneServer) -> SharedDnsClient:
    return SharedDnsClient([Nameserver("127.0.0.1", server.port)], timeout=0.3, attempts=2)


async def test_assessments_of_one_process_share_an_answer_within_its_ttl(
    server: tuple[ZoneServer, CountingZoneData],
) -> None:
    zone_server, data = server
    client = client_for(zone_server)
    # three assessments, each with its own Resolver (its own per-assessment cache), asking at once
    answers = await asyncio.gather(*(Resolver(client).resolve("c.test", "TXT") for _ in range(3)))
    assert {a.rcode for a in answers} == {Rcode.NOERROR}
    assert data.queries("c.test.", "TXT") == 1
    await Resolver(client).resolve("c.test", "TXT")
    assert data.queries("c.test.", "TXT") == 1
    assert client.stats()["hits"] == 3


async def test_an_expired_answer_is_asked_again(server: tuple[ZoneServer, CountingZoneData]) -> None:
    zone_server, data = server
    client = client_for(zone_server)
    await Resolver(client).resolve("short.c.test", "TXT")
    await Resolver(client).resolve("short.c.test", "TXT")
    assert data.queries("short.c.test.", "TXT") == 1
    await asyncio.sleep(1.1)  # the record's TTL is 1 s
    await Resolver(client).resolve("short.c.test", "TXT")
    assert data.queries("short.c.test.", "TXT") == 2


async def test_failures_and_negative_answers_without_an_soa_are_not_kept(
    server: tuple[ZoneServer, CountingZoneData],
) -> None:
    zone_server, data = server
    client = client_for(zone_server)
    missing = await Resolver(client).resolve("nothing.c.test", "TXT")
    broken = await Resolver(client).resolve("broken.c.test", "TXT")
    assert missing.rcode is Rcode.NXDOMAIN
    assert broken.rcode is Rcode.SERVFAIL
    first = data.queries("broken.c.test.", "TXT")
    await Resolver(client).resolve("nothing.c.test", "TXT")
    again = await Resolver(client).resolve("broken.c.test", "TXT")
    assert again.rcode is Rcode.SERVFAIL
    assert data.queries("broken.c.test.", "TXT") == 2 * first  # asked afresh, not served from cache
    # this test server sends no SOA with NXDOMAIN: nothing says how long to keep it (RFC 2308 §5)
    assert data.queries("nothing.c.test.", "TXT") == 2


def test_the_lifetime_of_a_negative_reply_is_the_soa_minimum() -> None:
    query = dns.message.make_query("x.c.test", "TXT")
    response = dns.message.make_response(query)
    response.authority.append(
        dns.rrset.from_text("c.test.", 300, "IN", "SOA", "ns.c.test. h.c.test. 1 300 300 300 60")
    )
    assert reply_lifetime(response) == 60.0
    assert reply_lifetime(dns.message.make_response(query)) is None


async def test_askers_who_joined_a_failed_query_ask_again_themselves(
    server: tuple[ZoneServer, CountingZoneData],
) -> None:
    zone_server, data = server
    client = client_for(zone_server)
    answers = await asyncio.gather(*(Resolver(client).resolve("broken.c.test", "TXT") for _ in range(3)))
    assert {a.rcode for a in answers} == {Rcode.SERVFAIL}
    # one shared query, then each of the two joiners asks once more on its own: no failure is shared
    alone = SharedDnsClient([Nameserver("127.0.0.1", zone_server.port)], timeout=0.3, attempts=2)
    before = data.queries("broken.c.test.", "TXT")
    await Resolver(alone).resolve("broken.c.test", "TXT")
    one_resolution = data.queries("broken.c.test.", "TXT") - before
    assert before == 3 * one_resolution


async def test_the_cache_keeps_the_recently_used_answers_within_its_bound(
    server: tuple[ZoneServer, CountingZoneData],
) -> None:
    zone_server, data = server
    client = SharedDnsClient(
        [Nameserver("127.0.0.1", zone_server.port)], timeout=0.3, attempts=2, max_entries=3
    )
    await Resolver(client).resolve("c.test", "TXT")  # the popular one
    others = [("ns.c.test", "A"), ("c.test", "NS"), ("c.test", "SOA"), ("short.c.test", "TXT")]
    for name, rdtype in others:  # four more answers that may be kept: one must go each time
        await Resolver(client).resolve(name, rdtype)
        await Resolver(client).resolve("c.test", "TXT")  # used again: kept
    assert client.stats()["entries"] == 3
    assert data.queries("c.test.", "TXT") == 1
    await Resolver(client).resolve("ns.c.test", "A")  # the least recently used went first
    assert data.queries("ns.c.test.", "A") == 2
