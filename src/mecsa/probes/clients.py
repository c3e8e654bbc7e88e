"""One httpx client per process and event loop, built lazily, closed at exit (issue 20).

Building an `httpx.AsyncClient` (its transport, pool and settings) cost about a millisecond of
CPU per assessment when each assessment made its own; a bulk scan makes thousands. A client is
safe to share between the assessments of one event loop, but its connection pool belongs to the
loop it runs on, and the web service runs assessments on a worker loop while the scanner runs
several processes: so there is one client per (event loop, purpose) in each process, and a
forked child, whose loops are new, builds its own. The clients keep no connection alive
(`max_keepalive_connections=0`), so no socket outlives a fetch; closing them at exit releases the
pools for good (`close_clients` closes the current loop's earlier, for a service's shutdown);
a loop that is gone takes its clients with it (the registry holds loops weakly).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import weakref
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the clients are built by the callers: this registry never needs httpx itself
    import httpx

_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, httpx.AsyncClient]] = (
    weakref.WeakKeyDictionary()
)
_AT_EXIT: list[bool] = []


def shared_client(key: Hashable, build: Callable[[], httpx.AsyncClient]) -> httpx.AsyncClient:
    """The running loop's client for `key` (a purpose and its settings), built on first use."""
    clients = _CLIENTS.setdefault(asyncio.get_running_loop(), {})
    client = clients.get(key)
    if client is None or client.is_closed:
        client = clients[key] = build()
        if not _AT_EXIT:
            _AT_EXIT.append(True)
            atexit.register(_close_all)
    return client


async def close_clients() -> None:
    """Close the running loop's clients (the next `shared_client` builds afresh)."""
    clients = _CLIENTS.pop(asyncio.get_running_loop(), {})
    for client in clients.values():
        await client.aclose()


def _close_all() -> None:
    """At exit: close every client still open (their loops have ended; none holds a connection)."""
    open_clients = [c for clients in list(_CLIENTS.values()) for c in clients.values() if not c.is_closed]
    _CLIENTS.clear()
    if not open_clients:
        return

    async def close() -> None:
        for client in open_clients:
            with contextlib.suppress(Exception):
                await client.aclose()

    with contextlib.suppress(Exception):
        asyncio.run(close())
