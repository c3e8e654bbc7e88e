"""The dmarc check under RFC 9989 (tree walk, default) beside RFC 7489 (PSL), on a loopback zone server."""

from __future__ import annotations

from mecsa.checks import dmarc
from mecsa.dns.resolver import Resolver
from mecsa.model import CheckResult, Status, VerdictStatus
from mecsa.observe import AssessOptions, Context
from mecsa.observe.dmarc import DiscoveryMethod
from mecsa.scoring import load_profile
from tests.conftest import ServeZones

HEAD = "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\nns IN A 127.0.0.53\n"
RUA = "rua=mailto:d@example.test"
WALK, PSL = DiscoveryMethod.TREEWALK, DiscoveryMethod.PSL


async def _run(
    serve_zones: ServeZones,
    zones: dict[str, str],
    domain: str = "example.test",
    method: DiscoveryMethod | None = None,
) -> tuple[dmarc.DmarcObservation, CheckResult, Resolver]:
    resolver = Resolver(await serve_zones({origin: HEAD + body for origin, body in zones.items()}))
    options = AssessOptions() if method is None else AssessOptions(dmarc_discovery=method)
    obs = await dmarc.observe(Context(domain, resolver, options))
    return obs, dmarc.evaluate(obs), resolver


def _verdicts(result: CheckResult) -> tuple[VerdictStatus, VerdictStatus]:
    by = {v.protocol: v.status for v in result.verdicts}
    return by["dmarc"], by["dmarc_policy"]


def _ids(result: CheckResult) -> dict[str, Status]:
    return {f.id: f.status for f in result.findings}


def _flags(result: CheckResult, protocol: str) -> tuple[object, object]:
    verdict = next(v for v in result.verdicts if v.protocol == protocol)
    return verdict.details["rfc9989_pass"], verdict.details["rfc7489_pass"]


def _counted(result: CheckResult, profile: str) -> frozenset[str]:
    return load_profile(profile).counted({v.protocol: v for v in result.verdicts})


async def test_the_walk_is_the_default_and_reports_the_names_it_asked(serve_zones: ServeZones) -> None:
    zones = {"example.test.": f'_dmarc IN TXT "v=DMARC1; p=reject; {RUA}"\n', "test.": ""}
    obs, result, _ = await _run(serve_zones, zones)
    assert obs.method is WALK and obs.other is not None and obs.other.method is PSL
    assert _verdicts(result) == (VerdictStatus.PASS, VerdictStatus.PASS)
    assert _ids(result) == {
        "dmarc.discovery": Status.INFO,
        "dmarc.present": Status.PASS,
        "dmarc_policy.enforced": Status.PASS,
    }
    (stated,) = (f for f in result.findings if f.id == "dmarc.discovery")
    assert stated.message == (
        "RFC 9989 DNS tree walk: asked _dmarc.example.test, _dmarc.test; organisational domain example.test"
    )
    assert result.details["discovery"] == {
        "method": "treewalk",
        "rules": "rfc9989",
        "names": ["_dmarc.example.test", "_dmarc.test"],
        "organisational_domain": "example.test",
        "policy_domain": "example.test",
    }


async def test_12_label_domain_walk_is_capped_at_eight_questions(serve_zones: ServeZones) -> None:
    name = "a.b.c.d.e.f.g.h.i.j.example.test"
    zones = {"example.test.": f'_dmarc IN TXT "v=DMARC1; p=reject; {RUA}"\n', "test.": ""}
    obs, result, resolver = await _run(serve_zones, zones, domain=name)
    assert len(obs.discovery.names) == 8 and obs.discovery.names[1] == "_dmarc.f.g.h.i.j.example.test"
    # the PSL discovery asks two of the same names, answered from the assessment's cache
    assert resolver.queries_sent == 8
    assert _verdicts(result) == (VerdictStatus.PASS, VerdictStatus.PASS)
    assert _ids(result)["dmarc.org_fallback"] is Status.INFO


