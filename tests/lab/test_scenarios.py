"""Each shipped scenario, assessed inside the lab, gets exactly its expected verdicts and levels.

The expectations live in the scenario files (`[expect]`); this test only compares. "best" means
the highest level the profile gives at all (every scored protocol supported).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mecsa.lab.scenario import Scenario, load_scenario, shipped_scenarios

pytestmark = pytest.mark.lab
PROFILES = ("mecsa", "mecsa-st")
SCENARIOS = [load_scenario(p) for p in shipped_scenarios()]


def _assess(directory: Path, domain: str, profile: str) -> dict[str, object]:
    argv = [
        sys.executable,
        "-m",
        "mecsa",
        "lab",
        "assess",
        domain,
        "--dir",
        str(directory),
        "--json",
        "--profile",
        profile,
        # A cold Unbound cache behind 78 freshly started daemons on 2 cores can be slow to answer:
        # wait longer per DNS attempt rather than report a timeout as an error.
        "--timeout",
        "5",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _expected_level(profile: str, area: str, level: int | str) -> int:
    if level != "best":
        return int(level)
    from mecsa.model import SCORED_PROTOCOLS
    from mecsa.scoring.engine import load_profile

    return load_profile(profile).levels(SCORED_PROTOCOLS).as_dict()[area]


def test_every_scenario_states_its_levels_under_both_profiles() -> None:
    names = {s.name for s in SCENARIOS}
    assert "top-score" in names
    for scenario in SCENARIOS:
        assert set(scenario.expect.levels) == set(PROFILES), scenario.name


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario_gets_its_expected_result(full_lab: Path, scenario: Scenario) -> None:
    from mecsa.model import SCORED_PROTOCOLS

    for profile in PROFILES:
        report = _assess(full_lab, scenario.domain, profile)
        protocols = report["protocols"]
        assert isinstance(protocols, dict)
        status = {p: protocols[p]["status"] for p in SCORED_PROTOCOLS}
        failing = {p for p, s in status.items() if s == "fail"}
        erring = {p for p, s in status.items() if s == "error"}
        must_fail = scenario.expect.fail_under(profile)
        assert failing == must_fail, (profile, status, report["findings"])
        findings = report["findings"]
        assert isinstance(findings, list)
        errors = [f"{f['id']}: {f['message']}" for f in findings if f["status"] == "error"]
        assert erring == scenario.expect.error, (status, errors)
        passing = set(SCORED_PROTOCOLS) - must_fail - scenario.expect.error
        assert {p for p, s in status.items() if s == "pass"} == passing, status
        reported = {f["id"] for f in findings if f["status"] in ("fail", "warn", "error")}
        assert set(scenario.expect.findings) <= reported, sorted(reported)
        wanted = {a: _expected_level(profile, a, lv) for a, lv in scenario.expect.levels[profile].items()}
        assert report["scores"] == wanted, (profile, report["scores"])
