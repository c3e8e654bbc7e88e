"""A chunk whose Celery message was lost is queued again, and only such a chunk (real redis-server).

A message is "lost" here as it is in the field: a consumer takes it from the queue with kombu and
its process dies before acknowledging it, so the message sits in kombu's `unacked` hash until the
visibility timeout. No mock stands in for Redis or the broker's queue.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mecsa.distributed.app import QUEUE, TASK, make_app
from mecsa.distributed.bookkeeping import ScanKeys, chunk_done, chunk_queued
from mecsa.distributed.redeliver import QueueDepth, Redeliverer
from mecsa.distributed.redisconn import connect
from mecsa.dns.zoneserver import ThreadedZoneServer, ZoneData
from mecsa.store import open_store
from tests.unit.distributed.redisserver import RedisServer
from tests.unit.distributed.test_cli import DNS_ONLY
from tests.unit.scan.scanning import ORIGIN, TLD, write_list, zone

# Takes one message of the scan queue, as a worker does, and dies holding it (no ack, no restore).
_TAKE_AND_DIE = """
import os, sys
from kombu import Connection
with Connection(sys.argv[1]) as connection:
    message = connection.SimpleQueue(sys.argv[2]).get(timeout=10)
    print(message.decode()[0][1], flush=True)  # the chunk id in the task's arguments
    os._exit(0)
"""


def take_and_die(broker: str) -> int:
    """The chunk id of the message a dying consumer took."""
    done = subprocess.run(
        [sys.executable, "-c", _TAKE_AND_DIE, broker, QUEUE], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    redis = connect(redis_server.url())
    asyncio.run(_flush(redis))
    yield redis_server.url()


async def _flush(redis: Any) -> None:
    await redis.flushdb()
    await redis.aclose()


class Scan:
    """A scan's chunks queued as the submitter queues them: bookkeeping first, then the message."""

    def __init__(self, broker: str, scan_id: int = 1) -> None:
        self.broker = broker
        self.app = make_app(broker)
        self.keys = ScanKeys(scan_id)
        self.sent: list[list[Any]] = []

    def args(self, chunk_id: int) -> list[Any]:
        return [self.keys.scan_id, chunk_id, {"config": "as queued"}, [[chunk_id, f"d{chunk_id}.test"]]]

    async def queue(self, redis: Any, chunk_id: int) -> None:
        args = self.args(chunk_id)
        await chunk_queued(redis, self.keys, chunk_id, json.dumps(args))
        self.send(args)

    def send(self, args: list[Any]) -> None:
        self.sent.append(args)
        self.app.send_task(TASK, args=args, queue=QUEUE)


def queued_args(broker: str) -> list[list[Any]]:
    """The arguments of every message waiting in the scan queue (taken off it)."""
    from kombu.connection import Connection

    found: list[list[Any]] = []
    connect: Any = Connection  # kombu has no type hints
    with connect(broker) as connection:
        queue = connection.SimpleQueue(QUEUE)
        while True:
            try:
                message = queue.get(timeout=0.5)
            except queue.Empty:
                return found
            found.append(message.decode()[0])
            message.ack()


def test_a_chunk_whose_message_was_taken_by_a_consumer_that_died_is_queued_again(redis_url: str) -> None:
    async def run() -> tuple[int, int, list[int]]:
        redis = connect(redis_url)
        scan = Scan(redis_url)
        await scan.queue(redis, 1)
        lost = take_and_die(redis_url)
        depth = QueueDepth(redis_url)
        redeliverer = Redeliverer(redis, scan.keys, scan.send, depth, grace_s=0.5, every_s=0)
        before_grace = await redeliverer.tick()
        await asyncio.sleep(0.6)
        after_grace = await redeliverer.tick()
        waiting = depth()
        depth.close()
        await redis.aclose()
        return before_grace, after_grace, [lost, waiting or 0]

    before_grace, after_grace, (lost, waiting) = asyncio.run(run())
    assert lost == 1
    assert (before_grace, after_grace, waiting) == (0, 1, 1)  # only after the grace, once
    assert queued_args(redis_url) == [Scan(redis_url).args(1)]  # the arguments it was first queued with


