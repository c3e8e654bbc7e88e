"""The Redis connection of a distributed scan: one asyncio client per event loop, and patience.

Redis may restart under a running scan (a broker restart, a failover). Bookkeeping calls then wait
for it (`patiently`) instead of failing the domain they serve: an `error` record would be a wrong
answer about the domain, when only our own infrastructure was away.
"""

from __future__ import annotations

import asyncio
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
DOWN_PATIENCE_S = 120.0


def connect(url: str) -> Redis:
    """An asyncio client for `url` (redis://HOST:PORT/DB); connections are made on first use."""
    return Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30, health_check_interval=10)


async def patiently(call: Callable[[], Awaitable[T]], patience_s: float = DOWN_PATIENCE_S) -> T:
    """`await call()`, retried while Redis is unreachable, for up to `patience_s` seconds."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + patience_s
    delay = 0.2
    while True:
        try:
            return await call()
        except REDIS_DOWN:
            if loop.time() > give_up:
                raise
            await asyncio.sleep(delay)
            delay = min(2 * delay, 2.0)
