"""A second event loop, in its own thread, for work that must not wait in the serving loop's queue.

The service's assessments no longer run here: they run in worker processes (pool.py), because on a
thread they shared the interpreter with the pages and twenty at once put a stored report's p95 at
500 ms. This loop stays for lighter background work of the service's modules (the monitor pages'
runs), which still shares the interpreter but never holds up the serving loop's queue.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class WorkerLoop:
    def __init__(self, name: str = "mecsa-assessments") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def call(self, make: Callable[[], T]) -> T:
        """`make()` run in the worker's thread (objects bound to its loop are made there)."""

        async def made() -> T:
            return make()

        return asyncio.run_coroutine_threadsafe(made(), self.loop).result(30)

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro` on the worker loop from the serving loop; cancelling this cancels it there."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            raise

    def close(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(30)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)
        self.loop.close()
