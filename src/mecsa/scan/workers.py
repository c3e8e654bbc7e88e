"""Worker processes for `--workers N`: the CPU work spreads over cores, politeness stays scan-wide.

The parent process reads the list, writes the store and the output, and coordinates what must hold
for the whole scan; each worker runs its own event loop, `Assessor` and local observation cache.

- **Per-IP limits.** A worker's SMTP connection slots are granted by the parent, which holds the
  scan's one `PoliteLimits` (`RemoteLimits`): a worker asks before it connects to an address and
  says when the connection is closed. So "at most 2 simultaneous connections per IP" and the per-IP
  rate hold however many workers there are, for one local pipe round trip per connection.
- **Each (MX name, IP, port) probed once per scan.** On a local cache miss a worker claims the key
  from the parent (`RemoteObservationCache`): the first claimant probes and publishes the
  observation (pickled); every other claimant, in any worker, waits for it and gets that copy.
  A probe that fails is not kept: the waiters then probe themselves, as `ObservationCache` does.

Messages (pickled over one duplex pipe per worker):
  parent -> worker: ("assess", task_id, Target) | ("reply", request_id, payload) | ("stop",)
  worker -> parent: ("result", task_id, record) | ("acquire", request_id, address) | ("release", address)
                    | ("claim", request_id, key) | ("publish", key, bytes) | ("failed", key)
                    | ("stats", hits, misses)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import multiprocessing.connection
import pickle
import signal
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, TypeVar

from mecsa.observe import ObservationCache
from mecsa.observe.cache import DEFAULT_MAX_ENTRIES, DEFAULT_TTL_S, CacheKey
from mecsa.probes.smtp import ConnectionLimits
from mecsa.scan.assessor import Assessor, ScanConfig
from mecsa.scan.inputs import Target
from mecsa.scan.politeness import PoliteLimits
from mecsa.scan.records import error_record

Connection = multiprocessing.connection.Connection
T = TypeVar("T")
MAKE = "make"  # a claim's reply: you probe; else the reply is the pickled observation


# --- the worker side ------------------------------------------------------------------------------


class ParentChannel:
    """The worker's end of the pipe: fire-and-forget messages, and requests the parent replies to."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._ids = itertools.count()
        self._waiting: dict[int, asyncio.Future[Any]] = {}

    def send(self, message: tuple[Any, ...]) -> None:
        self.conn.send(message)

    def request(self, kind: str, argument: Any) -> tuple[int, asyncio.Future[Any]]:
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        self.conn.send((kind, request_id, argument))
        return request_id, future

    def replied(self, request_id: int, payload: Any) -> None:
        future = self._waiting.pop(request_id, None)
        if future is not None and not future.done():
            future.set_result(payload)

    def on_reply(self, request_id: int, callback: Callable[[Any], None]) -> None:
        """Run `callback` on a reply whose asker has gone (a cancelled wait for a slot, say)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: callback(f.result()))
        self._waiting[request_id] = future


class RemoteSlot(asyncio.Semaphore):
    """An address's connection slot whose acquire and release the parent decides."""

    def __init__(self, channel: ParentChannel, address: str) -> None:
        super().__init__(1_000_000)  # the parent does the limiting
        self.channel = channel
        self.address = address

    async def acquire(self) -> Literal[True]:
        request_id, granted = self.channel.request("acquire", self.address)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.release()
            else:  # the grant will still come: hand the slot straight back then
                self.channel.on_reply(request_id, lambda _: self.release())
            raise
        return True

    def release(self) -> None:
        self.channel.send(("release", self.address))


class RemoteLimits(ConnectionLimits):
    def __init__(self, channel: ParentChannel) -> None:
        super().__init__()
        self.channel = channel

    def slot(self, address: str) -> asyncio.Semaphore:
        return RemoteSlot(self.channel, address)


class RemoteObservationCache(ObservationCache):
    """This worker's cache, backed by the scan-wide claim table in the parent."""

    def __init__(self, channel: ParentChannel) -> None:
        super().__init__()
        self.channel = channel

    async def get(self, key: CacheKey, make: Callable[[], Awaitable[T]]) -> T:
        return await super().get(key, lambda: self._from_scan(key, make))

    async def _from_scan(self, key: CacheKey, make: Callable[[], Awaitable[T]]) -> T:
        _, reply = self.channel.request("claim", key)
        payload = await reply
        if payload != MAKE:
            value: T = pickle.loads(payload)
            return value
        try:
            value = await make()
        except BaseException:
            self.channel.send(("failed", key))
            raise
        try:
            data = pickle.dumps(value)
        except Exception:  # not picklable: the others probe for themselves
            self.channel.send(("failed", key))
        else:
            self.channel.send(("publish", key, data))
        return value


