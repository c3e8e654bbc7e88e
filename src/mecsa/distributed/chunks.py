"""One chunk of a distributed scan, run in a worker process by the local scan's engine.

A chunk may arrive more than once: a worker that dies mid-chunk never acknowledges it, so the
broker delivers it again (`acks_late`, the visibility timeout). Hence, on every delivery:

1. domains the store already holds for the scan are skipped (stored exactly once: the store's
   unique (scan, domain) constraint backs this up when two deliveries race);
2. each domain's attempts are counted in Redis as its assessment starts. A domain started before
   and never stored was in flight when a worker died: a *suspect*. Suspects run one at a time and
   each result is stored at once, so if one of them kills the worker again only its own count
   grows; a domain started `max_attempts` times is stored as an `error` record with the reason
   instead of being tried again (a domain that crashes workers cannot stall the scan);
3. the other domains run at the scan's concurrency, as in a local scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mecsa.distributed.bookkeeping import ScanKeys, chunk_done, keep_for_a_while
from mecsa.distributed.leases import RedisLimits
from mecsa.distributed.redisconn import REDIS_DOWN, patiently
from mecsa.distributed.shared_cache import RedisObservationCache
from mecsa.scan.assessor import Assessor, ScanConfig
from mecsa.scan.engine import Counters, ResultSink, run_scan
from mecsa.scan.inputs import Target
from mecsa.scan.records import error_record

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from mecsa.store import Store

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 3
CHUNK_LEASE_S = 15.0


@dataclass(frozen=True, slots=True)
class Chunk:
    scan_id: int
    chunk_id: int
    config: ScanConfig
    targets: tuple[Target, ...]


@dataclass(frozen=True, slots=True)
class ChunkOutcome:
    stored: int  # results this delivery stored
    already: int  # domains the store held before (an earlier delivery's work)
    given_up: int  # domains recorded as errors after max_attempts
    cancelled: bool
    last: bool  # it was the scan's last chunk


class _NoOutput:
    """A worker writes to the store only; the submitter streams records from there."""

    def write(self, record: Mapping[str, Any]) -> None:
        pass

    def flush(self) -> None:
        pass


async def run_chunk(
    chunk: Chunk,
    store: Store,
    redis: Redis,
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    prefix: str = "mecsa",
) -> ChunkOutcome:
    keys = ScanKeys(chunk.scan_id, prefix)
    if await patiently(lambda: redis.exists(keys.cancelled)):
        await patiently(lambda: chunk_done(redis, keys, chunk.chunk_id))
        return ChunkOutcome(0, 0, 0, cancelled=True, last=False)
    async with _chunk_lease(redis, keys.running(chunk.chunk_id)):
        outcome = await _run(chunk, store, redis, keys, max_attempts, prefix)
    last = await patiently(lambda: chunk_done(redis, keys, chunk.chunk_id))
    if last:
        scan = store.get_scan(chunk.scan_id)
        if scan is not None and scan.state == "running":
            store.finish_scan(chunk.scan_id, "finished")
        with contextlib.suppress(*REDIS_DOWN):
            await keep_for_a_while(redis, keys)
    return ChunkOutcome(outcome[0], outcome[1], outcome[2], cancelled=False, last=last)


async def _run(
    chunk: Chunk, store: Store, redis: Redis, keys: ScanKeys, max_attempts: int, prefix: str
) -> tuple[int, int, int]:
    scan_id, config = chunk.scan_id, chunk.config
    held = store.done_domains(scan_id, [t.key for t in chunk.targets])
    todo = [t for t in chunk.targets if t.key not in held]
    if not todo:
        return 0, len(chunk.targets), 0
    names = [t.key for t in todo]
    counts = await patiently(lambda: redis.hmget(keys.attempts, names))
    tried = {name: int(n or 0) for name, n in zip(names, counts, strict=True)}
    given_up = [t for t in todo if tried[t.key] >= max_attempts]
    suspects = sorted((t for t in todo if 0 < tried[t.key] < max_attempts), key=lambda t: -tried[t.key])
    fresh = [t for t in todo if tried[t.key] == 0]
    stored = 0
    if given_up:
        sink = ResultSink(store, scan_id, _NoOutput(), Counters())
        for entry in given_up:
            reason = (
                f"gave up after {tried[entry.key]} attempts: a worker process died each time it "
                "assessed this domain"
            )
            sink.put(error_record(entry, reason, scan_id))
        sink.flush()
        stored += sink.counters.done
    limits = RedisLimits(redis, config.per_ip_connections, config.per_ip_rate, prefix=prefix)
    cache = RedisObservationCache(redis, scan_id, prefix=prefix)
    assessor = Assessor(config, scan_id, limits=limits, cache=cache)

    async def counted(entry: Target) -> dict[str, Any]:
        if entry.domain is not None:
            await patiently(lambda: redis.hincrby(keys.attempts, entry.key, 1))
        return await assessor(entry)

    stop = asyncio.Event()
    try:
        # Suspects alone, each stored before the next starts; then the rest, as a local scan runs them.
        for batch, concurrency, size in ((suspects, 1, 1), (fresh, config.concurrency, 20)):
            if not batch:
                continue
            sink = ResultSink(store, scan_id, _NoOutput(), Counters(), batch=size, interval=0.5)
            await run_scan(
                batch, counted, sink, scan_id=scan_id, concurrency=concurrency, resume=False, stop=stop
            )
            stored += sink.counters.done
    finally:
        await limits.close()
    with contextlib.suppress(*REDIS_DOWN):
        asks = cache.hits + cache.misses
        pipe = redis.pipeline(transaction=False)
        pipe.hincrby(keys.stats, "asks", asks)
        pipe.hincrby(keys.stats, "probes", cache.probes)
        await pipe.execute()
    return stored, len(held), len(given_up)


_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@contextlib.asynccontextmanager
async def _chunk_lease(redis: Redis, key: str) -> Any:
    """Hold `key` while the chunk runs (renewed); wait while another delivery of it holds it."""
    token = uuid.uuid4().hex
    ms = int(CHUNK_LEASE_S * 1000)
    while not await patiently(lambda: redis.set(key, token, nx=True, px=ms)):  # noqa: ASYNC110
        await asyncio.sleep(1.0)  # another worker's lease, in Redis: nothing local to wait on

    async def renew() -> None:
        while True:
            await asyncio.sleep(CHUNK_LEASE_S / 3)
            with contextlib.suppress(*REDIS_DOWN):
                await redis.pexpire(key, ms)

    keeper = asyncio.ensure_future(renew())
    try:
        yield
    finally:
        keeper.cancel()
        with contextlib.suppress(*REDIS_DOWN):
            await redis.register_script(_RELEASE)(keys=[key], args=[token])
