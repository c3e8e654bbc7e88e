"""The monitor inside `mecsa serve --watchlist FILE` (issue 21), and the DNS the private pages ask.

The monitor's passes assess domains and write to the store with blocking calls, so they never
run on the serving loop: they run on a loop of their own, in its own thread (`WorkerLoop`), where
`mecsa.monitor.api.start_monitor` schedules them exactly as `mecsa monitor daemon` does. The same
loop answers the reports pages' DNS questions (reverse names, SPF membership) through one DNS
client made there.

Shutdown: the monitor is told to stop (between passes it stops at once); a pass still running is
given `grace_s` to finish, then cancelled, and the thread is joined.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from mecsa.dns.resolver import DnsClient
from mecsa.monitor.run import AssessFn
from mecsa.monitor.watchlist import WatchList
from mecsa.store import Store
from mecsa.web.worker import WorkerLoop

log = logging.getLogger("mecsa.web.monitor")
T = TypeVar("T")


@dataclass
class _Running:
    task: asyncio.Task[None]
    stop: asyncio.Event


class PrivateBackground:
    """The monitor's loop: its scheduler (when a watch list is given) and the pages' DNS client."""

    def __init__(
        self,
        watchlist: WatchList | None,
        store: Store,
        make_client: Callable[[], DnsClient],
        *,
        assess: AssessFn | None = None,
        grace_s: float = 5.0,
    ) -> None:
        self.watchlist = watchlist
        self.store = store
        self.grace_s = grace_s
        self._worker = WorkerLoop("mecsa-monitor")
        self.client = self._worker.call(make_client)
        self._running: _Running | None = None
        self.cache: dict[Any, Any] = {}  # the private pages' short-lived answers (reports_pages)
        if watchlist is not None:
            self._running = self._worker.call(lambda: self._start(watchlist, assess))

    def _start(self, watchlist: WatchList, assess: AssessFn | None) -> _Running:
        from mecsa.monitor.api import start_monitor

        task, stop = start_monitor(watchlist, self.store, assess)
        task.add_done_callback(_log_end)
        return _Running(task, stop)

    @property
    def monitoring(self) -> bool:
        """Whether the scheduler runs (it stops only at shutdown, or if it crashed: see the log)."""
        return self._running is not None and not self._running.task.done()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro` on the monitor's loop (DNS questions through `self.client`)."""
        return await self._worker.run(coro)

    async def close(self) -> None:
        running = self._running
        if running is not None:
            self._worker.loop.call_soon_threadsafe(running.stop.set)

            async def finished() -> None:
                await asyncio.wait({running.task}, timeout=self.grace_s)

            await self._worker.run(finished())
        await asyncio.to_thread(self._worker.close)  # cancels what still runs there


def _log_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the in-process monitor stopped", exc_info=task.exception())
