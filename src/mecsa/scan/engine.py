"""The scan loop: stream targets, skip what the store holds (--resume), assess a bounded number at
once, and hand each finished record to the sink (store first, then the output).

Memory stays flat in the length of the list: the input is read lazily in chunks, at most
`concurrency` domains are in flight, and nothing of a domain is kept after its record is written.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mecsa.scan.inputs import Target, chunked
from mecsa.scan.output import RecordWriter
from mecsa.scan.records import error_record, is_error_record, to_new_result
from mecsa.store import Store

# Targets read (and checked against the store) at a time; the in-flight bound is `concurrency`.
CHUNK = 256
AssessOne = Callable[[Target], Awaitable[dict[str, Any]]]


@dataclass
class Counters:
    """What the progress display shows."""

    total: int | None = None  # entries in the list, when it could be counted up front
    done: int = 0
    errors: int = 0
    skipped: int = 0  # already in the store (--resume), or a duplicate of an earlier line
    in_flight: int = 0
    started: float = field(default_factory=time.monotonic)
    observations: dict[str, int] = field(default_factory=dict)  # {"asks": N, "probes": M}, at the end

    @property
    def per_minute(self) -> float:
        elapsed = time.monotonic() - self.started
        return 60.0 * self.done / elapsed if elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        if self.total is None or self.done == 0:
            return None
        left = self.total - self.done - self.skipped
        return max(0.0, left) * 60.0 / self.per_minute if self.per_minute else None


class ResultSink:
    """Stores finished records in batches, then writes them out: the output never holds a record the
    store lacks, so a `--resume` never repeats a line. (After a hard crash between the two, the
    store has the last batch and the output does not; `mecsa scan report` reads the store.)"""

    def __init__(
        self,
        store: Store,
        scan_id: int,
        output: RecordWriter,
        counters: Counters,
        *,
        batch: int = 100,
        interval: float = 1.0,
    ) -> None:
        self.store = store
        self.scan_id = scan_id
        self.output = output
        self.counters = counters
        self.batch = batch
        self.interval = interval
        self._pending: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()

    def put(self, record: dict[str, Any]) -> None:
        self._pending.append(record)
        if len(self._pending) >= self.batch or time.monotonic() - self._last_flush >= self.interval:
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        self._last_flush = time.monotonic()
        if not pending:
            return
        ids = self.store.add_results(self.scan_id, [to_new_result(r) for r in pending])
        for record, stored_id in zip(pending, ids, strict=True):
            if stored_id is None:  # the scan already had this domain: a repeated line
                self.counters.skipped += 1
                continue
            self.counters.done += 1
            self.counters.errors += is_error_record(record)
            self.output.write(record)
        self.output.flush()


@dataclass(frozen=True, slots=True)
class ScanOutcome:
    interrupted: bool
    counters: Counters


async def run_scan(
    targets: Iterable[Target],
    assess_one: AssessOne,
    sink: ResultSink,
    *,
    scan_id: int,
    concurrency: int,
    resume: bool,
    stop: asyncio.Event,
    tick: Callable[[], None] = lambda: None,
) -> ScanOutcome:
    """Assess every target not yet done; on `stop` (Ctrl-C) cancel what is in flight and keep what is done.

    A record the sink fails to store ends the scan with that error (raised after what is in flight
    is cancelled): the scan must never go on, or end `finished`, as though the record were kept.
    """
    counters = sink.counters
    slots = asyncio.Semaphore(concurrency)
    running: set[asyncio.Task[None]] = set()
    failures: list[Exception] = []
    halt = asyncio.Event()  # the sink failed

    async def one(entry: Target) -> None:
        try:
            if entry.domain is None:
                record = error_record(entry, entry.error or "not a domain", scan_id)
            else:
                try:
                    record = await assess_one(entry)
                except Exception as exc:  # never let one domain end the scan
                    record = error_record(entry, f"internal error: {type(exc).__name__}: {exc}", scan_id)
            try:
                sink.put(record)
            except Exception as exc:  # the store failed: this task's exception would go unseen
                failures.append(exc)
                halt.set()
        finally:
            counters.in_flight -= 1
            slots.release()
            tick()

    stopper = asyncio.ensure_future(_first(stop, halt))
    try:
        for chunk in chunked(targets, CHUNK):
            if stopper.done():
                break
            done = sink.store.done_domains(scan_id, [t.key for t in chunk]) if resume else set()
            for entry in chunk:
                if entry.key in done:
                    counters.skipped += 1
                    continue
                acquired = asyncio.ensure_future(slots.acquire())
                await asyncio.wait({acquired, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if not acquired.done():
                    acquired.cancel()
                    break
                counters.in_flight += 1
                task = asyncio.ensure_future(one(entry))
                running.add(task)
                task.add_done_callback(running.discard)
            else:
                continue
            break
        while running and not stopper.done():
            await asyncio.wait({*running, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        interrupted = stop.is_set()
        for task in list(running):
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        stopper.cancel()
        if not failures:
            sink.flush()
    if failures:
        raise failures[0]
    return ScanOutcome(interrupted, counters)


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
