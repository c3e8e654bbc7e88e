"""The service's assessments run in worker processes, so that pages never wait for the interpreter.

An assessment is thousands of small CPU steps (DNS parsing, checks, rendering the report); on a
thread of the serving process they shared its GIL with the pages, and twenty at once put a stored
report's p95 at 500 ms (benchmarks/bench_web.py). In `--assess-workers` processes they use the
other cores, and the serving process only relays progress and writes the store.

The pool is the scanner's (`mecsa.scan.workers.WorkerPool`) with a web worker behind it, so what
holds across a scan's processes holds across the service's too:

- **Per-IP politeness.** Every SMTP connection slot is granted by this process's one `PoliteLimits`
  (at most 2 connections per MX IP at once, paced), however many workers run assessments.
- **One probe of an MX host at a time.** Two assessments in flight that share an MX host share its
  probe through the claim table; a finished probe is not kept (`observation_ttl_s`, 0 by default),
  so a later assessment sees the host as it is then, not as it was.
- **No internal addresses.** Each worker wraps its DNS client in `GuardedClient` per assessment
  (unless `--allow-private`): the guard runs where the connections are made.

Besides the scanner's messages, a web worker sends ("progress", task_id, event data) for each check
as it finishes, and its result is (document, report body, report file) or the refusal's text.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mecsa.model import CheckResult
from mecsa.observe.cache import CacheKey
from mecsa.scan.assessor import ScanConfig
from mecsa.scan.inputs import Target
from mecsa.scan.workers import (
    Connection,
    ParentChannel,
    RemoteLimits,
    RemoteObservationCache,
    WorkerPool,
    _Worker,
    serve_parent,
)

# A worker's answer: ((document, report body, report file), None), or (None, the refusal's text).
Made = tuple[tuple[dict[str, Any], str, str] | None, str | None]
ProgressCallback = Callable[[dict[str, Any]], None]


def default_workers() -> int:
    """min(4, the CPUs this process may use): beyond that the serving process is the bottleneck."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """What a worker process needs (picklable: it is sent to the process when it starts)."""

    scan: ScanConfig  # options, profile, resolvers, DNS timeout, per-IP limits
    allow_private: bool = False
    observation_ttl_s: float = 0.0


def check_data(result: CheckResult, done: int, total: int) -> dict[str, Any]:
    """One progress event's data: the check, its verdicts, and how far the assessment is."""
    return {
        "check": result.check,
        "protocols": [
            {"protocol": v.protocol, "status": v.status.value, "reason": v.reason} for v in result.verdicts
        ],
        "done": done,
        "total": total,
    }


# --- the worker side ------------------------------------------------------------------------------


