"""The project's own profile: monotonic, 10 only with everything, and the counting rules of both profiles."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import pytest
from click.testing import CliRunner

from mecsa.cli import app
from mecsa.model import SCORED_PROTOCOLS, Assessment, CheckResult, ProtocolVerdict, VerdictStatus
from mecsa.scoring import AREAS, ProfileError, load_profile, profile_names, score_assessment, stars
from mecsa.scoring.engine import parse_profile

N = len(SCORED_PROTOCOLS)


def _subset(mask: int) -> list[str]:
    return [p for i, p in enumerate(SCORED_PROTOCOLS) if mask >> i & 1]


def _levels_by_mask(name: str) -> list[tuple[int, int, int]]:
    profile = load_profile(name)
    return [
        (lv.confidentiality, lv.phishing, lv.integrity)
        for lv in (profile.levels(_subset(m)) for m in range(1 << N))
    ]


def test_mecsa_is_monotonic_over_every_subset_pair() -> None:
    levels = _levels_by_mask("mecsa")
    pairs = 0
    bad = []
    for big in range(1 << N):
        small = big
        while True:  # every submask of `big`: 3^10 pairs in all
            pairs += 1
            if any(s > b for s, b in zip(levels[small], levels[big], strict=True)):
                bad.append((_subset(small), _subset(big)))
            if small == 0:
                break
            small = (small - 1) & big
    assert pairs == 3**N
    assert bad == []


def test_mecsa_st_is_not_monotonic_which_is_why_mecsa_exists() -> None:
    st = load_profile("mecsa-st")
    assert (
        st.levels(["starttls", "dane"]).confidentiality
        > st.levels(["starttls", "dane", "mta-sts"]).confidentiality
    )


def test_mecsa_gives_ten_ten_ten_only_for_the_full_set() -> None:
    levels = _levels_by_mask("mecsa")
    tops = [m for m in range(1 << N) if levels[m] == (10, 10, 10)]
    assert tops == [(1 << N) - 1]


def test_mecsa_area_reaches_ten_only_with_all_its_protocols() -> None:
    profile = load_profile("mecsa")
    for area in AREAS:
        needed = set(profile.areas[area].protocols)
        for mask in range(1 << N):
            subset = set(_subset(mask))
            top = profile.levels(subset).as_dict()[area] == 10
            assert top == (needed <= subset), (area, sorted(subset))


@pytest.mark.parametrize(
    ("protocols", "expected"),
    [
        ([], (0, 0, 0)),
        (["starttls"], (5, 0, 0)),
        (["x509", "dane", "dnssec", "mta-sts"], (0, 1, 2)),  # nothing is encrypted without starttls
        (["starttls", "dane", "mta-sts"], (8, 0, 0)),  # a hole in mecsa-st (0)
        (["spf", "dkim"], (0, 4, 4)),  # a hole in mecsa-st (0)
        (["dkim"], (0, 2, 4)),  # a hole in mecsa-st (integrity 0)
        (["spf_policy", "dmarc_policy"], (0, 0, 0)),  # policies need their records
        (["dkim", "dmarc", "dmarc_policy", "dnssec"], (0, 7, 10)),
    ],
)
def test_mecsa_levels(protocols: list[str], expected: tuple[int, int, int]) -> None:
    lv = load_profile("mecsa").levels(protocols)
    assert (lv.confidentiality, lv.phishing, lv.integrity) == expected


def test_stars_are_half_the_level() -> None:
    assert [stars(x) for x in (0, 5, 7, 10)] == [0.0, 2.5, 3.5, 5.0]


def _mecsa_data() -> dict[str, Any]:
    text = resources.files("mecsa.scoring").joinpath("profiles", "mecsa.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def test_loader_rejects_negative_points() -> None:
    data = copy.deepcopy(_mecsa_data())
    data["areas"]["integrity"]["terms"].append({"points": -1, "all_of": ["dnssec"]})
    with pytest.raises(ProfileError, match="monoton"):
        parse_profile(data)


def test_loader_rejects_ten_without_every_protocol() -> None:
    data = copy.deepcopy(_mecsa_data())
    data["areas"]["integrity"]["terms"][0]["points"] = 9  # dkim alone would give 10 with dmarc
    with pytest.raises(ProfileError, match="10 without"):
        parse_profile(data)


def test_loader_rejects_unknown_protocols_and_profiles() -> None:
    data = copy.deepcopy(_mecsa_data())
    data["areas"]["integrity"]["terms"][0]["all_of"] = ["arc"]
    with pytest.raises(ProfileError, match="unknown protocols"):
        parse_profile(data)
    with pytest.raises(ProfileError, match="unknown scoring profile"):
        load_profile("nope")
    assert profile_names() == ("mecsa", "mecsa-st")


def _assessment(*verdicts: ProtocolVerdict) -> Assessment:
    return Assessment("example.test", "0", (CheckResult("t", (), verdicts),))


P, F, E, NA = VerdictStatus.PASS, VerdictStatus.FAIL, VerdictStatus.ERROR, VerdictStatus.NOT_APPLICABLE


def test_mecsa_st_counts_per_mx_protocols_at_eighty_percent() -> None:
    a = _assessment(
        ProtocolVerdict("starttls", F, "4 of 5", share=0.8),
        ProtocolVerdict("x509", F, "3 of 4", share=0.75),
    )
    assert score_assessment(a, "mecsa-st").supported == {"starttls"}
    assert score_assessment(a, "mecsa-st").levels.confidentiality == 5
    # the own profile trusts the verdict's status
    assert score_assessment(a, "mecsa").supported == frozenset()


def test_x509_needs_starttls_in_the_supported_set() -> None:
    a = _assessment(
        ProtocolVerdict("starttls", F, "no", share=0.5), ProtocolVerdict("x509", P, "ok", share=1.0)
    )
    for name in ("mecsa", "mecsa-st"):
        assert score_assessment(a, name).supported == frozenset()


def test_mta_sts_mecsa_st_uses_its_detail_and_mecsa_the_status() -> None:
    testing_mode = ProtocolVerdict("mta-sts", F, "mode testing", details={"mecsa_st_pass": True})
    assert "mta-sts" in score_assessment(_assessment(testing_mode), "mecsa-st").supported
    assert "mta-sts" not in score_assessment(_assessment(testing_mode), "mecsa").supported
    enforce_but_st_fails = ProtocolVerdict("mta-sts", P, "enforce", details={"mecsa_st_pass": False})
    assert "mta-sts" not in score_assessment(_assessment(enforce_but_st_fails), "mecsa-st").supported
    assert "mta-sts" in score_assessment(_assessment(enforce_but_st_fails), "mecsa").supported


def test_errors_and_not_applicable_never_count_and_unscored_protocols_are_ignored() -> None:
    a = _assessment(
        ProtocolVerdict("spf", E, "SERVFAIL"),
        ProtocolVerdict("dkim", NA, "no selector"),
        ProtocolVerdict("tls-rpt", P, "published"),
        ProtocolVerdict("dmarc", P, "published"),
    )
    for name in ("mecsa", "mecsa-st"):
        assert score_assessment(a, name).supported == {"dmarc"}
    assert score_assessment(a, "mecsa-st").levels.phishing == 3


def test_cli_table_unknown_profile_exits_2() -> None:
    result = CliRunner().invoke(app, ["scoring", "table", "--profile", "nope", "--json"])
    assert result.exit_code == 2
    assert "unknown scoring profile" in result.output


def test_cli_table_readable_lists_each_area_with_a_comparison() -> None:
    result = CliRunner().invoke(app, ["scoring", "table", "--compare", "mecsa-st"])
    assert result.exit_code == 0, result.output
    assert "confidentiality (32 combinations" in result.stdout
    assert "phishing (64 combinations" in result.stdout
    assert "integrity (16 combinations" in result.stdout
    assert "    8        0 *  starttls,dane,mta-sts" in result.stdout


def test_cli_table_json_for_mecsa_has_every_subset() -> None:
    result = CliRunner().invoke(app, ["scoring", "table", "--json"])
    rows = json.loads(result.stdout)
    assert len(rows) == 1024
    assert rows[-1] == {
        "protocols": list(SCORED_PROTOCOLS),
        "confidentiality": 10,
        "phishing": 10,
        "integrity": 10,
    }
    assert rows[0] == {"protocols": [], "confidentiality": 0, "phishing": 0, "integrity": 0}
