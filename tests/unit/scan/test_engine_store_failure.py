"""A store that fails mid-scan ends the scan with the error, never a scan `finished` with records missing.

Found by the distributed kill test: a write that raised inside a domain's task was never seen, the
records of that batch were dropped, and the scan (or a chunk of a celery scan) ended as if complete.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from mecsa.scan.engine import Counters, ResultSink, run_scan
from mecsa.scan.inputs import Target, target
from mecsa.scan.output import make_writer
from mecsa.scan.records import error_record
from mecsa.store import open_store


def test_a_failing_store_write_ends_the_scan_with_its_error(tmp_path: Path) -> None:
    with open_store(tmp_path / "s.sqlite") as store:
        scan_id = store.create_scan(options={}, profile="mecsa", mecsa_version="test")

        async def assess_one(entry: Target) -> dict[str, Any]:
            if entry.line == 4:  # the store breaks under the scan (a real failure: no such table)
                with store.engine.begin() as conn:
                    conn.execute(text("ALTER TABLE assessments RENAME TO gone"))
            await asyncio.sleep(0)
            return error_record(entry, "assessed", scan_id)

        sink = ResultSink(store, scan_id, make_writer("jsonl", io.StringIO()), Counters(), batch=1)
        targets = [target(i, f"d{i}.test") for i in range(1, 11)]
        with pytest.raises(OperationalError, match="no such table"):
            asyncio.run(
                run_scan(targets, assess_one, sink, scan_id=scan_id, concurrency=1, resume=False,
                         stop=asyncio.Event())
            )  # fmt: skip
        assert sink.counters.done == 3
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM gone")).scalar_one() == 3
