"""The per-IP limiter under load: at most N at once per address, new connections paced, slots freed."""

from __future__ import annotations

import asyncio
import collections

import pytest

from mecsa.scan.politeness import PoliteLimits


async def test_many_connections_to_few_addresses_stay_within_the_limits() -> None:
    limits = PoliteLimits(per_address=2, rate=50.0)  # at least 20 ms between starts per address
    addresses = ["192.0.2.1", "192.0.2.2", "2001:db8::1"]
    active: collections.Counter[str] = collections.Counter()
    peak: collections.Counter[str] = collections.Counter()
    starts: dict[str, list[float]] = collections.defaultdict(list)
    loop = asyncio.get_running_loop()

    async def connection(address: str) -> None:
        async with limits.slot(address):
            starts[address].append(loop.time())
            active[address] += 1
            peak[address] = max(peak[address], active[address])
            await asyncio.sleep(0.05)  # longer than the pacing: starts overlap up to the limit
            active[address] -= 1

    started = loop.time()
    await asyncio.gather(*(connection(addresses[i % 3]) for i in range(60)))
    elapsed = loop.time() - started
    assert set(peak.values()) == {2}  # reached, never passed
    for address in addresses:
        gaps = [b - a for a, b in zip(starts[address], starts[address][1:], strict=False)]
        assert len(starts[address]) == 20
        assert min(gaps) >= 0.02 - 0.005  # the test's own reading of the clock may lag by a few ms
    # 20 connections of 50 ms, 2 at a time, per address (addresses in parallel): at least 0.5 s
    assert elapsed >= 10 * 0.05 - 0.01


async def test_one_address_spelled_two_ways_shares_its_slot() -> None:
    limits = PoliteLimits(per_address=1, rate=1000.0)
    assert limits.slot("2001:DB8:0:0::1") is limits.slot("2001:db8::1")
    assert limits.slot("192.0.2.1") is not limits.slot("192.0.2.2")


async def test_a_cancelled_waiter_gives_its_slot_back() -> None:
    limits = PoliteLimits(per_address=1, rate=1000.0)
    slot = limits.slot("192.0.2.9")
    await slot.acquire()
    waiter = asyncio.ensure_future(slot.acquire())
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    slot.release()
    await asyncio.wait_for(slot.acquire(), 1.0)  # free again: the cancelled waiter took nothing


async def test_pacing_is_cancelled_cleanly_too() -> None:
    limits = PoliteLimits(per_address=2, rate=1.0)  # the second start waits a whole second
    slot = limits.slot("192.0.2.10")
    await slot.acquire()
    paced = asyncio.ensure_future(slot.acquire())
    await asyncio.sleep(0.05)
    paced.cancel()
    with pytest.raises(asyncio.CancelledError):
        await paced
    slot.release()
    assert not slot.locked()


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        PoliteLimits(per_address=0)
    with pytest.raises(ValueError, match="rate positive"):
        PoliteLimits(rate=0)
