"""The cluster-wide per-IP connection slots against a real redis-server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from mecsa.distributed.leases import RedisLimits
from tests.unit.distributed.redisserver import RedisServer


@contextlib.asynccontextmanager
async def workers(server: RedisServer, n: int, **kwargs: float) -> AsyncIterator[list[RedisLimits]]:
    """`n` limits as `n` worker processes would hold them: each with a Redis client of its own."""
    clients = [Redis.from_url(server.url()) for _ in range(n)]
    limits = [RedisLimits(c, prefix=f"t{id(clients)}", **kwargs) for c in clients]  # type: ignore[arg-type]
    try:
        yield limits
    finally:
        for lim in limits:
            await lim.close()
        for c in clients:
            await c.aclose()


async def test_two_workers_never_hold_more_than_two_slots_of_one_address(redis_server: RedisServer) -> None:
    async with workers(redis_server, 2, rate=1000.0) as (a, b):
        holding = peak = 0

        async def connect(limits: RedisLimits) -> None:
            nonlocal holding, peak
            async with limits.slot("192.0.2.1"):
                holding += 1
                peak = max(peak, holding)
                await asyncio.sleep(0.05)
                holding -= 1

        await asyncio.gather(*(connect(w) for w in (a, b) for _ in range(6)))
        assert peak == 2
        assert holding == 0
        # a slot is handed back synchronously and removed from Redis by a task of its own: wait
        # for those removals (reading at once raced them: one lease was still there, once)
        await a.settled()
        await b.settled()
        # another address is counted apart
        leases, _ = a.keys("192.0.2.1")
        assert await a.redis.zcard(leases) == 0


async def test_addresses_are_normalised_so_one_ip_is_one_slot(redis_server: RedisServer) -> None:
    async with workers(redis_server, 1, rate=1000.0) as (a,):
        assert a.keys("2001:db8::0:1") == a.keys("2001:0db8::1")
        assert a.slot("2001:db8::0:1") is a.slot("2001:db8::1")


async def test_a_crashed_holders_lease_expires_and_frees_the_slot(redis_server: RedisServer) -> None:
    async with workers(redis_server, 2, rate=1000.0, lease_s=0.6) as (crashed, alive):
        for _ in range(2):
            await crashed.slot("192.0.2.2").acquire()
        # the crashed worker stops renewing (its process is gone): nothing is ever released
        assert crashed._renewer is not None
        crashed._renewer.cancel()
        crashed._held.clear()
        started = asyncio.get_running_loop().time()
        async with asyncio.timeout(5):
            await alive.slot("192.0.2.2").acquire()
        waited = asyncio.get_running_loop().time() - started
        assert 0.3 < waited < 3.0
        alive.slot("192.0.2.2").release()


async def test_a_live_holders_lease_is_renewed_past_its_length(redis_server: RedisServer) -> None:
    async with workers(redis_server, 2, rate=1000.0, lease_s=0.45) as (holder, other):
        for _ in range(2):
            await holder.slot("192.0.2.3").acquire()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.5):  # over three lease lengths
                await other.slot("192.0.2.3").acquire()
        assert holder.lost == 0
        leases, _ = other.keys("192.0.2.3")
        assert await other.redis.zcard(leases) == 2
        holder.slot("192.0.2.3").release()
        async with asyncio.timeout(2):
            await other.slot("192.0.2.3").acquire()
        other.slot("192.0.2.3").release()


async def test_new_connections_to_one_address_are_paced_across_workers(redis_server: RedisServer) -> None:
    async with workers(redis_server, 2, rate=10.0) as (a, b):
        loop = asyncio.get_running_loop()
        starts: list[float] = []

        async def connect(limits: RedisLimits) -> None:
            async with limits.slot("192.0.2.4"):
                starts.append(loop.time())

        await asyncio.gather(*(connect(w) for w in (a, b, a, b, a)))
        starts.sort()
        gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
        assert len(gaps) == 4
        assert min(gaps) >= 0.09  # 1 / rate, measured on Redis's clock, less the clients' timing noise


async def test_a_cancelled_wait_leaves_no_lease_behind(redis_server: RedisServer) -> None:
    async with workers(redis_server, 2, rate=1000.0) as (a, b):
        for _ in range(2):
            await a.slot("192.0.2.5").acquire()
        waiter = asyncio.ensure_future(b.slot("192.0.2.5").acquire())
        await asyncio.sleep(0.2)
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
        for _ in range(2):
            a.slot("192.0.2.5").release()
        await a.settled()  # the releases run as tasks, and so does the cancelled wait's removal
        await b.settled()
        leases, _ = a.keys("192.0.2.5")
        assert await a.redis.zcard(leases) == 0


async def test_a_slot_waits_for_a_restarting_redis_instead_of_failing() -> None:
    with RedisServer(persist=True) as server:
        async with workers(server, 1, rate=1000.0) as (a,):
            await a.slot("192.0.2.6").acquire()
            a.slot("192.0.2.6").release()
            server.kill()
            waiter = asyncio.ensure_future(a.slot("192.0.2.6").acquire())
            await asyncio.sleep(0.8)
            assert not waiter.done()
            await asyncio.to_thread(server.start)
            async with asyncio.timeout(10):
                assert await waiter is True
            a.slot("192.0.2.6").release()
