"""The Redis-shared observation cache against a real redis-server: claim, wait, publish, fail, expire."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from mecsa.distributed.shared_cache import RedisObservationCache
from tests.unit.distributed.redisserver import RedisServer

_scans = itertools.count(1)


@dataclass(frozen=True)
class Seen:
    """Stands for an observation: a frozen dataclass, pickled into Redis."""

    address: str
    banner: str


@contextlib.asynccontextmanager
async def workers(
    server: RedisServer, n: int, scan_id: int | None = None, ttl_s: float = 3600.0
) -> AsyncIterator[list[RedisObservationCache]]:
    scan = scan_id if scan_id is not None else next(_scans)
    clients = [Redis.from_url(server.url()) for _ in range(n)]
    try:
        yield [RedisObservationCache(c, scan, ttl_s=ttl_s, prefix="cachetest") for c in clients]
    finally:
        for c in clients:
            await c.aclose()


KEY = ("smtp", "mx.example.test", "192.0.2.1", "25")


async def test_two_workers_asking_at_once_make_one_probe_and_share_it(redis_server: RedisServer) -> None:
    async with workers(redis_server, 2) as (a, b):
        probes = 0

        async def probe() -> Seen:
            nonlocal probes
            probes += 1
            await asyncio.sleep(0.3)
            return Seen("192.0.2.1", f"220 probe {probes}")

        first, second = await asyncio.gather(a.get(KEY, probe), b.get(KEY, probe))
        assert probes == 1
        assert first == second == Seen("192.0.2.1", "220 probe 1")
        assert a.probes + b.probes == 1
        assert a.shared_hits + b.shared_hits == 1
        # a later ask in a third process is served from Redis
        async with workers(redis_server, 1, scan_id=None) as (other_scan,):
            assert (await other_scan.get(KEY, probe)).banner == "220 probe 2"  # other scan: not shared


async def test_a_later_worker_gets_the_published_observation(redis_server: RedisServer) -> None:
    scan = next(_scans)
    async with workers(redis_server, 1, scan) as (a,), workers(redis_server, 1, scan) as (b,):
        assert await a.get(KEY, lambda: _value("one")) == Seen("x", "one")
        assert await b.get(KEY, lambda: _value("two")) == Seen("x", "one")
        assert b.probes == 0


async def test_a_failed_probe_is_not_cached_and_the_waiter_probes_itself(redis_server: RedisServer) -> None:
    async with workers(redis_server, 2) as (a, b):

        async def failing() -> Seen:
            await asyncio.sleep(0.2)
            raise OSError("network unreachable")

        claimant = asyncio.ensure_future(a.get(KEY, failing))
        await asyncio.sleep(0.05)  # a holds the claim now
        waiter = asyncio.ensure_future(b.get(KEY, lambda: _value("b probed")))
        with pytest.raises(OSError):
            await claimant
        assert await waiter == Seen("x", "b probed")
        assert b.probes == 1
        # and nothing of the failure stays: a's next ask finds b's result, not an error
        assert await a.get(KEY, lambda: _value("a again")) == Seen("x", "b probed")


async def test_a_claim_whose_worker_died_expires_and_the_waiter_probes(redis_server: RedisServer) -> None:
    async with workers(redis_server, 1) as (b,):
        data_key, claim_key = b.keys(KEY)
        await b.redis.set(claim_key, "dead worker", px=400)  # claimed, never renewed nor published
        started = asyncio.get_running_loop().time()
        assert await b.get(KEY, lambda: _value("mine")) == Seen("x", "mine")
        assert 0.3 < asyncio.get_running_loop().time() - started < 3.0
        assert await b.redis.exists(data_key) == 1  # and shares what it found


async def test_observations_expire_after_their_ttl(redis_server: RedisServer) -> None:
    scan = next(_scans)
    async with workers(redis_server, 1, scan, ttl_s=0.3) as (a,), workers(redis_server, 1, scan) as (b,):
        await a.get(KEY, lambda: _value("old"))
        await asyncio.sleep(0.5)
        assert await b.get(KEY, lambda: _value("new")) == Seen("x", "new")


async def test_a_long_probe_keeps_its_claim_alive(redis_server: RedisServer) -> None:
    from mecsa.distributed import shared_cache

    async with workers(redis_server, 2) as (a, b):
        old = shared_cache.CLAIM_S
        shared_cache.CLAIM_S = 0.3
        try:
            calls = 0

            async def slow() -> Seen:
                nonlocal calls
                calls += 1
                await asyncio.sleep(1.0)  # over three claim lengths
                return Seen("x", "slow")

            claimant = asyncio.ensure_future(a.get(KEY, slow))
            await asyncio.sleep(0.05)
            assert await b.get(KEY, slow) == Seen("x", "slow")
            await claimant
            assert calls == 1
        finally:
            shared_cache.CLAIM_S = old


async def _value(banner: str) -> Seen:
    return Seen("x", banner)