async def test_psd_policy_found_only_by_the_walk(serve_zones: ServeZones) -> None:
    zones = {
        "example.test.": "",
        "test.": '_dmarc IN TXT "v=DMARC1; p=reject; sp=reject; np=reject; psd=y; rua=mailto:d@nic.test"\n',
    }
    _, result, _ = await _run(serve_zones, zones)
    assert _verdicts(result) == (VerdictStatus.PASS, VerdictStatus.PASS)
    fallback = next(f for f in result.findings if f.id == "dmarc.org_fallback")
    assert "public suffix domain's record at _dmarc.test" in fallback.message
    assert result.details["record_domain"] == "test"
    # an RFC 7489 receiver finds nothing: the difference is a finding, and each rule set's verdict is kept
    differs = next(f for f in result.findings if f.id == "dmarc.discovery_differs")
    assert differs.status is Status.WARN and "_dmarc.test by the walk, none by the PSL" in differs.message
    assert _flags(result, "dmarc") == (True, False) and _flags(result, "dmarc_policy") == (True, False)
    assert {"dmarc", "dmarc_policy"} <= _counted(result, "mecsa")
    assert not {"dmarc", "dmarc_policy"} & _counted(result, "mecsa-st")
    # the same domain assessed the RFC 7489 way
    _, psl, _ = await _run(serve_zones, zones, method=PSL)
    assert _verdicts(psl) == (VerdictStatus.FAIL, VerdictStatus.FAIL)
    assert _ids(psl)["dmarc.discovery_differs"] is Status.WARN


async def test_walk_and_psl_disagree_on_the_organisational_domain(serve_zones: ServeZones) -> None:
    # dept.example.test says psd=n with p=none; the PSL sees example.test's p=reject
    zones = {
        "example.test.": f'_dmarc IN TXT "v=DMARC1; p=reject; {RUA}"\n'
        f'_dmarc.dept IN TXT "v=DMARC1; p=none; psd=n; {RUA}"\nmail.dept IN A 127.0.0.1\n',
        "test.": "",
    }
    _, result, _ = await _run(serve_zones, zones, domain="mail.dept.example.test")
    assert _verdicts(result) == (VerdictStatus.PASS, VerdictStatus.FAIL)
    assert "sp=none" not in result.findings[-1].message
    differs = next(f for f in result.findings if f.id == "dmarc.discovery_differs")
    assert "organisational domain dept.example.test by the RFC 9989 tree walk, example.test by the PSL" in (
        differs.message
    )
    assert _flags(result, "dmarc_policy") == (False, True)
    _, psl, _ = await _run(serve_zones, zones, domain="mail.dept.example.test", method=PSL)
    assert _verdicts(psl) == (VerdictStatus.PASS, VerdictStatus.PASS)
    assert psl.details["record_domain"] == "example.test"


async def test_psd_n_on_the_domain_itself_stops_the_walk(serve_zones: ServeZones) -> None:
    zones = {"example.test.": f'_dmarc IN TXT "v=DMARC1; p=reject; psd=n; {RUA}"\n', "test.": ""}
    obs, result, resolver = await _run(serve_zones, zones)
    assert obs.discovery.names == ("_dmarc.example.test",) and resolver.queries_sent == 1
    assert _verdicts(result) == (VerdictStatus.PASS, VerdictStatus.PASS)
    assert "dmarc.syntax_warning" not in _ids(result)


async def test_two_records_at_the_domain_are_discarded_and_fail(serve_zones: ServeZones) -> None:
    zones = {
        "example.test.": f'_dmarc IN TXT "v=DMARC1; p=reject; {RUA}"\n_dmarc IN TXT "v=DMARC1; p=none"\n',
        "test.": '_dmarc IN TXT "v=DMARC1; p=quarantine; psd=y; rua=mailto:d@nic.test"\n',
    }
    obs, result, _ = await _run(serve_zones, zones)
    assert obs.discovery.names == ("_dmarc.example.test", "_dmarc.test")
    assert _verdicts(result) == (VerdictStatus.FAIL, VerdictStatus.FAIL)
    multiple = next(f for f in result.findings if f.id == "dmarc.multiple")
    assert (
        "receivers discard them all (RFC 9989 §4.10); receivers use _dmarc.test instead" in multiple.message
    )


