"""`mecsa scan` as a library call: records to the output and the store, errors, CSV, resume, interrupt."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
from pathlib import Path

from mecsa.dns.zoneserver import Fault
from mecsa.model import PROTOCOLS
from mecsa.scan.records import CSV_COLUMNS
from mecsa.store import Store, open_store
from tests.conftest import ServeZones
from tests.unit.scan.scanning import ORIGIN, TLD, config, run, write_list, zone

NAMES = ["alpha", "beta", "gamma", "bad1"]


def fqdn(name: str) -> str:
    return f"{name}.{ORIGIN}"


async def test_every_entry_gets_one_record_in_the_output_and_the_store(
    serve_zones: ServeZones, tmp_path: Path
) -> None:
    client = await serve_zones({**TLD, ORIGIN: zone(NAMES)})
    source = write_list(tmp_path, ["# sector list", *(fqdn(n) for n in NAMES), "not a domain", ""])
    with open_store(tmp_path / "s.sqlite") as store:
        result, records = await run(store, source, config(client))
        assert not result.outcome.interrupted
        by_domain = {r["domain"]: r for r in records}
        assert set(by_domain) == {*(fqdn(n) for n in NAMES), "not a domain"}
        assert all(r["scan_id"] == result.scan_id for r in records)
        assert by_domain[fqdn("alpha")]["protocols"]["dmarc"]["status"] == "pass"
        assert by_domain[fqdn("bad1")]["protocols"]["dmarc"]["status"] == "fail"
        error = by_domain["not a domain"]
        assert (error["status"], error["line"]) == ("error", 6)
        assert "invalid label" in error["reason"]
        scan = store.get_scan(result.scan_id)
        assert scan is not None
        assert (scan.state, scan.domains_done, scan.errors) == ("finished", 5, 1)
        assert scan.input_name == source
        assert scan.options["concurrency"] == 10
        stored = {a.domain: a for a in store.scan_assessments(result.scan_id)}
        assert stored[fqdn("beta")].document() == by_domain[fqdn("beta")]
        assert stored["not a domain"].is_error
        assert result.outcome.counters.total == 5


async def test_the_record_is_the_assess_json_document(serve_zones: ServeZones, tmp_path: Path) -> None:
    from mecsa.assess import assess
    from mecsa.report.json import assessment_to_json

    client = await serve_zones({**TLD, ORIGIN: zone(["alpha"])})
    scan_config = config(client)
    with open_store(tmp_path / "s.sqlite") as store:
        _, [record] = await run(store, write_list(tmp_path, [fqdn("alpha")]), scan_config)
    single = assessment_to_json(await assess(fqdn("alpha"), client, scan_config.options))
    for key in ("duration_s", "resolver"):
        record.pop(key)
        single.pop(key)
    assert record.pop("scan_id") == 1
    assert record == single


async def test_csv_output_has_levels_and_one_status_column_per_protocol(
    serve_zones: ServeZones, tmp_path: Path
) -> None:
    client = await serve_zones({**TLD, ORIGIN: zone(["alpha"])})
    out = tmp_path / "out.csv"
    with open_store(tmp_path / "s.sqlite") as store:
        await run(
            store,
            write_list(tmp_path, [fqdn("alpha"), "-bad-"]),
            config(client),
            output=out,
            output_format="csv",
        )
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert all(p in rows[0] for p in PROTOCOLS)
    good, bad = sorted(rows, key=lambda r: r["status"] == "error")
    assert (good["domain"], good["status"], good["dmarc"], good["spf"]) == (
        fqdn("alpha"),
        "ok",
        "pass",
        "pass",
    )
    assert good["phishing"].isdigit()
    assert (bad["domain"], bad["status"]) == ("-bad-", "error")
    assert "invalid label" in bad["reason"]


async def test_a_repeated_line_is_assessed_and_written_once(serve_zones: ServeZones, tmp_path: Path) -> None:
    client = await serve_zones({**TLD, ORIGIN: zone(["alpha"])})
    source = write_list(tmp_path, [fqdn("alpha"), "ALPHA.scan.test.", fqdn("alpha")])
    with open_store(tmp_path / "s.sqlite") as store:
        result, records = await run(store, source, config(client, concurrency=1))
        assert [r["domain"] for r in records] == [fqdn("alpha")]
        assert store.count_results(result.scan_id) == 1
        assert result.outcome.counters.skipped == 2


async def test_ctrl_c_keeps_what_is_done_and_resume_does_the_rest(
    serve_zones: ServeZones, tmp_path: Path
) -> None:
    names = [f"slow{i}" for i in range(12)]
    # Every DMARC question goes unanswered: each domain takes 2 attempts x 0.3 s.
    faults = {f"_dmarc.{fqdn(n)}": Fault.TIMEOUT for n in names}
    client = await serve_zones({**TLD, ORIGIN: zone(names)}, faults=faults)
    source = write_list(tmp_path, [fqdn(n) for n in names])
    out = tmp_path / "out.jsonl"
    scan_config = config(client, concurrency=3)
    with open_store(tmp_path / "s.sqlite") as store:

        async def ctrl_c_once_some_are_written() -> None:
            for _ in range(1200):  # polls the output file, 60 s at most
                if out.exists() and out.stat().st_size:
                    break
                await asyncio.sleep(0.05)
            os.kill(os.getpid(), signal.SIGINT)

        pressing = asyncio.ensure_future(ctrl_c_once_some_are_written())
        first, _ = await run(store, source, scan_config, output=out)
        await pressing
        assert first.outcome.interrupted
        scan = store.get_scan(first.scan_id)
        assert scan is not None and scan.state == "interrupted" and scan.finished_at is not None
        written = [json.loads(line) for line in out.read_text().splitlines()]
        stored = store.count_results(first.scan_id)
        assert 0 < stored < len(names)
        assert len(written) == stored  # the output holds exactly what the store holds

        second, _ = await run(store, source, scan_config, output=out, resume=True)
        assert second.scan_id == first.scan_id
        assert not second.outcome.interrupted
        assert second.outcome.counters.skipped == stored
        assert second.outcome.counters.done == len(names) - stored
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert sorted(r["domain"] for r in lines) == sorted(fqdn(n) for n in names)  # appended, no repeats
        scan = store.get_scan(first.scan_id)
        assert scan is not None and (scan.state, scan.domains_done) == ("finished", len(names))
        assert lines[-1]["protocols"]["dmarc"]["status"] == "error"  # a timeout is error, never "absent"


async def test_resume_picks_the_newest_scan_of_the_same_list(serve_zones: ServeZones, tmp_path: Path) -> None:
    client = await serve_zones({**TLD, ORIGIN: zone(["alpha", "beta"])})
    source = write_list(tmp_path, [fqdn("alpha")])
    with open_store(tmp_path / "s.sqlite") as store:
        first, _ = await run(store, source, config(client))
        other, _ = await run(store, write_list(tmp_path, [fqdn("beta")], "other.txt"), config(client))
        write_list(tmp_path, [fqdn("alpha"), fqdn("beta")])
        again, records = await run(store, source, config(client), resume=True)
        assert again.scan_id == first.scan_id != other.scan_id
        assert [r["domain"] for r in records] == [fqdn("beta")]
        explicit, records = await run(
            store, source, config(client), resume=True, resume_scan_id=other.scan_id
        )
        assert explicit.scan_id == other.scan_id
        assert [r["domain"] for r in records] == [fqdn("alpha")]


async def test_two_worker_processes_give_the_same_records(serve_zones: ServeZones, tmp_path: Path) -> None:
    names = [f"w{i}" for i in range(8)] + ["bad2"]
    client = await serve_zones({**TLD, ORIGIN: zone(names)})
    source = write_list(tmp_path, [*(fqdn(n) for n in names), "x..y"])

    def verdicts(records: list[dict[str, object]]) -> dict[str, object]:
        return {str(r["domain"]): (r.get("protocols"), r.get("scores"), r.get("status")) for r in records}

    with open_store(tmp_path / "s.sqlite") as store:
        _, one = await run(store, source, config(client), workers=1)
        _, two = await run(store, source, config(client), workers=2)
    assert len(two) == len(names) + 1
    assert verdicts(two) == verdicts(one)


def _count(store: Store, scan_id: int) -> int:
    return store.count_results(scan_id)
