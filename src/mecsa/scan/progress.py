"""Progress on stderr: a rich bar on a terminal, a plain line every N seconds otherwise, or nothing."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import Any, TextIO

from mecsa.scan.engine import Counters


def describe(counters: Counters) -> str:
    """One plain line: what is done, how fast, what failed, and the ETA when the total is known."""
    c = counters
    total = f"/{c.total}" if c.total is not None else ""
    eta = c.eta_s
    parts = [
        f"{c.done}{total} done",
        f"{c.per_minute:.0f}/min",
        f"{c.errors} errors",
        f"{c.skipped} skipped",
        f"{c.in_flight} in flight",
    ]
    if eta is not None:
        parts.append(f"ETA {_duration(eta)}")
    return "scan: " + ", ".join(parts)


def describe_end(scan_id: int, state: str, counters: Counters) -> str:
    """The closing line: totals, rate, and how much the shared observations saved."""
    c = counters
    elapsed = time.monotonic() - c.started
    line = (
        f"scan {scan_id} {state}: {c.done} done ({c.errors} errors), {c.skipped} skipped, "
        f"{elapsed:.1f} s, {c.per_minute:.0f} domains/min"
    )
    asks, probes = c.observations.get("asks", 0), c.observations.get("probes", 0)
    if asks:
        shared = 100 * (asks - probes) / asks
        line += f"; transport observations: {probes} probed for {asks} asked ({shared:.0f}% shared)"
    return line


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class ProgressDisplay:
    """Runs beside the scan; `mode` is `bar`, `lines` or `off`."""

    def __init__(
        self, counters: Counters, mode: str, *, every: float = 10.0, stream: TextIO | None = None
    ) -> None:
        self.counters = counters
        self.mode = mode
        self.every = every
        self.stream = stream or sys.stderr
        self._task: asyncio.Task[None] | None = None
        self._bar: Any = None
        self._bar_task: Any = None

    @staticmethod
    def choose(quiet: bool, stream: TextIO | None = None) -> str:
        out = stream or sys.stderr
        if quiet:
            return "off"
        return "bar" if out.isatty() else "lines"

    def start(self) -> None:
        if self.mode == "off":
            return
        if self.mode == "bar":
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("scan"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:.0f}/min"),
                TextColumn("{task.fields[errors]} errors"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                auto_refresh=False,
                transient=False,
            )
            self._bar.start()
            self._bar_task = self._bar.add_task("scan", total=self.counters.total, rate=0.0, errors=0)
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        interval = 0.5 if self.mode == "bar" else self.every
        while True:
            await asyncio.sleep(interval)
            self.show()

    def show(self) -> None:
        c = self.counters
        if self.mode == "bar" and self._bar is not None:
            self._bar.update(
                self._bar_task,
                completed=c.done + c.skipped,
                total=c.total,
                rate=c.per_minute,
                errors=c.errors,
            )
            self._bar.refresh()
        elif self.mode == "lines":
            self.stream.write(describe(c) + "\n")
            self.stream.flush()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.mode != "off":
            self.show()
        if self._bar is not None:
            self._bar.stop()