async def serve_parent(
    conn: Connection, channel: ParentChannel, start: Callable[[int, Any], Awaitable[None]]
) -> None:
    """A worker's side of the pipe, until the parent says stop or hangs up.

    ("assess", id, payload) runs `start(id, payload)` as a task; ("cancel", id) cancels it; ("reply",
    ...) answers a slot or claim request of `channel`. What still runs at the end is cancelled.
    The scanner's and the web service's workers share this loop; only `start` differs.
    """
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    tasks: dict[int, asyncio.Task[None]] = {}

    async def run(task_id: int, payload: Any) -> None:
        try:
            await start(task_id, payload)
        finally:
            tasks.pop(task_id, None)

    def readable() -> None:
        try:
            while conn.poll():
                message = conn.recv()
                if message[0] == "assess":
                    tasks[message[1]] = loop.create_task(run(message[1], message[2]))
                elif message[0] == "cancel":
                    task = tasks.get(message[1])
                    if task is not None:
                        task.cancel()
                elif message[0] == "reply":
                    channel.replied(message[1], message[2])
                elif message[0] == "stop":
                    stopped.set()
        except (EOFError, OSError):
            stopped.set()

    loop.add_reader(conn.fileno(), readable)
    await stopped.wait()
    loop.remove_reader(conn.fileno())
    running = list(tasks.values())
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)