async def test_t_y_is_not_enforcing_under_rfc_9989_only(serve_zones: ServeZones) -> None:
    zones = {"example.test.": f'_dmarc IN TXT "v=DMARC1; p=reject; t=y; {RUA}"\n', "test.": ""}
    _, result, _ = await _run(serve_zones, zones)
    assert _verdicts(result) == (VerdictStatus.PASS, VerdictStatus.FAIL)
    testing = next(f for f in result.findings if f.id == "dmarc_policy.testing")
    assert testing.status is Status.FAIL and "receivers apply quarantine instead" in testing.message
    assert result.details["testing"] is True
    # profile mecsa counts the RFC 9989 verdict, mecsa-st the RFC 7489 one (t= is unknown there)
    assert _flags(result, "dmarc_policy") == (False, True)
    assert "dmarc_policy" not in _counted(result, "mecsa")
    assert "dmarc_policy" in _counted(result, "mecsa-st")
    _, psl, _ = await _run(serve_zones, zones, method=PSL)
    assert _verdicts(psl) == (VerdictStatus.PASS, VerdictStatus.PASS)
    assert "RFC 9989 tag" in next(f for f in psl.findings if f.id == "dmarc.syntax_warning").message


async def test_pct_50_under_both_rule_sets(serve_zones: ServeZones) -> None:
    zones = {"example.test.": f'_dmarc IN TXT "v=DMARC1; p=reject; pct=50; {RUA}"\n', "test.": ""}
    _, walked, _ = await _run(serve_zones, zones)
    assert _verdicts(walked) == (VerdictStatus.PASS, VerdictStatus.PASS)
    removed = next(f for f in walked.findings if f.id == "dmarc.removed_tag")
    assert removed.status is Status.WARN and "removed in RFC 9989; receivers ignore it" in removed.message
    assert "dmarc_policy.pct_partial" not in _ids(walked)
    _, psl, _ = await _run(serve_zones, zones, method=PSL)
    assert _verdicts(psl) == (VerdictStatus.PASS, VerdictStatus.PASS)
    assert _ids(psl)["dmarc_policy.pct_partial"] is Status.WARN and "dmarc.removed_tag" not in _ids(psl)
    for result in (walked, psl):
        assert {"dmarc", "dmarc_policy"} <= _counted(result, "mecsa")
        assert {"dmarc", "dmarc_policy"} <= _counted(result, "mecsa-st")


async def test_unknown_tag_is_a_warning_never_an_invalid_record(serve_zones: ServeZones) -> None:
    zones = {"example.test.": f'_dmarc IN TXT "v=DMARC1; p=reject; future=1; {RUA}"\n', "test.": ""}
    _, result, _ = await _run(serve_zones, zones)
    assert _verdicts(result) == (VerdictStatus.PASS, VerdictStatus.PASS)
    warning = next(f for f in result.findings if f.id == "dmarc.syntax_warning")
    assert warning.status is Status.WARN and "unknown tag future=" in warning.message


async def test_missing_p_with_rua_is_p_none_under_rfc_9989(serve_zones: ServeZones) -> None:
    zones = {"example.test.": f'_dmarc IN TXT "v=DMARC1; {RUA}"\n', "test.": ""}
    _, result, _ = await _run(serve_zones, zones)
    assert _verdicts(result) == (VerdictStatus.PASS, VerdictStatus.FAIL)
    assert _ids(result)["dmarc_policy.none"] is Status.FAIL
    # RFC 7489 rules (this parser's) discard such a record
    assert _flags(result, "dmarc") == (True, False)


async def test_failure_above_the_own_record_is_information_only(serve_zones: ServeZones) -> None:
    # no TLD zone: _dmarc.test is REFUSED
    _, result, _ = await _run(serve_zones, {"example.test.": f'_dmarc IN TXT "v=DMARC1; p=reject; {RUA}"\n'})
    assert _verdicts(result) == (VerdictStatus.PASS, VerdictStatus.PASS)
    assert _ids(result)["dmarc.walk_incomplete"] is Status.INFO
    assert "dmarc.discovery_differs" not in _ids(result)
    discovery = result.details["discovery"]
    assert isinstance(discovery, dict) and discovery["organisational_domain"] is None


async def test_external_destination_outside_the_walked_organisation(serve_zones: ServeZones) -> None:
    zones = {
        "example.test.": '_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:a@reports.example.test,'
        'mailto:b@elsewhere.example"\n',
        "elsewhere.example.": 'example.test._report._dmarc IN TXT "v=DMARC1"\n',
        "test.": "",
    }
    obs, result, _ = await _run(serve_zones, zones)
    # reports.example.test is inside example.test: not asked
    assert [e.answer.qname for e in obs.external] == ["example.test._report._dmarc.elsewhere.example"]
    assert _ids(result)["dmarc_policy.external_authorised"] is Status.INFO
