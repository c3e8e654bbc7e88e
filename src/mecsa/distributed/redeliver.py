"""Chunks whose Celery message was lost are queued again by the submitter, while it follows the scan.

How a message is lost: a worker takes it from the queue (kombu's Redis transport moves it to its
`unacked` hash) and loses Redis before the task starts (a Redis restart, a failover). Celery drops
the requests it had not started, and kombu's attempt to put their messages back runs while Redis
is away, so it fails. The message then comes back only after the visibility timeout (an hour by
default), and the scan waits that long for its last chunks. A worker host that dies holding a
message leaves it there the same way. Restarting the lab test's Redis under load lost one chunk in
12 runs (`tests/lab/test_celery_lab.py`); CI saw the scan wait past its 300 s limit.

The rule uses only what Redis says: a chunk is lost when it is not finished, no worker holds its
lease (`chunk:<k>:running`) and the queue holds no message at all, for `grace_s` seconds on end.
Sending again a chunk that was not lost after all (its message held by a worker whose pool process
is still busy) costs little: whichever delivery starts first runs the chunk, the other waits for
its lease and then finds every domain stored (`chunks.py`), so nothing is stored twice.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mecsa.distributed.app import QUEUE
from mecsa.distributed.bookkeeping import ScanKeys

if TYPE_CHECKING:
    from redis.asyncio import Redis

GRACE_S = 20.0  # well above the moment between a worker's taking a message and its lease
EVERY_S = 2.0
log = logging.getLogger(__name__)


class QueueDepth:
    """How many messages wait in the scan queue, or None when the broker cannot say just now.

    kombu's `queue_declare` gives the count (for Redis, summed over the priority lists); the
    connection is made with short timeouts and one try, so that a broker that is away never
    blocks the submitter's loop for long."""

    def __init__(self, broker: str) -> None:
        self.broker = broker
        self._connection: Any = None  # a kombu Connection (kombu has no type hints)

    def __call__(self) -> int | None:
        from kombu.connection import Connection

        try:
            if self._connection is None:
                connect: Any = Connection
                connection = connect(
                    self.broker, transport_options={"socket_timeout": 5, "socket_connect_timeout": 5}
                )
                connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0)
                self._connection = connection
            return int(self._connection.default_channel.queue_declare(queue=QUEUE).message_count)
        except Exception:  # any failure means "unknown": nothing is sent again on a guess
            self.close()
            return None

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.release()
            except Exception:  # a connection already broken: nothing left to release
                log.debug("closing the queue-depth connection failed", exc_info=True)


class Redeliverer:
    """Finds the scan's lost chunks (module docstring) and sends each again with its queued arguments."""

    def __init__(
        self,
        redis: Redis,
        keys: ScanKeys,
        send: Callable[[list[Any]], object],
        depth: Callable[[], int | None],
        *,
        grace_s: float = GRACE_S,
        every_s: float = EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.send = send
        self.depth = depth
        self.grace_s = grace_s
        self.every_s = every_s
        self.clock = clock
        self.idle_since: dict[str, float] = {}  # chunk id -> since when neither queued nor running
        self.sent_again = 0
        self._last: float | None = None

    async def tick(self) -> int:
        """Look once (at most every `every_s`); how many chunks were sent again. Redis errors propagate."""
        now = self.clock()
        if self._last is not None and now - self._last < self.every_s:
            return 0
        self._last = now
        if self.depth() != 0:  # messages wait (or the broker cannot say): workers will get to them
            self.idle_since.clear()
            return 0
        chunk_ids = sorted(_text(c) for c in await self.redis.smembers(self.keys.chunks))
        pipe = self.redis.pipeline(transaction=False)
        for chunk_id in chunk_ids:
            pipe.exists(self.keys.running(int(chunk_id)))
        running = await pipe.execute() if chunk_ids else []
        idle = [c for c, held in zip(chunk_ids, running, strict=True) if not held]
        self.idle_since = {c: self.idle_since.get(c, now) for c in idle}
        sent = 0
        for chunk_id in idle:
            if now - self.idle_since[chunk_id] < self.grace_s:
                continue
            payload = await self.redis.hget(self.keys.payloads, chunk_id)
            if payload is None:  # finished just now
                continue
            try:
                self.send(json.loads(payload))
            except Exception as exc:  # the broker went away again: the next look tries again
                log.warning("cannot queue chunk %s again: %s", chunk_id, exc)
                continue
            log.warning(
                "chunk %s of scan %s: not finished, not running and not queued for %.0f s; queued again",
                chunk_id, self.keys.scan_id, now - self.idle_since[chunk_id],
            )  # fmt: skip
            self.idle_since[chunk_id] = now
            sent += 1
        self.sent_again += sent
        return sent


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
