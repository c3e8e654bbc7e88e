"""Politeness towards every MX address across a whole scan: few simultaneous sessions, paced new ones.

One `PoliteLimits` is shared by every assessment of a scan process (where the SMTP probes run):

- at most `per_address` (default 2) simultaneous SMTP connections per IP address;
- new connections to one IP address start at least `1 / rate` seconds apart (default 5 a second),
  so a host that serves thousands of the list's domains never sees a burst.

Pacing is measured from the previous actual start, under a lock, so late wake-ups never bunch.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Literal

from mecsa.probes.smtp import PER_ADDRESS_CONNECTIONS, ConnectionLimits

DEFAULT_PER_ADDRESS = PER_ADDRESS_CONNECTIONS
DEFAULT_RATE = 5.0  # new connections per second per IP address


class PacedSlot(asyncio.Semaphore):
    """A semaphore whose acquisitions also start at least `interval` seconds apart.

    Pacing is serialised by a lock and measured from the previous *actual* start, so a waiter that
    wakes late (a busy event loop) does not bunch up with the next one.
    """

    def __init__(self, value: int, interval: float) -> None:
        super().__init__(value)
        self.interval = interval
        self._pace = asyncio.Lock()
        self._last_start: float | None = None

    async def acquire(self) -> Literal[True]:
        await super().acquire()
        try:
            async with self._pace:
                loop = asyncio.get_running_loop()
                if self._last_start is not None:
                    wait = self._last_start + self.interval - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                self._last_start = loop.time()
        except BaseException:
            self.release()
            raise
        return True


class PoliteLimits(ConnectionLimits):
    """Per-IP limits for a whole scan: `per_address` at once, at most `rate` new connections a second."""

    def __init__(self, per_address: int = DEFAULT_PER_ADDRESS, rate: float = DEFAULT_RATE) -> None:
        if per_address < 1 or rate <= 0:
            raise ValueError("per_address must be at least 1 and rate positive")
        super().__init__(per_address)
        self.rate = rate
        self._paced: dict[str, PacedSlot] = {}

    def slot(self, address: str) -> asyncio.Semaphore:
        try:
            key = ipaddress.ip_address(address).compressed
        except ValueError:
            key = address
        slot = self._paced.get(key)
        if slot is None:
            slot = self._paced[key] = PacedSlot(self.per_address, 1.0 / self.rate)
        return slot
