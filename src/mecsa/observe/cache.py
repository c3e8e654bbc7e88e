"""A process-wide observation cache: keyed, with a TTL, sharing in-flight work.

A bulk scan asks for the same SMTP session (same MX name, IP and port) from many domains at once:
the first asker probes, the others await the same task. A task that raises is not kept, so a later
asker tries again. Entries expire after `ttl_s`; the cache holds at most `max_entries` (the oldest
go first), so memory stays flat however long the domain list is.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")
CacheKey = tuple[str, ...]

DEFAULT_TTL_S = 3600.0
DEFAULT_MAX_ENTRIES = 100_000


class ObservationCache:
    """Observations shared across assessments. Not thread-safe: one per event loop (per process)."""

    def __init__(
        self,
        ttl_s: float = DEFAULT_TTL_S,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[CacheKey, tuple[float, asyncio.Task[Any]]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: CacheKey, make: Callable[[], Awaitable[T]]) -> T:
        """The observation under `key`: a live cached one, the one being made, or a new one."""
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now and not _failed(entry[1]):
            self.hits += 1
            task = entry[1]
        else:
            self.misses += 1
            task = asyncio.ensure_future(make())
            self._entries[key] = (now + self.ttl_s, task)
            self._entries.move_to_end(key)
            task.add_done_callback(lambda done: self._forget_failure(key, done))
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        result: T = await asyncio.shield(task)
        return result

    def _forget_failure(self, key: CacheKey, task: asyncio.Task[Any]) -> None:
        entry = self._entries.get(key)
        if entry is not None and entry[1] is task and _failed(task):
            del self._entries[key]

    def stats(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "entries": len(self._entries)}


def _failed(task: asyncio.Task[Any]) -> bool:
    return task.done() and (task.cancelled() or task.exception() is not None)
