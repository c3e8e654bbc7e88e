"""Run one scan end to end: open the list and the store, pick or resume the scan, run the loop with
its progress display, and close everything cleanly (also on Ctrl-C, which ends in `interrupted`)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from mecsa.scan.assessor import Assessor, ScanConfig
from mecsa.scan.engine import AssessOne, Counters, ResultSink, ScanOutcome, run_scan
from mecsa.scan.inputs import read_targets
from mecsa.scan.output import make_writer
from mecsa.scan.progress import ProgressDisplay
from mecsa.store import Store


@dataclass(frozen=True, slots=True)
class ScanRequest:
    """One `mecsa scan` invocation, checked by the CLI."""

    source: str  # a file path, or "-" for stdin
    config: ScanConfig
    output: Path | None = None  # None: stdout
    output_format: str = "jsonl"
    workers: int = 1
    resume: bool = False
    resume_scan_id: int | None = None
    progress: str = "off"  # bar | lines | off
    progress_every: float = 10.0


@dataclass(frozen=True, slots=True)
class ScanRun:
    scan_id: int
    outcome: ScanOutcome


def count_entries(path: Path) -> int:
    """Entries of a list file, for the ETA: one pass, nothing kept."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as stream:
        return sum(1 for _ in read_targets(stream))


@contextlib.contextmanager
def open_lines(source: str, stdin: TextIO) -> Iterator[Iterable[str]]:
    if source == "-":
        yield stdin
        return
    with Path(source).open(encoding="utf-8-sig", errors="replace", newline="") as stream:
        yield stream


def pick_scan(store: Store, request: ScanRequest, extra: Mapping[str, Any] | None = None) -> tuple[int, bool]:
    """The scan to run: (id, resumed). --resume takes the given scan, else the newest of the same input.

    `extra` joins the options recorded with a new scan (the distributed engine notes itself there)."""
    from mecsa import __version__

    if request.resume:
        if request.resume_scan_id is not None:
            scan = store.get_scan(request.resume_scan_id)
            if scan is None:
                raise LookupError(f"the store has no scan {request.resume_scan_id}")
            return scan.id, True
        latest = store.latest_scan_of(request.source)
        if latest is not None:
            return latest.id, True
    scan_id = store.create_scan(
        options={
            **request.config.to_json(),
            "workers": request.workers,
            "format": request.output_format,
            **(extra or {}),
        },
        profile=request.config.profile,
        mecsa_version=__version__,
        input_name=request.source,
    )
    return scan_id, False


async def scan(request: ScanRequest, store: Store, stdout: TextIO, stdin: TextIO) -> ScanRun:
    """Run (or resume) the scan of `request.source` into `store` and the output."""
    scan_id, resumed = pick_scan(store, request)
    if resumed:
        store.set_scan_state(scan_id, "running")
    counters = Counters(total=None if request.source == "-" else count_entries(Path(request.source)))
    append = resumed and request.output is not None and request.output.exists()
    with contextlib.ExitStack() as stack:
        if request.output is None:
            out = stdout
        else:
            out = stack.enter_context(
                request.output.open("a" if append else "w", encoding="utf-8", newline="")
            )
        header = not (append and request.output is not None and request.output.stat().st_size > 0)
        writer = make_writer(request.output_format, out, header=header)
        sink = ResultSink(store, scan_id, writer, counters)
        display = ProgressDisplay(counters, request.progress, every=request.progress_every)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        state = "failed"
        try:
            lines = stack.enter_context(open_lines(request.source, stdin))
            targets = read_targets(lines)
            display.start()
            async with assessor_for(request, scan_id) as assess_one:
                outcome = await run_scan(
                    targets,
                    assess_one,
                    sink,
                    scan_id=scan_id,
                    concurrency=request.config.concurrency,
                    resume=resumed,
                    stop=stop,
                )
            # after the pool has closed: its workers report their caches' counters as they stop
            stats = getattr(assess_one, "cache_stats", None)
            if stats is not None:
                counters.observations = stats()
            state = "interrupted" if outcome.interrupted else "finished"
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await display.stop()
            store.finish_scan(scan_id, state)
    return ScanRun(scan_id, outcome)


@contextlib.asynccontextmanager
async def assessor_for(request: ScanRequest, scan_id: int) -> AsyncIterator[AssessOne]:
    """In this process for one worker; a pool of worker processes otherwise (see `workers.py`)."""
    if request.workers <= 1:
        yield Assessor(request.config, scan_id)
        return
    from mecsa.scan.workers import WorkerPool

    async with WorkerPool(request.config, scan_id, request.workers) as pool:
        yield pool
