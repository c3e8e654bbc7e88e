"""Memory stays flat in the length of the list: no per-domain state is kept once a record is written."""

from __future__ import annotations

import asyncio
import io
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mecsa.scan.engine import Counters, ResultSink, run_scan
from mecsa.scan.inputs import Target, read_targets
from mecsa.scan.output import JsonlWriter
from mecsa.store import open_store
from tests.unit.store.documents import document


class Discard(io.StringIO):
    """An output stream that keeps nothing (records are still serialised)."""

    def write(self, text: str) -> int:
        return len(text)


def endless_list(n: int) -> Iterator[str]:
    for i in range(n):
        yield f"d{i:06d}.test\n" if i % 50 else f"not a domain {i}\n"


async def memory(tmp_path: Path, n: int) -> tuple[int, int]:
    """(bytes still held after the scan, peak bytes during it), as traced by tracemalloc."""

    async def assess_one(entry: Target) -> dict[str, Any]:
        await asyncio.sleep(0)
        assert entry.domain is not None
        return {**document(entry.domain), "scan_id": 1}

    with open_store(tmp_path / f"m{n}.sqlite") as store:
        scan_id = store.create_scan(options={}, profile="mecsa", mecsa_version="0.1.0")
        sink = ResultSink(store, scan_id, JsonlWriter(Discard()), Counters())
        tracemalloc.start()
        before, _ = tracemalloc.get_traced_memory()
        try:
            outcome = await run_scan(
                read_targets(endless_list(n)), assess_one, sink, scan_id=scan_id, concurrency=50,
                resume=True, stop=asyncio.Event(),
            )  # fmt: skip
            after, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert outcome.counters.done == n
        assert store.count_results(scan_id) == n
    return after - before, peak - before


async def test_memory_does_not_grow_with_the_list(tmp_path: Path) -> None:
    await memory(tmp_path, 100)  # warm-up: SQLAlchemy's statement caches, imports
    held_small, peak_small = await memory(tmp_path, 300)
    held_large, peak_large = await memory(tmp_path, 3_000)
    # Ten times the domains go through the same bounded window (50 in flight, 256 read ahead,
    # 100 per store batch): nothing of a finished domain is kept, so neither figure grows.
    # 2,700 more domains keeping even 40 bytes each would hold 100 kB more.
    assert held_large - held_small < 100_000, (held_small, held_large)
    assert peak_large < peak_small * 1.2 + 100_000, (peak_small, peak_large)