def worker_main(config: WorkerConfig, conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: the service decides
    asyncio.run(_serve(config, conn))


class WebWorker:
    """Assesses domains in one worker process: one DNS client, the pool-wide limits and claims."""

    def __init__(self, config: WorkerConfig, conn: Connection) -> None:
        from mecsa.dns.resolver import DnsClient, parse_nameserver
        from mecsa.observe import SharedObservations
        from mecsa.web.rendering import Pages

        self.config = config
        self.conn = conn
        self.channel = ParentChannel(conn)
        servers = [parse_nameserver(r) for r in config.scan.resolvers]
        self.client = DnsClient(servers or None, timeout=config.scan.dns_timeout)
        cache = RemoteObservationCache(self.channel)
        cache.ttl_s = config.observation_ttl_s
        cache.max_entries = 10_000  # with no TTL, entries only share probes in flight
        self.shared = SharedObservations(cache=cache, limits=RemoteLimits(self.channel))
        self.pages = Pages()

    async def assess(self, task_id: int, domain: str, total: int) -> Made:
        from mecsa.assess import assess
        from mecsa.report.html import render_html
        from mecsa.report.json import assessment_to_json
        from mecsa.web.guard import GuardedClient

        guard = None if self.config.allow_private else GuardedClient(self.client)
        done = itertools.count(1)

        def progress(result: CheckResult) -> None:
            self.conn.send(("progress", task_id, check_data(result, next(done), total)))

        client, options = guard or self.client, self.config.scan.options
        assessment = await assess(domain, client, options, shared=self.shared, on_result=progress)
        refusal = guard.refusal() if guard is not None else None
        if refusal is not None:
            return None, refusal
        profile = self.config.scan.profile
        body = self.pages.report_body(assessment, profile)
        return (assessment_to_json(assessment, profile), body, render_html(assessment, profile)), None


async def _serve(config: WorkerConfig, conn: Connection) -> None:
    worker = WebWorker(config, conn)

    async def run(task_id: int, job: tuple[str, int]) -> None:
        domain, total = job
        try:
            made = await worker.assess(task_id, domain, total)
        except Exception as exc:  # the service logs it and says the assessment failed
            conn.send(("crashed", task_id, f"{type(exc).__name__}: {exc}"))
        else:
            conn.send(("result", task_id, made))

    await serve_parent(conn, worker.channel, run)


# --- the serving side -----------------------------------------------------------------------------


class WorkerCrashed(RuntimeError):
    """The assessment raised in its worker, or the worker process died."""


class AssessmentPool(WorkerPool):
    """`await pool.assess(domain, total, on_progress)` in the least busy worker process.

    Started on first use (a service that only serves stored reports starts no process); use
    `close()` to stop. Must be used from one event loop, the serving one.
    """

    def __init__(self, config: WorkerConfig, workers: int) -> None:
        super().__init__(config.scan, 0, workers)
        self.web_config = config
        self._progress: dict[int, ProgressCallback] = {}
        self._started = False
        self._starting = asyncio.Lock()

    async def __aenter__(self) -> AssessmentPool:
        for _ in range(self.size):
            await self._spawn()
        self._started = True
        return self

    async def _spawn(self) -> _Worker:
        # spawn, not fork: this process has an event loop, a database pool and open sockets.
        context = multiprocessing.get_context("spawn")
        parent_end, child_end = context.Pipe(duplex=True)
        process = context.Process(target=worker_main, args=(self.web_config, child_end), daemon=True)
        await asyncio.to_thread(process.start)
        child_end.close()
        worker = _Worker(process, parent_end)
        self._workers.append(worker)
        asyncio.get_running_loop().add_reader(parent_end.fileno(), self._readable, worker)
        return worker

    async def start(self) -> None:
        async with self._starting:
            if not self._started:
                await self.__aenter__()

    async def close(self) -> None:
        if self._started:
            self._started = False
            await self.__aexit__(None, None, None)

    @property
    def alive(self) -> int:
        return sum(w.alive for w in self._workers)

    async def assess(self, domain: str, total: int, on_progress: ProgressCallback) -> Made:
        """The document, body and file of `domain`'s assessment, or its refusal; raises WorkerCrashed."""
        await self.start()
        live = [w for w in self._workers if w.alive]
        if not live:
            raise WorkerCrashed("every assessment worker process has died")
        worker = min(live, key=lambda w: len(w.pending))
        task_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        worker.pending[task_id] = (Target(0, domain, domain), future)
        self._progress[task_id] = on_progress
        try:
            worker.conn.send(("assess", task_id, (domain, total)))
        except OSError:  # it died before this process heard of it
            self._lost(worker)
        try:
            answer = await future
        except asyncio.CancelledError:  # the service stops: so does the assessment in the worker
            with contextlib.suppress(OSError):
                worker.conn.send(("cancel", task_id))
            raise
        finally:
            worker.pending.pop(task_id, None)
            self._progress.pop(task_id, None)
        if isinstance(answer, WorkerCrashed):
            raise answer
        made: Made = answer
        return made

    def _handle(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "progress":
            callback = self._progress.get(message[1])
            if callback is not None:
                callback(message[2])
        elif kind == "crashed":
            pending = worker.pending.get(message[1])
            if pending is not None and not pending[1].done():
                _crashed(pending[1], message[2])
        else:
            super()._handle(worker, message)

    def _publish(self, worker: _Worker, key: CacheKey, data: bytes) -> None:
        super()._publish(worker, key, data)
        ttl = self.web_config.observation_ttl_s
        if ttl <= 0:  # shared with those waiting for it, and no one later
            self._claims.pop(key, None)
        elif (claim := self._claims.get(key)) is not None:
            claim.expires = time.monotonic() + ttl

    def _lost(self, worker: _Worker) -> None:
        for _, future in worker.pending.values():
            if not future.done():
                _crashed(future, "the assessment worker process died")
        was_alive = worker.alive
        super()._lost(worker)
        if self._started and was_alive:  # the service keeps its capacity: a new worker takes its place
            self._workers.remove(worker)
            worker.conn.close()
            worker.process.join(0)  # reaped now if it has exited (a kill), not left a zombie
            task = asyncio.get_running_loop().create_task(self._replace())
            self._grants.add(task)  # kept (and cancelled on close) with the pool's other tasks
            task.add_done_callback(self._grants.discard)

    async def _replace(self) -> None:
        worker = await self._spawn()
        if not self._started:  # the pool was closed while this one started: stop it too
            self._workers.remove(worker)
            self._detach(worker)
            worker.conn.send(("stop",))
            await asyncio.to_thread(worker.process.join, 10)
            worker.conn.close()


def _crashed(future: asyncio.Future[Any], why: str) -> None:
    """Ends an assessment's wait with the crash (the scanner's futures are typed for its records)."""
    future.set_result(WorkerCrashed(why))
