"""Every shipped scenario in one `mecsa scan` inside the lab: each gets exactly its expected result.

The same expectations as test_scenarios.py (the `[expect]` table of each scenario file), checked on
the scan's JSONL records and on what the store holds. One scan runs one profile, and verdicts can
depend on it (`fail_by_profile`), so there is one scan of every scenario per profile.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mecsa.lab.scenario import Scenario, load_scenario, shipped_scenarios
from tests.lab.test_scenarios import PROFILES, _expected_level

pytestmark = pytest.mark.lab
SCENARIOS = [load_scenario(p) for p in shipped_scenarios()]


@pytest.mark.parametrize("profile", PROFILES)
def test_one_scan_of_every_scenario_gets_each_expected_result(
    full_lab: Path, tmp_path: Path, profile: str
) -> None:
    from mecsa.lab.plan import CLIENT_NODE
    from mecsa.lab.runner import load_state, run_in
    from mecsa.store import open_store

    state = load_state(full_lab)
    listing = tmp_path / "scenarios.txt"
    listing.write_text(
        "# every shipped scenario\n" + "".join(f"{s.domain}\n" for s in SCENARIOS) + "not a domain\n"
    )
    out, store_path = tmp_path / "out.jsonl", tmp_path / "store.sqlite"
    argv = [
        sys.executable, "-m", "mecsa", "scan", str(listing), "--profile", profile,
        "--out", str(out), "--store", str(store_path), "--quiet", "--workers", "2",
        "--resolver", str(state.data.get("resolver", "10.53.0.3")), "--ca-file", str(state.data["ca_file"]),
        "--dkim-selector", "lab", "--timeout", "5",
    ]  # fmt: skip
    done = run_in(state, CLIENT_NODE, argv, capture=True, timeout=300)
    assert done.returncode == 0, done.stderr
    records = {r["domain"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(records) == {s.domain for s in SCENARIOS} | {"not a domain"}
    assert records["not a domain"]["status"] == "error"
    problems = [p for s in SCENARIOS for p in _mismatches(s, records[s.domain], profile)]
    assert problems == []
    # the store holds the same documents, and its indexed levels agree
    with open_store(store_path) as store:
        [scan] = store.list_scans()
        assert (scan.state, scan.domains_done, scan.errors) == ("finished", len(SCENARIOS) + 1, 1)
        for stored in store.scan_assessments(scan.id):
            assert stored.document() == records[stored.domain]
            if not stored.is_error:
                assert dict(stored.levels) == records[stored.domain]["scores"]


def _mismatches(scenario: Scenario, record: dict[str, object], profile: str) -> list[str]:
    from mecsa.model import SCORED_PROTOCOLS

    name = scenario.name
    protocols = record["protocols"]
    assert isinstance(protocols, dict)
    status = {p: protocols[p]["status"] for p in SCORED_PROTOCOLS}
    findings = record["findings"]
    assert isinstance(findings, list)
    problems = []
    must_fail = scenario.expect.fail_under(profile)
    failing = {p for p, s in status.items() if s == "fail"}
    erring = {p for p, s in status.items() if s == "error"}
    if failing != must_fail:
        problems.append(f"{name}: fail {sorted(failing)} != {sorted(must_fail)}")
    if erring != scenario.expect.error:
        errors = [f"{f['id']}: {f['message']}" for f in findings if f["status"] == "error"]
        problems.append(f"{name}: error {sorted(erring)} != {sorted(scenario.expect.error)} ({errors})")
    passing = set(SCORED_PROTOCOLS) - must_fail - scenario.expect.error
    if {p for p, s in status.items() if s == "pass"} != passing:
        problems.append(f"{name}: pass {status}")
    reported = {f["id"] for f in findings if f["status"] in ("fail", "warn", "error")}
    if not set(scenario.expect.findings) <= reported:
        problems.append(f"{name}: findings {sorted(set(scenario.expect.findings) - reported)} missing")
    wanted = {a: _expected_level(profile, a, lv) for a, lv in scenario.expect.levels[profile].items()}
    if record["scores"] != wanted:
        problems.append(f"{name}: {profile} levels {record['scores']} != {wanted}")
    return problems
