"""Issue 18's lab scenarios without root: their TLD records, per-profile expectations, and the
dmarc check's verdicts on the same DNS served by the in-process zone server."""

from __future__ import annotations

import pytest

from mecsa.checks import dmarc
from mecsa.dns.resolver import Resolver
from mecsa.lab.scenario import SHIPPED_DIR, ScenarioError, load_scenario, parse_scenario
from mecsa.lab.zones import tld_zone
from mecsa.model import VerdictStatus
from mecsa.observe import AssessOptions, Context
from mecsa.observe.dmarc import DiscoveryMethod
from tests.conftest import ServeZones

HEAD = "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\nns IN A 127.0.0.53\n"
NAMES = ("dmarc-psd-walk-only", "dmarc-walk-psl-disagree")
# `mecsa assess --profile P` runs P's DMARC discovery first
METHOD = {"mecsa": DiscoveryMethod.TREEWALK, "mecsa-st": DiscoveryMethod.PSL}


def test_tld_records_fill_in_tld_and_domain_and_reach_the_tld_zone() -> None:
    scenario = load_scenario(SHIPPED_DIR / "dmarc-psd-walk-only.toml")
    assert scenario.tld == "psdwalk"
    (line,) = (scenario.text(r) for r in scenario.tld_records)
    assert line.startswith('_dmarc.psdwalk. 3600 IN TXT "v=DMARC1; p=reject;')
    assert "psd=y" in line and "dmarc_reports@walkonly.psdwalk" in line
    zone = tld_zone("psdwalk", ["walkonly.psdwalk"], {}, [line])
    assert line in zone.splitlines() and "walkonly.psdwalk. NS" in zone


def test_fail_by_profile_defaults_to_fail_and_checks_protocol_names() -> None:
    plain = parse_scenario({"domain": "x.test", "expect": {"fail": ["dane"]}})
    assert plain.expect.fail_under("mecsa-st") == frozenset({"dane"})
    split = parse_scenario({"domain": "x.test", "expect": {"fail_by_profile": {"mecsa-st": ["dmarc"]}}})
    assert (
        split.expect.fail_under("mecsa-st") == frozenset({"dmarc"})
        and split.expect.fail_under("mecsa") == set()
    )
    with pytest.raises(ScenarioError, match=r"expect\.fail_by_profile\.mecsa-st: unknown protocols"):
        parse_scenario({"domain": "x.test", "expect": {"fail_by_profile": {"mecsa-st": ["dmark"]}}})


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("profile", ["mecsa", "mecsa-st"])
async def test_the_check_agrees_with_the_scenario(serve_zones: ServeZones, name: str, profile: str) -> None:
    scenario = load_scenario(SHIPPED_DIR / f"{name}.toml")
    assert scenario.dmarc == ()  # the domain's own zone has no _dmarc record
    tld_lines = "".join(scenario.text(r) + "\n" for r in scenario.tld_records)
    zones = {f"{scenario.tld}.": HEAD + tld_lines, f"{scenario.domain}.": HEAD}
    resolver = Resolver(await serve_zones(zones))
    options = AssessOptions(dmarc_discovery=METHOD[profile])
    result = dmarc.evaluate(await dmarc.observe(Context(scenario.domain, resolver, options)))
    failing = {v.protocol for v in result.verdicts if v.status is VerdictStatus.FAIL}
    assert failing == scenario.expect.fail_under(profile) & {"dmarc", "dmarc_policy"}
    assert set(scenario.expect.findings) <= {f.id for f in result.findings}
