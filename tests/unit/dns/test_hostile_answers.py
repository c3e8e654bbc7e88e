"""Answers that must never read as "not there": CNAME loops and long chains, and forged datagrams."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import cast

import dns.message
import dns.rrset
import pytest

from mecsa.checks import dmarc
from mecsa.dns.answer import Rcode
from mecsa.dns.resolver import DnsClient, Nameserver, Resolver
from mecsa.model import VerdictStatus
from mecsa.observe import Context
from tests.conftest import ServeZones

HEAD = "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\nns IN A 127.0.0.53\n"


def _chain(first: str, hops: int) -> str:
    """`first` → c1 → … → c<hops> (hops CNAMEs), ending in A, MX, TXT and TLSA records."""
    names = [first, *(f"c{n}" for n in range(1, hops + 1))]
    lines = [f"{a} IN CNAME {b}\n" for a, b in itertools.pairwise(names)]
    end = names[-1]
    lines.append(f'{end} IN A 127.0.0.9\n{end} IN MX 10 mx\n{end} IN TXT "v=DMARC1; p=reject"\n')
    lines.append(f"{end} IN TLSA 3 1 1 {'ab' * 32}\n")
    return "".join(lines)


LOOP = "loop IN CNAME loop2\nloop2 IN CNAME loop3\nloop3 IN CNAME loop\n_dmarc IN CNAME loop\n"


@pytest.mark.parametrize("rdtype", ["A", "MX", "TXT", "TLSA"])
async def test_cname_loop_is_an_error_for_every_type(serve_zones: ServeZones, rdtype: str) -> None:
    resolver = Resolver(await serve_zones({"example.test.": HEAD + LOOP}))
    answer = await resolver.resolve("loop.example.test", rdtype)
    assert answer.failed and answer.rcode is Rcode.CNAME_ERROR
    assert answer.records == ()
    assert "CNAME loop" in answer.describe_failure()
    assert "loop.example.test" in answer.describe_failure()


@pytest.mark.parametrize("rdtype", ["A", "MX", "TXT", "TLSA"])
async def test_cname_chain_over_the_limit_is_an_error(serve_zones: ServeZones, rdtype: str) -> None:
    resolver = Resolver(await serve_zones({"example.test.": HEAD + _chain("long", 17)}))
    answer = await resolver.resolve("long.example.test", rdtype)
    assert answer.failed and answer.rcode is Rcode.CNAME_ERROR
    assert "longer than 16" in answer.describe_failure()


async def test_cname_chain_at_the_limit_is_followed_to_its_data(serve_zones: ServeZones) -> None:
    # The loopback server stops after 16 answer RRsets, so the last hop is asked for again (RFC 1034 §5.3.3).
    resolver = Resolver(await serve_zones({"example.test.": HEAD + _chain("long", 16)}))
    answer = await resolver.resolve("long.example.test", "A")
    assert answer.rcode is Rcode.NOERROR
    assert [rd.to_text() for rd in answer.records] == ["127.0.0.9"]
    assert len(answer.cname_chain) == 16 and answer.cname_chain[-1] == "c16.example.test"


async def test_dmarc_behind_a_cname_loop_is_an_error_not_missing(serve_zones: ServeZones) -> None:
    client = await serve_zones({"example.test.": HEAD + LOOP})
    result = dmarc.evaluate(await dmarc.observe(Context("example.test", Resolver(client))))
    assert {v.protocol: v.status for v in result.verdicts} == {
        "dmarc": VerdictStatus.ERROR,
        "dmarc_policy": VerdictStatus.ERROR,
    }
    assert "CNAME loop" in next(f for f in result.findings if f.id == "dmarc.lookup_failed").message


class _Forger(asyncio.DatagramProtocol):
    """A loopback server that, before the real reply, sends a wrong-ID reply, a reply to another
    question, a garbage datagram and a reply from another port: what an off-path attacker can send."""

    def __init__(self, spoofer: asyncio.DatagramTransport) -> None:
        self.spoofer = spoofer
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        asyncio.get_running_loop().create_task(self._reply(query, addr))

    def _response(self, query: dns.message.Message, address: str) -> dns.message.Message:
        response = dns.message.make_response(query)
        question = query.question[0]
        response.answer.append(dns.rrset.from_text(question.name, 300, "IN", "A", address))
        return response

    async def _reply(self, query: dns.message.Message, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        wrong_id = self._response(query, "192.0.2.66")
        wrong_id.id = (query.id + 1) % 65536
        other = dns.message.make_query("elsewhere.example.test", "A")
        other.id = query.id
        wrong_question = dns.message.make_response(other)
        from_elsewhere = self._response(query, "192.0.2.67")
        self.transport.sendto(wrong_id.to_wire(), addr)
        self.transport.sendto(wrong_question.to_wire(), addr)
        self.transport.sendto(b"\x00\x01garbage", addr)
        self.spoofer.sendto(from_elsewhere.to_wire(), addr)
        await asyncio.sleep(0.05)
        self.transport.sendto(self._response(query, "127.0.0.7").to_wire(), addr)


@pytest.fixture
async def forger() -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    spoofer, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    transport, _ = await loop.create_datagram_endpoint(lambda: _Forger(spoofer), local_addr=("127.0.0.1", 0))
    yield transport.get_extra_info("sockname")[1]
    transport.close()
    spoofer.close()


async def test_forged_replies_are_ignored_until_the_real_one(forger: int) -> None:
    client = DnsClient([Nameserver("127.0.0.1", forger)], timeout=1.0, attempts=1)
    answer = await Resolver(client).resolve("www.example.test", "A")
    assert answer.rcode is Rcode.NOERROR, answer.describe_failure()
    assert [rd.to_text() for rd in answer.records] == ["127.0.0.7"]
