"""One httpx client per process and event loop (`mecsa.probes.clients`)."""

from __future__ import annotations

import asyncio

import httpx

from mecsa.probes import clients


def _build(made: list[httpx.AsyncClient]) -> httpx.AsyncClient:
    client = httpx.AsyncClient(trust_env=False)
    made.append(client)
    return client


def test_one_client_per_loop_and_key_and_a_new_one_on_another_loop() -> None:
    made: list[httpx.AsyncClient] = []

    async def twice() -> tuple[httpx.AsyncClient, httpx.AsyncClient, httpx.AsyncClient]:
        first = clients.shared_client(("test", 1), lambda: _build(made))
        again = clients.shared_client(("test", 1), lambda: _build(made))
        other_key = clients.shared_client(("test", 2), lambda: _build(made))
        return first, again, other_key

    first, again, other_key = asyncio.run(twice())
    assert first is again and other_key is not first
    later, _, _ = asyncio.run(twice())  # a new event loop: its own client
    assert later is not first
    assert len(made) == 4


def test_close_clients_closes_this_loops_clients_and_the_next_use_builds_afresh() -> None:
    made: list[httpx.AsyncClient] = []

    async def run() -> None:
        first = clients.shared_client("closing", lambda: _build(made))
        await clients.close_clients()
        assert first.is_closed
        assert clients.shared_client("closing", lambda: _build(made)) is not first
        await clients.close_clients()

    asyncio.run(run())
    assert len(made) == 2


def test_clients_left_open_are_closed_at_exit() -> None:
    """A loop that has ended but still exists (a service's worker loop at exit): closed by the hook.

    A loop that is gone takes its clients with it; they hold no connection (no keep-alive)."""
    made: list[httpx.AsyncClient] = []

    async def run() -> None:
        clients.shared_client("at-exit", lambda: _build(made))

    loop = asyncio.new_event_loop()
    loop.run_until_complete(run())
    loop.close()
    assert not made[0].is_closed
    clients._close_all()
    assert made[0].is_closed
