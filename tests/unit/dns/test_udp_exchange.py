"""`mecsa.dns.udp.exchange` reads the reply in a reader callback with a timer (issue 20); the
same forged datagrams are dropped on that path and on the portable one, and a timeout leaves no
reader or timer behind."""

from __future__ import annotations

import asyncio
import socket

import dns.name
import dns.rdatatype
import pytest

from mecsa.dns import udp
from mecsa.dns.udp import exchange, make_query
from tests.unit.dns.test_hostile_answers import forger

__all__ = ["forger"]  # the fixture, shared with the resolver's test of forged replies


async def test_the_real_reply_after_forged_ones(forger: int) -> None:
    query = make_query(dns.name.from_text("www.example.test."), dns.rdatatype.A)
    reply = await exchange(query, "127.0.0.1", forger, 1.0)
    assert [rd.to_text() for rd in reply.answer[0]] == ["127.0.0.7"]


async def test_the_same_on_a_loop_without_readers(forger: int, monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()

    def no_readers(*_args: object) -> None:
        raise NotImplementedError

    monkeypatch.setattr(loop, "add_reader", no_readers)
    query = make_query(dns.name.from_text("www.example.test."), dns.rdatatype.A)
    reply = await exchange(query, "127.0.0.1", forger, 1.0)
    assert [rd.to_text() for rd in reply.answer[0]] == ["127.0.0.7"]


async def test_silence_is_a_timeout_and_leaves_nothing_registered() -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    loop = asyncio.get_running_loop()
    selector = loop._selector  # type: ignore[attr-defined]
    readers_before = len(selector.get_map())
    timers_before = len(loop._scheduled)  # type: ignore[attr-defined]
    query = make_query(dns.name.from_text("quiet.example.test."), dns.rdatatype.A)
    with pytest.raises(TimeoutError):
        await exchange(query, "127.0.0.1", silent.getsockname()[1], 0.05)
    assert len(selector.get_map()) == readers_before
    assert sum(not h.cancelled() for h in loop._scheduled) <= timers_before  # type: ignore[attr-defined]
    silent.close()


async def test_a_cancelled_question_unregisters_its_reader() -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    loop = asyncio.get_running_loop()
    selector = loop._selector  # type: ignore[attr-defined]
    readers_before = len(selector.get_map())
    query = make_query(dns.name.from_text("quiet.example.test."), dns.rdatatype.A)
    task = asyncio.ensure_future(exchange(query, "127.0.0.1", silent.getsockname()[1], 5.0))
    await asyncio.sleep(0.01)
    assert len(selector.get_map()) == readers_before + 1  # the reader path was taken
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(selector.get_map()) == readers_before
    silent.close()


def test_the_endpoint_of_an_address() -> None:
    assert udp._endpoint("127.0.0.1") == (socket.AF_INET, "127.0.0.1")
    assert udp._endpoint("0:0::1") == (socket.AF_INET6, "::1")


def test_the_question_socket_never_blocks() -> None:
    with socket.socket(socket.AF_INET, udp._NONBLOCKING_DATAGRAM) as sock:
        if not udp._NONBLOCK:
            sock.setblocking(False)
        assert sock.getblocking() is False and sock.type == socket.SOCK_DGRAM
