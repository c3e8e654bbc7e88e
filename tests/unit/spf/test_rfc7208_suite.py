"""The RFC 7208 test suite (openspf.org, release 2014.04): every case through the real evaluator.

DNS is answered from each scenario's own zone data (see `fakedns`). Where the suite lists several
results, any one of them counts; where it names an explanation, it must be produced, and
"DEFAULT" means no exp= text applies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mecsa.spf.evaluator import check_sender
from tests.unit.spf.fakedns import FakeDns

SUITE = Path(__file__).parents[2] / "data" / "spf" / "rfc7208-tests.yml"
EXPECTED_CASES = 203


def _cases() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    cases = []
    with SUITE.open(encoding="utf-8") as stream:
        for scenario in yaml.safe_load_all(stream):
            for name, test in scenario["tests"].items():
                cases.append((f"{scenario['description']}/{name}", test, scenario["zonedata"]))
    return cases


CASES = _cases()


def test_suite_has_203_cases() -> None:
    assert len(CASES) == EXPECTED_CASES


async def _run(case: str, test: dict[str, Any], zonedata: dict[str, Any]) -> str | None:
    """Run one case; return why it failed, or None when it passed."""
    dns = FakeDns(zonedata)
    outcome = await check_sender(test["host"], test["mailfrom"], test["helo"], resolver=dns)
    expected = test["result"] if isinstance(test["result"], list) else [test["result"]]
    if outcome.result.value not in expected:
        return f"{case}: got {outcome.result.value} ({outcome.reason}), expected {expected}"
    if "explanation" in test and outcome.result.value == "fail":
        wanted = None if test["explanation"] == "DEFAULT" else str(test["explanation"])
        # The suite keeps the host's input case in %{i} nibbles (CAFE:BABE -> E.B.A.B.E.F.A.C) while
        # RFC 7208 §7.4 shows lower case; DNS names compare without case, so compare that way.
        got = outcome.explanation
        if (got.lower() if got else got) != (wanted.lower() if wanted else wanted):
            return f"{case}: explanation {got!r}, expected {wanted!r}"
    return None


@pytest.mark.parametrize(("case", "test", "zonedata"), CASES, ids=[c[0] for c in CASES])
async def test_rfc7208_case(case: str, test: dict[str, Any], zonedata: dict[str, Any]) -> None:
    assert await _run(case, test, zonedata) is None


async def test_all_203_cases_executed_and_passed() -> None:
    """The whole suite in one run, independent of test selection and order."""
    failures = [why for c in CASES if (why := await _run(*c)) is not None]
    assert (len(CASES), failures) == (EXPECTED_CASES, [])
