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


# `mecsa assess` as the command runs it, in one process that reports at its end which HTTP
# modules it imported (the command itself ends with os._exit, which leaves no chance to ask).
_CLI_REPORTING_IMPORTS = """
import json, sys
from mecsa.cli import app
try:
    app.main(sys.argv[1:], prog_name="mecsa", standalone_mode=False)
finally:
    imported = sorted(m for m in sys.modules if m.split(".")[0] in ("httpx", "httpcore", "anyio", "h11"))
    sys.stderr.write("IMPORTED " + json.dumps(imported) + "\\n")
"""


def test_the_cli_leaves_the_policy_fetch_to_its_helper(full_lab: Path) -> None:
    # The cold CLI's MTA-STS requests are made by its helper process (mecsa.probes.https_helper):
    # the policy arrives, and the main process never imported httpx. Had the helper failed, the
    # request would have been made here (the same document), and httpx imported to make it.
    from mecsa.cli.lab import assess_argv
    from mecsa.lab.plan import CLIENT_NODE
    from mecsa.lab.runner import load_state, run_in

    state = load_state(full_lab)
    argv = assess_argv(state.data, "top.test", ["--json", "--only", "mta-sts"])
    assert argv[1:3] == ["-m", "mecsa"]
    # Started whatever the load (the suite keeps both cores busy, when `auto` would not start it).
    command = ["env", "MECSA_HTTPS_HELPER=1", argv[0], "-c", _CLI_REPORTING_IMPORTS, *argv[3:]]
    done = run_in(state, CLIENT_NODE, command, capture=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    fetch = report["checks"]["mta-sts"]["fetch"]
    assert fetch["status"] == 200 and fetch["error"] is None, fetch
    assert report["protocols"]["mta-sts"]["status"] == "pass"
    (marker,) = [line for line in done.stderr.splitlines() if line.startswith("IMPORTED ")]
    assert json.loads(marker.removeprefix("IMPORTED ")) == []


def _dkim_answers(full_lab: Path, domain: str, mode: str) -> dict[str, object]:
    from mecsa.cli.lab import assess_argv
    from mecsa.lab.plan import CLIENT_NODE
    from mecsa.lab.runner import load_state, run_in

    state = load_state(full_lab)
    argv = assess_argv(
        state.data, domain, ["--json", "--only", "dkim", "--dnssec-mode", mode, "--timeout", "5"]
    )
    done = run_in(state, CLIENT_NODE, argv, capture=True, timeout=120)
    assert done.returncode == 0, done.stderr
    dkim: dict[str, object] = json.loads(done.stdout)["checks"]["dkim"]
    return dkim


def test_own_validation_gives_the_resolvers_rcodes_for_the_dkim_names(full_lab: Path) -> None:
    # 29 selectors (NXDOMAIN but one) and `_domainkey.top.test`, an empty non-terminal that only
    # an NSEC ending below it proves to exist: a validator without that rule said SERVFAIL here.
    trusted = _dkim_answers(full_lab, "top.test", "resolver")
    assert trusted["domainkey_rcode"] == "NOERROR"
    for mode in ("own", "both"):
        assert _dkim_answers(full_lab, "top.test", mode) == trusted, mode
