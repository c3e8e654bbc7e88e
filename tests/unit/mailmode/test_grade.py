"""The provider grade: mecsa-st's combination checked against an independent reimplementation over
generated inputs, and the mecsa profile's outbound extension."""

from __future__ import annotations

import json
import random
from importlib import resources

import pytest

from mecsa.mailmode.grade import (
    DomainRecords,
    InboundHost,
    OutboundMessage,
    ProviderFacts,
    mecsa_grade,
    mecsa_st_grade,
)

ORDER = (
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
TABLE = json.loads(resources.files("mecsa.scoring").joinpath("profiles", "mecsa-st.json").read_text("utf-8"))


def _reference(
    hosts: list[dict[str, bool]], outs: list[dict[str, bool]], dns: dict[str, bool]
) -> dict[str, int]:
    """mecsa-st's domain_update + generate_score_string, written again from its description:
    running totals of 100 per item, divided at the end; the area's own table (our profile's areas)."""
    total_mx = len(hosts)
    starttls = cert = dane = sts = 0
    mx_tls = 0
    for h in hosts:
        if h["tls12"]:
            mx_tls += 1
            starttls += 100
            cert += 100 if h["cert"] else 0
        dane += 100 if h["dane"] else 0
        sts += 100 if h["sts"] else 0
    dkim = spf = 0
    for o in outs:
        starttls += 100 if o["tls"] else 0
        dkim += 100 if o["dkim"] else 0
        spf += 100 if o["spf"] else 0
    raw = {
        "starttls": starttls / (total_mx + len(outs)) if total_mx + len(outs) else 0,
        "x509": cert / mx_tls if mx_tls else 0,
        "dane": dane / total_mx if total_mx else 0,
        "mta-sts": sts / total_mx if total_mx else 0,
        "dkim": dkim / len(outs) if outs else 0,
        "spf": ((spf / len(outs) if outs else 0) + (100 if dns["spf"] else 0)) / 2,
        "dmarc": 100 if dns["dmarc"] else 0,
        "dnssec": 100 if dns["dnssec"] else 0,
    }
    levels = {}
    for area, data in TABLE["areas"].items():
        wanted = data["protocols"].split(",")
        names: list[str] = []
        if "starttls" in wanted and raw["starttls"] >= 80:
            names.append("starttls")
            if "x509" in wanted and raw["x509"] >= 80:
                names.append("x509")
        if "spf" in wanted and raw["spf"] >= 80:
            names.append("spf")
            if "spf_policy" in wanted and dns["spf_policy"]:
                names.append("spf_policy")
        if "dkim" in wanted and raw["dkim"] >= 80:
            names.append("dkim")
        if "dmarc" in wanted and raw["dmarc"] >= 80:
            names.append("dmarc")
            if "dmarc_policy" in wanted and dns["dmarc_policy"]:
                names.append("dmarc_policy")
        for p in ("dane", "dnssec", "mta-sts"):
            if p in wanted and raw[p] >= 80:
                names.append(p)
        key = ",".join(names)
        found = [int(level) for level, combos in data.items() if level != "protocols" and key in combos]
        levels[area] = max(found, default=0)
    return levels


def _generated(
    rng: random.Random,
) -> tuple[ProviderFacts, list[dict[str, bool]], list[dict[str, bool]], dict[str, bool]]:
    hosts = [
        {k: rng.random() < 0.75 for k in ("tls12", "cert", "dane", "sts")} for _ in range(rng.randint(0, 5))
    ]
    outs = [{k: rng.random() < 0.75 for k in ("tls", "spf", "dkim")} for _ in range(rng.randint(0, 6))]
    dns = {k: rng.random() < 0.7 for k in ("spf", "spf_policy", "dmarc", "dmarc_policy", "dnssec")}
    dns["spf_policy"] = dns["spf_policy"] and dns["spf"]
    dns["dmarc_policy"] = dns["dmarc_policy"] and dns["dmarc"]
    supported = frozenset(p for p, ok in dns.items() if ok)
    facts = ProviderFacts(
        "user.test",
        tuple(InboundHost(f"mx{i}", h["tls12"], h["cert"], h["dane"], h["sts"]) for i, h in enumerate(hosts)),
        {"mecsa-st": DomainRecords(supported), "mecsa": DomainRecords(supported)},
        tuple(
            OutboundMessage(
                i,
                rng.choice(("TLSv1.2", "TLSv1.3", "TLSv1")) if o["tls"] else None,
                o["spf"],
                o["dkim"],
                True,
            )
            for i, o in enumerate(outs)
        ),
    )
    return facts, hosts, outs, dns


def test_mecsa_st_grade_matches_an_independent_reimplementation_over_3000_generated_providers() -> None:
    rng = random.Random(17)
    seen = set()
    for _ in range(3000):
        facts, hosts, outs, dns = _generated(rng)
        got = mecsa_st_grade(facts).levels
        assert got == _reference(hosts, outs, dns), (facts, got)
        seen.add(tuple(got.values()))
    assert len(seen) > 40  # the generator reaches many different grades, not one corner


def test_mecsa_st_counts_a_message_over_tls_1_0_as_starttls_but_not_a_host() -> None:
    # mecsa-st's or_starttls is "delivered over TLS"; the inbound side demands TLS 1.2+
    host = InboundHost("mx", False, False, False, False)
    records = {"mecsa-st": DomainRecords(frozenset()), "mecsa": DomainRecords(frozenset())}
    msgs = tuple(OutboundMessage(i, "TLSv1", True, True, True) for i in range(4))
    grade = mecsa_st_grade(ProviderFacts("u.test", (host,), records, msgs))
    assert grade.levels["confidentiality"] == 5  # 4 of 5 = 80%: starttls alone


def test_mecsa_st_spf_needs_the_record_and_passing_messages() -> None:
    records = {"mecsa-st": DomainRecords(frozenset({"spf"})), "mecsa": DomainRecords(frozenset({"spf"}))}
    passing = (OutboundMessage(1, "TLSv1.3", True, False, False),)
    failing = (OutboundMessage(1, "TLSv1.3", False, False, False),)
    ok = mecsa_st_grade(ProviderFacts("u.test", (), records, passing))
    bad = mecsa_st_grade(ProviderFacts("u.test", (), records, failing))
    assert "spf" in ok.supported and "spf" not in bad.supported
    spf = {g.protocol: g for g in bad.protocols}["spf"]
    assert spf.evidence.value == "both" and spf.why.startswith("50%")


FULL = frozenset(ORDER)


def _hardened(dane_trap: str | None, **message: object) -> ProviderFacts:
    fields = {"tls_version": "TLSv1.3", "spf_pass": True, "dkim_valid": True, "dmarc_pass": True, **message}
    return ProviderFacts(
        "u.test",
        (InboundHost("mx", True, True, True, True),),
        {"mecsa": DomainRecords(FULL), "mecsa-st": DomainRecords(FULL)},
        (OutboundMessage(1, **fields),),  # type: ignore[arg-type]
        dane_trap,
        "does_not_enforce",
    )


def test_mecsa_gives_the_hardened_provider_10_10_10_only_when_it_enforces_dane() -> None:
    assert mecsa_grade(_hardened("enforces")).levels == {
        "confidentiality": 10,
        "phishing": 10,
        "integrity": 10,
    }
    may = mecsa_grade(_hardened("does_not_enforce"))
    assert may.levels["confidentiality"] < 10
    dane = {g.protocol: g for g in may.protocols}["dane"]
    assert not dane.counted and "does not enforce DANE" in dane.why
    unknown = mecsa_grade(_hardened("unknown_yet"))
    assert not {g.protocol: g for g in unknown.protocols}["dane"].counted
    assert any("DANE enforcement not known yet" in p for p in unknown.pending)


@pytest.mark.parametrize(
    ("message", "protocol"),
    [({"spf_pass": False}, "spf"), ({"tls_version": "TLSv1"}, "starttls"), ({"dkim_valid": False}, "dkim")],
)
def test_mecsa_needs_the_outbound_side_too(message: dict[str, object], protocol: str) -> None:
    grade = mecsa_grade(_hardened("enforces", **message))
    entry = {g.protocol: g for g in grade.protocols}[protocol]
    assert not entry.counted and entry.evidence.value == "both"
    assert sum(grade.levels.values()) < 30


def test_mecsa_provider_grade_is_monotonic_in_each_piece_of_evidence() -> None:
    rng = random.Random(5)
    for _ in range(500):
        facts, *_ = _generated(rng)
        base = mecsa_grade(facts).levels
        better_msgs = tuple(OutboundMessage(m.id, "TLSv1.3", True, True, True) for m in facts.messages)
        improved = ProviderFacts(facts.domain, facts.hosts, facts.records, better_msgs, "enforces")
        assert all(mecsa_grade(improved).levels[a] >= base[a] for a in base)


def test_mecsa_does_not_count_spf_policy_when_the_messages_fail_spf() -> None:
    grade = mecsa_grade(_hardened("enforces", spf_pass=False))
    policy = {g.protocol: g for g in grade.protocols}["spf_policy"]
    assert not policy.counted and policy.why.endswith("not counted without spf")
    assert "spf_policy" not in grade.supported
