"""A chunk delivered again after its worker died: stored once, and a domain that keeps killing workers
ends as an `error` record after `max_attempts` (real redis-server and a SQLite store)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest

from mecsa.distributed.chunks import Chunk, run_chunk
from mecsa.observe import AssessOptions
from mecsa.scan.assessor import ScanConfig
from mecsa.scan.inputs import Target, target
from mecsa.scan.records import error_record
from tests.unit.distributed.redisserver import RedisServer

POISON = "poison.example"
NAMES = ["a.example", "b.example", POISON, "c.example", "d.example"]


def _deliver(store_path: str, redis_url: str, scan_id: int, prefix: str) -> None:
    """One delivery of the chunk, in a process of its own, as a pool process runs it.

    The assessor stands in for one that crashes on one domain (no real check kills a process): the
    poison domain ends the process at once, the others take a moment, so they are in flight then.
    """
    import mecsa.distributed.chunks as chunks
    from mecsa.distributed.redisconn import connect
    from mecsa.store import open_store

    class CrashingAssessor:
        def __init__(self, config: ScanConfig, scan_id: int, **_: Any) -> None:
            self.scan_id = scan_id

        async def __call__(self, entry: Target) -> dict[str, Any]:
            if entry.key == POISON:
                await asyncio.sleep(0.05)
                os._exit(9)
            await asyncio.sleep(0.3)
            return error_record(entry, "assessed", self.scan_id)

    chunks.Assessor = CrashingAssessor  # type: ignore[attr-defined,assignment]
    chunks.CHUNK_LEASE_S = 0.6  # a dead delivery's chunk lease lapses sooner than the default 15 s
    chunk = Chunk(scan_id, 1, ScanConfig(options=AssessOptions(), concurrency=10),
                  tuple(target(i + 1, n) for i, n in enumerate(NAMES)))  # fmt: skip

    async def run() -> None:
        redis = connect(redis_url)
        await redis.sadd(f"{prefix}:scan:{scan_id}:chunks", 1)
        with open_store(store_path) as store:
            await run_chunk(chunk, store, redis, max_attempts=3, prefix=prefix)
        await redis.aclose()

    asyncio.run(run())


@pytest.mark.slow
def test_a_domain_that_kills_its_worker_is_an_error_after_three_attempts_and_the_rest_stored_once(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    from mecsa.store import open_store

    store_path = tmp_path / "store.sqlite"
    with open_store(store_path) as store:
        scan_id = store.create_scan(options={}, profile="mecsa", mecsa_version="test")
    context = multiprocessing.get_context("fork")
    exits = []
    for _ in range(6):
        process = context.Process(
            target=_deliver, args=(str(store_path), redis_server.url(), scan_id, "poison")
        )
        process.start()
        process.join(60)
        exits.append(process.exitcode)
        if process.exitcode == 0:
            break
    assert exits == [9, 9, 9, 0]
    with open_store(store_path) as store:
        results = list(store.scan_assessments(scan_id))
    reasons = {r.domain: r.error_reason for r in results}
    assert len(results) == len(NAMES) == len(reasons)
    assert reasons.pop(POISON) == (
        "gave up after 3 attempts: a worker process died each time it assessed this domain"
    )
    assert reasons == dict.fromkeys(set(NAMES) - {POISON}, "assessed")


def test_a_second_delivery_of_a_finished_chunk_stores_nothing_again(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    from mecsa.distributed.redisconn import connect
    from mecsa.store import open_store

    store_path = tmp_path / "store.sqlite"
    with open_store(store_path) as store:
        scan_id = store.create_scan(options={}, profile="mecsa", mecsa_version="test")
        # lines that are not domains need no network: the engine records them as errors
        chunk = Chunk(
            scan_id, 7, ScanConfig(options=AssessOptions()), (target(1, "not a domain"), target(2, "a b"))
        )

        async def deliver() -> Any:
            redis = connect(redis_server.url())
            try:
                await redis.sadd(f"again:scan:{scan_id}:chunks", 7)
                await redis.set(f"again:scan:{scan_id}:submitted", 1)
                return await run_chunk(chunk, store, redis, prefix="again")
            finally:
                await redis.aclose()

        first = asyncio.run(deliver())
        second = asyncio.run(deliver())
        assert (first.stored, first.already, first.last) == (2, 0, True)
        assert (second.stored, second.already) == (0, 2)
        assert store.count_results(scan_id) == 2
        scan = store.get_scan(scan_id)
        assert scan is not None and scan.state == "finished"  # the last chunk ends the scan
