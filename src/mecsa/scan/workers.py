"""Worker processes for `--workers N`: the CPU work spreads over cores, politeness stays scan-wide.

The parent process reads the list, writes the store and the output, and owns the scan's one
`PoliteLimits`. Each worker runs its own event loop and `Assessor`; its SMTP connection slots are
*granted by the parent* (`RemoteLimits`): a worker asks before it connects to an address and
tells the parent when the connection is closed. So "at most 2 simultaneous connections per IP" and
the per-IP rate hold for the whole scan however many workers there are: a local round trip over a
pipe per connection (well under a millisecond) buys that guarantee.

Messages (pickled over one duplex pipe per worker):
  parent -> worker: ("assess", task_id, Target) | ("granted", request_id) | ("stop",)
  worker -> parent: ("result", task_id, record) | ("acquire", request_id, address) | ("release", address)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import multiprocessing.connection
import signal
from types import TracebackType
from typing import Any, Literal

from mecsa.probes.smtp import ConnectionLimits
from mecsa.scan.assessor import Assessor, ScanConfig
from mecsa.scan.inputs import Target
from mecsa.scan.politeness import PoliteLimits
from mecsa.scan.records import error_record

Connection = multiprocessing.connection.Connection


# --- the worker side ------------------------------------------------------------------------------


class RemoteSlot(asyncio.Semaphore):
    """An address's connection slot whose acquire and release are decided by the parent."""

    def __init__(self, limits: RemoteLimits, address: str) -> None:
        super().__init__(1_000_000)  # the parent does the limiting; this only tracks our side
        self.limits = limits
        self.address = address

    async def acquire(self) -> Literal[True]:
        await self.limits.ask(self.address)
        return True

    def release(self) -> None:
        self.limits.conn.send(("release", self.address))


class RemoteLimits(ConnectionLimits):
    def __init__(self, conn: Connection) -> None:
        super().__init__()
        self.conn = conn
        self._ids = itertools.count()
        self._waiting: dict[int, asyncio.Future[None]] = {}

    def slot(self, address: str) -> asyncio.Semaphore:
        return RemoteSlot(self, address)

    async def ask(self, address: str) -> None:
        request = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._waiting[request] = future
        self.conn.send(("acquire", request, address))
        try:
            await future
        except asyncio.CancelledError:
            # Granted meanwhile or later: give the slot back when the grant arrives (see granted()).
            if future.done() and not future.cancelled():
                self.conn.send(("release", address))
            else:
                self._waiting[request] = _released_on_grant(self.conn, address)
            raise

    def granted(self, request: int) -> None:
        future = self._waiting.pop(request, None)
        if future is not None and not future.done():
            future.set_result(None)


def _released_on_grant(conn: Connection, address: str) -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.add_done_callback(lambda _: conn.send(("release", address)))
    return future


def worker_main(config: ScanConfig, scan_id: int, conn: Connection) -> None:
    """A worker process: assess what the parent sends until it says stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    asyncio.run(_serve(config, scan_id, conn))


async def _serve(config: ScanConfig, scan_id: int, conn: Connection) -> None:
    limits = RemoteLimits(conn)
    assessor = Assessor(config, scan_id, limits)
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    tasks: set[asyncio.Task[None]] = set()

    async def run(task_id: int, entry: Target) -> None:
        try:
            record = await assessor(entry)
        except Exception as exc:
            record = error_record(entry, f"internal error: {type(exc).__name__}: {exc}", scan_id)
        conn.send(("result", task_id, record))

    def readable() -> None:
        try:
            while conn.poll():
                message = conn.recv()
                if message[0] == "assess":
                    task = loop.create_task(run(message[1], message[2]))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                elif message[0] == "granted":
                    limits.granted(message[1])
                elif message[0] == "stop":
                    stopped.set()
        except (EOFError, OSError):
            stopped.set()

    loop.add_reader(conn.fileno(), readable)
    await stopped.wait()
    loop.remove_reader(conn.fileno())
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# --- the parent side ------------------------------------------------------------------------------


class _Worker:
    def __init__(self, process: multiprocessing.process.BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.pending: dict[int, tuple[Target, asyncio.Future[dict[str, Any]]]] = {}
        self.granted: dict[str, int] = {}  # slots this worker holds, released if it dies
        self.alive = True


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

    async def __aenter__(self) -> WorkerPool:
        # spawn, not fork: the parent has an event loop, threads of SQLAlchemy's pool, open sockets.
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
        loop = asyncio.get_running_loop()
        for worker in self._workers:
            if worker.alive:
                with contextlib.suppress(OSError):
                    worker.conn.send(("stop",))
                loop.remove_reader(worker.conn.fileno())
        for task in self._grants:
            task.cancel()
        for worker in self._workers:
            await asyncio.to_thread(worker.process.join, 10)
            if worker.process.is_alive():
                worker.process.kill()
            worker.conn.close()

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
            while worker.conn.poll():
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
            address = message[1]
            held = worker.granted.get(address, 0)
            if held:
                worker.granted[address] = held - 1
                self.limits.slot(address).release()

    async def _grant(self, worker: _Worker, request: int, address: str) -> None:
        await self.limits.slot(address).acquire()
        if not worker.alive:
            self.limits.slot(address).release()
            return
        worker.granted[address] = worker.granted.get(address, 0) + 1
        try:
            worker.conn.send(("granted", request))
        except OSError:
            self._lost(worker)

    def _lost(self, worker: _Worker) -> None:
        if not worker.alive:
            return
        worker.alive = False
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(worker.conn.fileno())
        for address, held in worker.granted.items():
            for _ in range(held):
                self.limits.slot(address).release()
        worker.granted.clear()
        for entry, future in worker.pending.values():
            if not future.done():
                future.set_result(
                    error_record(entry, "internal error: the worker process died", self.scan_id)
                )
