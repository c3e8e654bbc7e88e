"""Scan records: JSONL lines validate against the committed record schema; CSV rows; progress lines."""

from __future__ import annotations

import io
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource

from mecsa.scan.engine import Counters
from mecsa.scan.inputs import Target
from mecsa.scan.progress import ProgressDisplay, describe, describe_end
from mecsa.scan.records import error_record
from mecsa.store import open_store
from tests.conftest import ServeZones
from tests.unit.scan.scanning import ORIGIN, TLD, config, run, write_list, zone


def _load(package: str, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((files(package) / name).read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    assessment = _load("mecsa.report", "assessment.schema.json")
    record = _load("mecsa.scan", "record.schema.json")
    registry: Registry[Any] = Registry().with_resource(assessment["$id"], Resource.from_contents(assessment))
    jsonschema.Draft202012Validator.check_schema(record)
    return jsonschema.Draft202012Validator(record, registry=registry)


async def test_every_record_of_a_scan_validates(
    serve_zones: ServeZones, tmp_path: Path, validator: jsonschema.Draft202012Validator
) -> None:
    client = await serve_zones({**TLD, ORIGIN: zone(["alpha", "bad1"])})
    listing = write_list(tmp_path, [f"alpha.{ORIGIN}", f"bad1.{ORIGIN}", "no such thing"])
    with open_store(tmp_path / "s.sqlite") as store:
        _, records = await run(store, listing, config(client))
    assert len(records) == 3
    for record in records:
        validator.validate(record)


def test_the_schema_rejects_half_records(validator: jsonschema.Draft202012Validator) -> None:
    good = error_record(Target(3, "x y", None, "bad"), "bad", 7)
    validator.validate(good)
    for broken in (
        {**good, "scan_id": 0},
        {k: v for k, v in good.items() if k != "reason"},
        {**good, "extra": 1},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(broken)


def test_progress_lines_say_what_is_done_how_fast_and_when_it_ends() -> None:
    counters = Counters(total=100, done=30, errors=2, skipped=10, in_flight=5)
    counters.started -= 60.0  # one minute ago
    line = describe(counters)
    assert line.startswith("scan: 30/100 done, 30/min, 2 errors, 10 skipped, 5 in flight, ETA 2m00s")
    counters.observations = {"asks": 40, "probes": 10}
    assert "10 probed for 40 asked (75% shared)" in describe_end(4, "finished", counters)


async def test_the_bar_on_a_terminal_and_nothing_when_quiet() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert ProgressDisplay.choose(quiet=False, stream=Terminal()) == "bar"
    assert ProgressDisplay.choose(quiet=False, stream=io.StringIO()) == "lines"
    assert ProgressDisplay.choose(quiet=True, stream=Terminal()) == "off"
    screen = Terminal()
    display = ProgressDisplay(Counters(total=4, done=3, errors=1), "bar", stream=screen)
    display.start()
    await display.stop()
    shown = screen.getvalue()
    assert "3/4" in shown and "1 errors" in shown
