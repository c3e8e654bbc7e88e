"""The scenario format: shipped files parse, mistakes are named. No root needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from mecsa.lab.scenario import ScenarioError, load_scenario, parse_scenario, shipped_scenarios
from mecsa.lab.zones import tamper_signatures


def test_shipped_scenarios_parse_and_use_distinct_domains() -> None:
    scenarios = [load_scenario(p) for p in shipped_scenarios()]
    assert len(scenarios) >= 20
    assert len({s.domain for s in scenarios}) == len(scenarios)
    top = next(s for s in scenarios if s.name == "top-score")
    assert top.dnssec == "signed" and top.spf is None and top.expect.fail == frozenset()


def test_defaults_are_the_hardened_setup() -> None:
    sc = parse_scenario({"domain": "Example.TEST"})
    assert sc.domain == "example.test"
    assert [m.name for m in sc.mx] == ["mx1"]
    assert sc.mx[0].starttls and sc.mx[0].tlsa == "match" and sc.mx[0].certificate == "valid"
    assert sc.dkim.bits == 2048 and sc.dkim.hash == "" and sc.mta_sts.mode == "enforce"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "missing key 'domain'"),
        ({"domain": "a.b.test"}, "one label under a TLD"),
        ({"domain": "x.test", "dnsec": "signed"}, "unknown key"),
        ({"domain": "x.test", "dnssec": "maybe"}, "dnssec"),
        ({"domain": "x.test", "mx": [{"certificate": "stolen"}]}, "certificate"),
        ({"domain": "x.test", "mx": [{"tls": ["SSLv3"]}]}, "tls"),
        ({"domain": "x.test", "dkim": {"bits": 512}}, "dkim.bits"),
        ({"domain": "x.test", "expect": {"fail": ["smtp"]}}, "unknown protocols"),
        ({"domain": "x.test", "expect": {"levels": {"mecsa": {"integrity": 11}}}}, "0..10"),
        ({"domain": "x.test", "mx": [{"name": "a"}, {"name": "a"}]}, "repeat"),
    ],
)
def test_mistakes_are_reported_with_their_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(data)


def test_scenario_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('domain = "x.test"\nspf = 3\n')
    with pytest.raises(ScenarioError, match=r"bad\.toml: spf"):
        load_scenario(path)


def test_tamper_breaks_only_the_chosen_signature() -> None:
    signed = (
        'x.test.\t300\tIN\tTXT\t"v=spf1 -all"\n'
        "x.test.\t300\tIN\tRRSIG\tTXT 13 2 300 20300101000000 20200101000000 1 x.test. AAAABBBB\n"
        "x.test.\t300\tIN\tRRSIG\tMX 13 2 300 20300101000000 20200101000000 1 x.test. AAAABBBB\n"
    )
    text, count = tamper_signatures(signed, [("x.test", "TXT")])
    assert count == 1
    lines = text.splitlines()
    assert lines[1].endswith("BAAABBBB") and lines[2].endswith("AAAABBBB")
