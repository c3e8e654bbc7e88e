"""The mecsa-st profile against mecsa-st 2.5's raw score.json, computed independently of the engine."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import pytest
from click.testing import CliRunner

from mecsa.cli import app
from mecsa.model import SCORED_PROTOCOLS
from mecsa.scoring import load_profile

SCORE_JSON = Path(__file__).parents[2] / "data" / "mecsa-st" / "score.json"
# mecsa-st's area names -> ours
AREA_OF = {"confidentiality": "confidentiality", "spoofing": "phishing", "integrity": "integrity"}
JOIN_ORDER = (
    "starttls",
    "x509",
    "spf",
    "spf_policy",
    "dkim",
    "dmarc",
    "dmarc_policy",
    "dane",
    "dnssec",
    "mta-sts",
)


def _reference_tables() -> dict[str, tuple[list[str], dict[str, int]]]:
    raw = json.loads(SCORE_JSON.read_text())
    tables: dict[str, tuple[list[str], dict[str, int]]] = {}
    for theirs, ours in AREA_OF.items():
        area = raw[theirs]
        table: dict[str, int] = {}
        for level, strings in area.items():
            if level == "protocols":
                continue
            for s in strings:
                table[s] = max(int(level), table.get(s, 0))
        tables[ours] = (area["protocols"].split(","), table)
    return tables


def _score_string(area_protocols: str, supported: set[str]) -> str:
    """mecsa-st's `generate_score_string`, rewritten from its description (commons/scoring.py).

    It tests membership in the area's comma-joined protocol *string*, in this fixed order, and
    appends x509 only inside the starttls branch, spf_policy only inside the spf branch and
    dmarc_policy only inside the dmarc branch.
    """
    out: list[str] = []
    if "starttls" in area_protocols and "starttls" in supported:
        out.append("starttls")
        if "x509" in area_protocols and "x509" in supported:
            out.append("x509")
    if "spf" in area_protocols and "spf" in supported:
        out.append("spf")
        if "spf_policy" in area_protocols and "spf_policy" in supported:
            out.append("spf_policy")
    if "dkim" in area_protocols and "dkim" in supported:
        out.append("dkim")
    if "dmarc" in area_protocols and "dmarc" in supported:
        out.append("dmarc")
        if "dmarc_policy" in area_protocols and "dmarc_policy" in supported:
            out.append("dmarc_policy")
    for last in ("dane", "dnssec", "mta-sts"):
        if last in area_protocols and last in supported:
            out.append(last)
    return ",".join(out)


def _expected(subset: set[str], tables: dict[str, tuple[list[str], dict[str, int]]]) -> dict[str, int]:
    return {
        area: table.get(_score_string(",".join(protocols), subset), 0)
        for area, (protocols, table) in tables.items()
    }


def _all_subsets() -> list[set[str]]:
    return [set(c) for n in range(len(SCORED_PROTOCOLS) + 1) for c in combinations(SCORED_PROTOCOLS, n)]


def test_join_order_is_the_models_scored_order() -> None:
    assert JOIN_ORDER == SCORED_PROTOCOLS


def test_every_subset_matches_the_reference_table() -> None:
    tables = _reference_tables()
    profile = load_profile("mecsa-st")
    subsets = _all_subsets()
    assert len(subsets) == 1024
    mismatches = [
        (sorted(s), profile.levels(s).as_dict(), _expected(s, tables))
        for s in subsets
        if profile.levels(s).as_dict() != _expected(s, tables)
    ]
    assert mismatches == []


def test_cli_table_json_matches_the_reference_for_all_1024_subsets() -> None:
    result = CliRunner().invoke(app, ["scoring", "table", "--profile", "mecsa-st", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 1024
    assert len({tuple(r["protocols"]) for r in rows}) == 1024
    tables = _reference_tables()
    for row in rows:
        assert list(row["protocols"]) == [p for p in JOIN_ORDER if p in row["protocols"]]
        expected = _expected(set(row["protocols"]), tables)
        assert {a: row[a] for a in expected} == expected, row


@pytest.mark.parametrize(
    ("protocols", "area", "level"),
    [
        # the documented holes, reproduced on purpose
        ("starttls,dane,mta-sts", "confidentiality", 0),
        ("starttls,dane", "confidentiality", 6),
        ("spf,dkim", "phishing", 0),
        ("dkim", "integrity", 0),
        # x509 only with starttls
        ("x509,dane,dnssec", "confidentiality", 0),
        ("starttls,x509", "confidentiality", 7),
        # spf_policy only with spf, dmarc_policy only with dmarc: the strings not in the table become
        # "dkim,dmarc,dnssec" (6), "spf,spf_policy,dkim,dnssec" (8) and integrity's "dkim,dnssec" (8)
        ("spf_policy,dkim,dmarc,dnssec", "phishing", 6),
        ("spf,spf_policy,dkim,dmarc_policy,dnssec", "phishing", 8),
        ("dkim,dmarc_policy,dnssec", "integrity", 8),
        # listed twice within spoofing (7 and 6): the higher level
        ("dkim,dmarc,dmarc_policy", "phishing", 7),
        ("", "confidentiality", 0),
    ],
)
def test_known_cells(protocols: str, area: str, level: int) -> None:
    subset = [p for p in protocols.split(",") if p]
    assert load_profile("mecsa-st").levels(subset).as_dict()[area] == level


# The seven strings in both the spoofing and the integrity tables: (spoofing level, integrity level).
# mecsa-st itself gives spoofing the integrity level; this profile must not.
COLLIDING = {
    "dmarc": (3, 2),
    "dkim,dnssec": (4, 8),
    "dmarc,dnssec": (4, 4),
    "dkim,dmarc": (5, 6),
    "dkim,dmarc,dnssec": (6, 8),
    "dkim,dmarc,dmarc_policy": (7, 7),
    "dkim,dmarc,dmarc_policy,dnssec": (8, 10),
}


def test_the_seven_colliding_strings_are_exactly_the_shared_ones() -> None:
    tables = _reference_tables()
    assert set(tables["phishing"][1]) & set(tables["integrity"][1]) == set(COLLIDING)


@pytest.mark.parametrize(("string", "levels"), sorted(COLLIDING.items()))
def test_colliding_string_gets_its_own_areas_level(string: str, levels: tuple[int, int]) -> None:
    got = load_profile("mecsa-st").levels(string.split(",")).as_dict()
    assert (got["phishing"], got["integrity"]) == levels


def test_no_spf_does_not_reach_the_top_spoofing_level() -> None:
    # mecsa-st's bug gives this domain 10 for spoofing; the table says 8
    assert load_profile("mecsa-st").levels(["dkim", "dmarc", "dmarc_policy", "dnssec"]).phishing == 8
