"""The DNSSEC chain lab: for every broken (or healthy) link, real Knot and Unbound, our verdict
in `own` mode through a non-validating Unbound and in `both` mode through the validating one,
with the exact named link; and Unbound's verdict must be ours, answer by answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.lab.helpers import lab_dir, require_lab

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def rows() -> Iterator[dict[str, dict[str, Any]]]:
    require_lab()
    from mecsa.lab.dnssec_chain import down, run_probe, up

    lab = up(lab_dir("dnssec-chain"))
    try:
        yield {str(row["case"]): row for row in run_probe(lab)}
    finally:
        down(lab)
    assert not lab.workdir.exists()


def _case_names() -> list[str]:
    from mecsa.lab.dnssec_chain import CASES

    return [case.name for case in CASES]


@pytest.mark.parametrize("case", _case_names())
def test_our_verdict_and_named_link_match_unbound(rows: dict[str, dict[str, Any]], case: str) -> None:
    row = rows[case]
    assert row["unbound"] == row["expect"], row  # the case really breaks what it says it breaks
    assert row["own"] == row["expect"], row  # through the plain, non-validating Unbound
    assert row["both"] == row["expect"], row  # through the validating Unbound
    assert row["own_link"].startswith(row["expected_link"]), row
    assert row["both_link"].startswith(row["expected_link"]), row
    assert row["both_disagreement"] is None, row


@pytest.mark.parametrize("case", _case_names())
def test_every_assessed_answer_agrees_with_unbound(rows: dict[str, dict[str, Any]], case: str) -> None:
    row = rows[case]
    assert row["assess_subjects"] >= 3, row
    assert row["assess_disagreements"] == [], row
    # Through a plain forwarder DANE is judged, never "the resolver does not validate".
    assert "dane.dnssec_unknown" not in row["assess_dane_findings"], row


def test_assessment_verdicts_follow_the_chain(rows: dict[str, dict[str, Any]]) -> None:
    assert rows["healthy"]["assess_dnssec"] == "pass"
    assert rows["wildcard-tlsa"]["assess_dnssec"] == "pass"
    assert rows["rsasha1"]["assess_dnssec"] == "pass"  # secure, with a warning
    assert rows["ds-sha1-only"]["assess_dnssec"] == "pass"  # secure, with a warning
    assert "dane.tlsa_bogus" in rows["expired-rrsig"]["assess_dane_findings"]
    assert "dane.not_secure" in rows["insecure-delegation"]["assess_dane_findings"]
    for case in (
        "expired-rrsig",
        "ds-wrong-digest",
        "ds-other-algorithm",
        "missing-dnskey",
        "insecure-delegation",
        "stripped-rrsig",
        "not-yet-valid",
        "ds-unknown-algorithm",
    ):
        assert rows[case]["assess_dnssec"] == "fail", case


def test_weak_algorithm_and_iterations_are_noted(rows: dict[str, dict[str, Any]]) -> None:
    notes = rows["rsasha1"]["own_notes"]
    assert any("signs with RSASHA1 (5)" in n and "RFC 9905" in n for n in notes), notes
    assert any("is RSA of 1024 bits, under 2048" in n for n in notes), notes
    assert rows["healthy"]["own_notes"] == []
    (sha1_ds,) = rows["ds-sha1-only"]["own_notes"]
    assert "uses a SHA-1 digest" in sha1_ds


def test_the_chain_walk_costs_a_handful_of_questions(rows: dict[str, dict[str, Any]]) -> None:
    for case, row in rows.items():
        questions: dict[str, int] = row["questions"]
        extra = questions["own"] - questions["resolver"]
        # DS and DNSKEY for each of the three zones (the root: DNSKEY only); for unsigned data the
        # SOA that finds its zone and the DS/DNSKEY asked meanwhile for its owner (two wasted at most).
        assert 0 <= extra <= 10, (case, questions)


def test_with_50_ms_per_round_trip_the_walk_costs_one_more_and_still_agrees() -> None:
    """The probe in a namespace of its own, joined to the Unbounds by a link that holds every
    frame 25 ms each way (mecsa.lab.delay: this kernel has no netem)."""
    require_lab()
    from mecsa.lab.dnssec_chain import agrees, down, run_probe, up

    lab = up(lab_dir("dnssec-delay"), delay=0.05)
    try:
        rows: dict[str, dict[str, Any]] = {str(row["case"]): row for row in run_probe(lab)}
    finally:
        down(lab)
    assert all(agrees(row) for row in rows.values()), [r for r in rows.values() if not agrees(r)]
    ms: dict[str, float] = rows["healthy"]["ms"]
    questions: dict[str, int] = rows["healthy"]["questions"]
    assert ms["resolver"] >= 50  # one round trip over the link
    assert ms["own"] >= 100  # the answer, then the chain's questions all at once
    assert questions["own"] - questions["resolver"] == 5