def worker_main(config: ScanConfig, scan_id: int, conn: Connection) -> None:
    """A worker process: assess what the parent sends until it says stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    asyncio.run(_serve(config, scan_id, conn))


async def _serve(config: ScanConfig, scan_id: int, conn: Connection) -> None:
    channel = ParentChannel(conn)
    assessor = Assessor(config, scan_id, RemoteLimits(channel), RemoteObservationCache(channel))

    async def run(task_id: int, entry: Target) -> None:
        try:
            record = await assessor(entry)
        except Exception as exc:
            record = error_record(entry, f"internal error: {type(exc).__name__}: {exc}", scan_id)
        conn.send(("result", task_id, record))

    await serve_parent(conn, channel, run)
    cache = assessor.shared.cache
    with contextlib.suppress(OSError):
        conn.send(("stats", cache.hits, cache.misses))


# --- the parent side ------------------------------------------------------------------------------


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    pending: dict[int, tuple[Target, asyncio.Future[dict[str, Any]]]] = field(default_factory=dict)
    granted: dict[str, int] = field(default_factory=dict)  # slots held, released if the worker dies
    claims: set[CacheKey] = field(default_factory=set)  # keys it is probing for everyone
    alive: bool = True


@dataclass
class _Claim:
    owner: _Worker | None
    waiters: list[tuple[_Worker, int]] = field(default_factory=list)
    data: bytes | None = None
    expires: float = 0.0


class WorkerPool:
    """`await pool(target)` assesses in the least busy worker; use as an async context manager."""

    def __init__(self, config: ScanConfig, scan_id: int, workers: int) -> None:
        self.config = config
        self.scan_id = scan_id
        self.size = workers
        self.limits = PoliteLimits(config.per_ip_connections, config.per_ip_rate)
        self._workers: list[_Worker] = []
        self._ids = itertools.count()
        self._grants: set[asyncio.Task[None]] = set()
        self._claims: OrderedDict[CacheKey, _Claim] = OrderedDict()
        self.local_hits = self.local_misses = 0  # the workers' own caches, reported when they stop
        self.probes = 0  # claims answered "make": observations actually probed

    async def __aenter__(self) -> WorkerPool:
        # spawn, not fork: the parent has an event loop, a database pool and open sockets.
        context = multiprocessing.get_context("spawn")
        loop = asyncio.get_running_loop()
        for _ in range(self.size):
            parent_end, child_end = context.Pipe(duplex=True)
            process = context.Process(
                target=worker_main, args=(self.config, self.scan_id, child_end), daemon=True
            )
            process.start()
            child_end.close()
            worker = _Worker(process, parent_end)
            self._workers.append(worker)
            loop.add_reader(parent_end.fileno(), self._readable, worker)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for worker in self._workers:
            if worker.alive:
                with contextlib.suppress(OSError):
                    worker.conn.send(("stop",))
        for task in self._grants:
            task.cancel()
        for worker in self._workers:
            await asyncio.to_thread(worker.process.join, 10)
            if worker.process.is_alive():
                worker.process.kill()
            self._readable(worker)  # the last messages: its cache counters
            self._detach(worker)
            worker.conn.close()

    def cache_stats(self) -> dict[str, int]:
        return {"asks": self.local_hits + self.local_misses, "probes": self.probes}

    async def __call__(self, entry: Target) -> dict[str, Any]:
        live = [w for w in self._workers if w.alive]
        if not live:
            return error_record(entry, "internal error: every worker process died", self.scan_id)
        worker = min(live, key=lambda w: len(w.pending))
        task_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        worker.pending[task_id] = (entry, future)
        worker.conn.send(("assess", task_id, entry))
        try:
            return await future
        finally:
            worker.pending.pop(task_id, None)

    def _readable(self, worker: _Worker) -> None:
        try:
            while not worker.conn.closed and worker.conn.poll():
                self._handle(worker, worker.conn.recv())
        except (EOFError, OSError):
            self._lost(worker)

    def _handle(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "result":
            entry_future = worker.pending.get(message[1])
            if entry_future is not None and not entry_future[1].done():
                entry_future[1].set_result(message[2])
        elif kind == "acquire":
            task = asyncio.ensure_future(self._grant(worker, message[1], message[2]))
            self._grants.add(task)
            task.add_done_callback(self._grants.discard)
        elif kind == "release":
            held = worker.granted.get(message[1], 0)
            if held:
                worker.granted[message[1]] = held - 1
                self.limits.slot(message[1]).release()
        elif kind == "claim":
            self._claim(worker, message[1], message[2])
        elif kind == "publish":
            self._publish(worker, message[1], message[2])
        elif kind == "failed":
            self._failed(worker, message[1])
        elif kind == "stats":
            self.local_hits += message[1]
            self.local_misses += message[2]

    def _reply(self, worker: _Worker, request_id: int, payload: Any) -> None:
        if worker.alive:
            try:
                worker.conn.send(("reply", request_id, payload))
            except OSError:
                self._lost(worker)

    async def _grant(self, worker: _Worker, request_id: int, address: str) -> None:
        await self.limits.slot(address).acquire()
        if not worker.alive:
            self.limits.slot(address).release()
            return
        worker.granted[address] = worker.granted.get(address, 0) + 1
        self._reply(worker, request_id, None)

    # The claim table: one probe per key for the whole scan, within the cache's TTL.

    def _claim(self, worker: _Worker, request_id: int, key: CacheKey) -> None:
        claim = self._claims.get(key)
        now = time.monotonic()
        if claim is not None and claim.data is not None and claim.expires > now:
            self._reply(worker, request_id, claim.data)
        elif claim is not None and claim.data is None:
            claim.waiters.append((worker, request_id))
        else:
            self._claims[key] = _Claim(owner=worker)
            self._claims.move_to_end(key)
            worker.claims.add(key)
            self.probes += 1
            self._reply(worker, request_id, MAKE)
            while len(self._claims) > DEFAULT_MAX_ENTRIES:
                self._claims.popitem(last=False)

    def _publish(self, worker: _Worker, key: CacheKey, data: bytes) -> None:
        worker.claims.discard(key)
        claim = self._claims.get(key)
        if claim is None:
            return
        claim.data, claim.expires, claim.owner = data, time.monotonic() + DEFAULT_TTL_S, None
        waiters, claim.waiters = claim.waiters, []
        for waiter, request_id in waiters:
            self._reply(waiter, request_id, data)

    def _failed(self, worker: _Worker, key: CacheKey) -> None:
        worker.claims.discard(key)
        claim = self._claims.pop(key, None)
        if claim is None:
            return
        for waiter, request_id in claim.waiters:  # nothing to share: each probes for itself
            self._reply(waiter, request_id, MAKE)

    def _detach(self, worker: _Worker) -> None:
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(worker.conn.fileno())

    def _lost(self, worker: _Worker) -> None:
        if not worker.alive:
            return
        worker.alive = False
        self._detach(worker)
        for address, held in worker.granted.items():
            for _ in range(held):
                self.limits.slot(address).release()
        worker.granted.clear()
        for key in list(worker.claims):
            self._failed(worker, key)
        for entry, future in worker.pending.values():
            if not future.done():
                future.set_result(
                    error_record(entry, "internal error: the worker process died", self.scan_id)
                )
