"""Rate limits kept in the service's memory: a sliding window of event times per key.

One process holds them; a deployment with several service processes behind one proxy limits per
process (docs/web.md says so) until they share Redis like the distributed scanner.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

_SWEEP_AT = 10_000  # keys held before idle ones are swept out


class SlidingWindow:
    """At most `limit` events per `window_s` seconds for each key."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._events: dict[str, deque[float]] = {}

    def _prune(self, key: str, now: float) -> int:
        events = self._events.get(key)
        if events is None:
            return 0
        while events and events[0] <= now - self.window_s:
            events.popleft()
        if not events:
            del self._events[key]  # idle keys are forgotten: many clients do not grow the table
        return len(events)

    def retry_after(self, key: str) -> float:
        """0 when an event for `key` is allowed now, else the seconds until it will be."""
        now = self.clock()
        if self._prune(key, now) < self.limit:
            return 0.0
        return max(0.001, self._events[key][0] + self.window_s - now)

    def hit(self, key: str) -> float:
        """Record an event for `key` when allowed (returns 0), else return `retry_after` (> 0)."""
        wait = self.retry_after(key)
        if wait == 0.0:
            if len(self._events) >= _SWEEP_AT:
                now = self.clock()
                for other in list(self._events):
                    self._prune(other, now)
            self._events.setdefault(key, deque()).append(self.clock())
        return wait
