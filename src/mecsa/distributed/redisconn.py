"""The Redis connection of a distributed scan: one asyncio client per event loop, and patience.

Redis may restart under a running scan (a broker restart, a failover). Bookkeeping calls then wait
for it (`patiently`) instead of failing the domain they serve: an `error` record would be a wrong
answer about the domain, when only our own infrastructure was away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

T = TypeVar("T")
REDIS_DOWN: tuple[type[BaseException], ...] = (
    ConnectionError,
    OSError,
    RedisConnectionError,
    RedisTimeoutError,
)
log = logging.getLogger(__name__)


def connect(url: str) -> Redis:
    """An asyncio client for `url` (redis://HOST:PORT/DB); connections are made on first use."""
    return Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30, health_check_interval=10)


async def patiently(call: Callable[[], Awaitable[T]], patience_s: float | None = None) -> T:
    """`await call()`, retried while Redis is unreachable: for up to `patience_s` seconds, or for as
    long as it takes (None). Waiting is right for a worker: nothing it could do without Redis would
    be a true answer about a domain, and the broker's return resumes the scan."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    delay = 0.2
    warned = False
    while True:
        try:
            return await call()
        except REDIS_DOWN as exc:
            waited = loop.time() - started
            if patience_s is not None and waited > patience_s:
                raise
            if waited > 10 and not warned:
                log.warning("Redis unreachable for %.0f s, still waiting: %s", waited, exc)
                warned = True
            await asyncio.sleep(delay)
            delay = min(2 * delay, 2.0)
