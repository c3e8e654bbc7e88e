"""The Celery application of distributed scans, configured from the broker's URL.

Only Redis is supported as the broker: the connection leases, the shared observations and the
bookkeeping live in the same Redis (`redis://HOST:PORT/DB`). No result backend: results go to
the store.

Delivery, chosen so that a crash loses nothing and stores nothing twice:

- `acks_late`: a chunk's message is acknowledged when the chunk is done, not when it starts;
- `reject_on_worker_lost`: a worker process killed mid-chunk puts its message back at once;
- the Redis transport's visibility timeout: a message whose whole worker (host) died is delivered
  again after that many seconds. It must exceed a chunk's run time (`docs/scale-out.md`); a second
  delivery of a chunk that is still running waits for it (`chunks._chunk_lease`);
- prefetch 1: a worker holds no more chunks than it runs, so the others get the rest;
- a chunk that raises (the store or Redis away) is retried with backoff, never dropped;
- a message lost in between (taken by a worker that lost Redis before the task started) is queued
  again by the submitter, without waiting for the visibility timeout (`redeliver.py`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from celery import Celery

if TYPE_CHECKING:
    from celery import Task

    from mecsa.store import Store

TASK = "mecsa.scan_chunk"
QUEUE = "mecsa.scan"
DEFAULT_VISIBILITY_TIMEOUT_S = 3600.0


def check_broker(url: str) -> str:
    """The broker URL, if it is one this application supports (a one-line reason otherwise)."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"--broker {url!r}: give a Redis URL (redis://HOST:PORT/DB)")
    return url


def make_app(
    broker: str,
    *,
    store_url: str | None = None,
    visibility_timeout_s: float = DEFAULT_VISIBILITY_TIMEOUT_S,
    max_attempts: int | None = None,
) -> Celery:
    """The application; `store_url` and `max_attempts` matter to workers only."""
    from mecsa.distributed.chunks import DEFAULT_MAX_ATTEMPTS

    app = Celery("mecsa", broker=check_broker(broker), set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE,
        broker_transport_options={
            "visibility_timeout": visibility_timeout_s,
            # Look for messages past their visibility timeout about four times per timeout (kombu's
            # default sweep runs every 100 s whatever the timeout).
            "unacked_restore_interval": max(1, min(10, int(visibility_timeout_s / 4))),
            "unacked_restore_throttle": 1,
        },
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a restarting broker: keep trying
        worker_send_task_events=False,
        worker_hijack_root_logger=False,
        mecsa_store=store_url,
        mecsa_broker=broker,
        mecsa_max_attempts=max_attempts or DEFAULT_MAX_ATTEMPTS,
    )
    app.task(
        name=TASK,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        autoretry_for=(Exception,),
        retry_backoff=2,
        retry_backoff_max=60,
        max_retries=None,
    )(_scan_chunk)
    return app


def _scan_chunk(
    task: Task, scan_id: int, chunk_id: int, config: dict[str, Any], targets: list[Any]
) -> dict[str, Any]:
    """One chunk, in a worker process: its own event loop, the process's store."""
    import asyncio

    from mecsa.distributed.chunks import Chunk, run_chunk
    from mecsa.distributed.codec import config_from_json, target_from_json
    from mecsa.distributed.redisconn import connect

    conf = task.app.conf
    chunk = Chunk(scan_id, chunk_id, config_from_json(config), tuple(target_from_json(t) for t in targets))

    async def run() -> dict[str, Any]:
        redis = connect(conf.mecsa_broker)
        try:
            outcome = await run_chunk(
                chunk, _store(conf.mecsa_store), redis, max_attempts=conf.mecsa_max_attempts
            )
        finally:
            await redis.aclose()
        return {"stored": outcome.stored, "already": outcome.already, "given_up": outcome.given_up}

    return asyncio.run(run())


_STORES: dict[tuple[int, str | None], Store] = {}


def _store(url: str | None) -> Store:
    """This process's store: opened on its first chunk, after the fork (connections are not shared)."""
    from mecsa.store import open_store

    key = (os.getpid(), url)
    found = _STORES.get(key)
    if found is None:
        found = _STORES[key] = open_store(url, migrate=False)  # `mecsa worker` migrated it
    return found