def test_a_chunk_that_is_running_or_finished_is_not_queued_again(redis_url: str) -> None:
    async def run() -> int:
        redis = connect(redis_url)
        scan = Scan(redis_url)
        for chunk_id in (1, 2):
            await scan.queue(redis, chunk_id)
            take_and_die(redis_url)
        await redis.set(scan.keys.running(1), "a worker's lease", px=60_000)  # chunk 1 runs
        assert await chunk_done(redis, scan.keys, 2) is False  # chunk 2 is finished
        assert await redis.hkeys(scan.keys.payloads) == [b"1"]
        redeliverer = Redeliverer(redis, scan.keys, scan.send, QueueDepth(redis_url), grace_s=0.2, every_s=0)
        sent = 0
        for _ in range(4):
            sent += await redeliverer.tick()
            await asyncio.sleep(0.1)
        await redis.aclose()
        return sent

    assert asyncio.run(run()) == 0


def test_nothing_is_queued_again_while_messages_wait_in_the_queue(redis_url: str) -> None:
    async def run() -> tuple[int, int]:
        redis = connect(redis_url)
        scan = Scan(redis_url)
        await scan.queue(redis, 1)
        take_and_die(redis_url)  # chunk 1 lost ...
        await scan.queue(redis, 2)  # ... while chunk 2 waits for a worker
        redeliverer = Redeliverer(redis, scan.keys, scan.send, QueueDepth(redis_url), grace_s=0.2, every_s=0)
        waiting = 0
        for _ in range(4):
            waiting += await redeliverer.tick()
            await asyncio.sleep(0.1)
        assert queued_args(redis_url) == [scan.args(2)]  # a worker takes chunk 2 and runs it
        await redis.set(scan.keys.running(2), "a worker's lease", px=60_000)
        drained = 0
        for _ in range(4):
            drained += await redeliverer.tick()
            await asyncio.sleep(0.1)
        await redis.aclose()
        return waiting, drained

    assert asyncio.run(run()) == (0, 1)


def test_the_queue_depth_is_unknown_when_the_broker_is_away() -> None:
    with RedisServer() as server:
        url = server.url()
    started = time.monotonic()
    assert QueueDepth(url)() is None
    assert time.monotonic() - started < 5


@pytest.mark.slow
def test_a_celery_scan_finishes_when_a_consumer_died_holding_one_of_its_chunks(tmp_path: Path) -> None:
    """End to end: without the redelivery the scan waits out the visibility timeout (an hour)."""
    names = [f"l{i}.{ORIGIN}" for i in range(6)]
    listing = write_list(tmp_path, names)
    store = tmp_path / "s.sqlite"
    with (
        RedisServer() as redis,
        ThreadedZoneServer(ZoneData.from_texts({**TLD, ORIGIN: zone(n.split(".")[0] for n in names)})) as dns,
    ):
        started = time.monotonic()
        submitter = subprocess.Popen(
            [sys.executable, "-m", "mecsa", "scan", listing, "--engine", "celery", "--broker", redis.url(),
             "--chunk-size", "2", "--store", str(store), "--out", str(tmp_path / "out.jsonl"),
             "--resolver", dns.address, "--progress-every", "0.2", *DNS_ONLY],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert submitter.stderr is not None
        assert submitter.stderr.readline().startswith("scan: 0/6 done")  # queued, no worker yet
        lost = take_and_die(redis.url())
        worker = subprocess.Popen(
            [sys.executable, "-m", "mecsa", "worker", "--broker", redis.url(), "--store", str(store),
             "--concurrency", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            _, err = submitter.communicate(timeout=120)
        finally:
            submitter.kill()
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)
    assert submitter.returncode == 0, err
    assert f"chunk {lost} of scan 1: not finished, not running and not queued" in err
    assert time.monotonic() - started < 120
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted(r["domain"] for r in records) == sorted(names)
    with open_store(store) as s:
        scan = s.get_scan(1)
        assert scan is not None and (scan.state, scan.domains_done) == ("finished", 6)
