"""The dmarc check against a loopback DNS server: discovery, fallback, policy rule, external reports."""

from __future__ import annotations

from mecsa.checks import dmarc
from mecsa.dns.resolver import Resolver
from mecsa.dns.zoneserver import Fault
from mecsa.model import CheckResult, FindingKind, Status, VerdictStatus
from mecsa.observe import AssessOptions, Context
from mecsa.observe.dmarc import DiscoveryMethod
from tests.conftest import ServeZones

HEAD = "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\nns IN A 127.0.0.53\n"
GOOD = '_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@example.test"\n'


async def _run(
    serve_zones: ServeZones,
    body: str,
    *,
    domain: str = "example.test",
    reports: str = "",
    faults: dict[str, Fault] | None = None,
    method: DiscoveryMethod = DiscoveryMethod.PSL,
    tld: str = "",
) -> tuple[dmarc.DmarcObservation, CheckResult]:
    """Run the check. These first tests pin the RFC 7489 (PSL) behaviour; the RFC 9989 tests
    further down pass `method=TREEWALK`. The TLD zone answers as a real one would."""
    zones = {"example.test.": HEAD + body, "reports.example.": HEAD + reports, "test.": HEAD + tld}
    client = await serve_zones(zones, faults=faults)
    obs = await dmarc.observe(Context(domain, Resolver(client), AssessOptions(dmarc_discovery=method)))
    return obs, dmarc.evaluate(obs)


def _verdicts(result: CheckResult) -> tuple[VerdictStatus, VerdictStatus]:
    by = {v.protocol: v.status for v in result.verdicts}
    return by["dmarc"], by["dmarc_policy"]


def _ids(result: CheckResult) -> dict[str, Status]:
    return {f.id: f.status for f in result.findings}


async def test_reject_with_rua_passes_both(serve_zones: ServeZones) -> None:
    obs, result = await _run(serve_zones, GOOD + '_dmarc IN TXT "some other text"\n')
    assert _verdicts(result) == (VerdictStatus.PASS, VerdictStatus.PASS)
    assert _ids(result) == {
        "dmarc.discovery": Status.INFO,
        "dmarc.present": Status.PASS,
        "dmarc_policy.enforced": Status.PASS,
    }
    assert len(obs.lookups) == 1 and obs.external == ()
    assert result.details["applied_policy"] == "reject"
    assert result.details["rua"] == ["mailto:dmarc@example.test"]


async def test_record_split_into_strings_is_joined(serve_zones: ServeZones) -> None:
    _, result = await _run(
        serve_zones, '_dmarc IN TXT "v=DMARC1; p=quar" "antine; ruf=mailto:f@example.test"\n'
    )
    assert _verdicts(result) == (VerdictStatus.PASS, VerdictStatus.PASS)


async def test_missing_record_fails_without_fallback_at_org_domain(serve_zones: ServeZones) -> None:
    obs, result = await _run(serve_zones, "")
    assert _verdicts(result) == (VerdictStatus.FAIL, VerdictStatus.FAIL)
    assert _ids(result) == {
        "dmarc.discovery": Status.INFO,
        "dmarc.missing": Status.FAIL,
        "dmarc_policy.no_record": Status.FAIL,
    }
    assert [lk.domain for lk in obs.lookups] == ["example.test"]


async def test_non_dmarc_txt_does_not_count_and_is_shown(serve_zones: ServeZones) -> None:
    _, result = await _run(serve_zones, '_dmarc IN TXT "v=dmarc1; p=reject"\n')
    missing = next(f for f in result.findings if f.id == "dmarc.missing")
    assert missing.status is Status.FAIL and missing.evidence == ("v=dmarc1; p=reject",)


async def test_two_records_fail(serve_zones: ServeZones) -> None:
    _, result = await _run(serve_zones, GOOD + '_dmarc IN TXT "v=DMARC1; p=none"\n')
    assert _verdicts(result) == (VerdictStatus.FAIL, VerdictStatus.FAIL)
    assert _ids(result)["dmarc.multiple"] is Status.FAIL
    assert len(next(f for f in result.findings if f.id == "dmarc.multiple").evidence) == 2


async def test_invalid_record_fails_with_located_reason(serve_zones: ServeZones) -> None:
    _, result = await _run(serve_zones, '_dmarc IN TXT "v=DMARC1; p=rejected; rua=mailto:d@example.test"\n')
    assert _verdicts(result) == (VerdictStatus.FAIL, VerdictStatus.FAIL)
    syntax = next(f for f in result.findings if f.id == "dmarc.syntax")
    assert "p='rejected'" in syntax.message and "offset 10" in syntax.message


async def test_p_none_is_valid_dmarc_but_fails_policy(serve_zones: ServeZones) -> None:
    _, result = await _run(serve_zones, '_dmarc IN TXT "v=DMARC1; p=none; rua=mailto:d@example.test"\n')
    assert _verdicts(result) == (VerdictStatus.PASS, VerdictStatus.FAIL)
    assert _ids(result)["dmarc_policy.none"] is Status.FAIL
    assert "dmarc_policy.enforced" not in _ids(result)


async def test_reject_without_reporting_fails_policy(serve_zones: ServeZones) -> None:
    _, result = await _run(serve_zones, '_dmarc IN TXT "v=DMARC1; p=reject"\n')
    assert _verdicts(result) == (VerdictStatus.PASS, VerdictStatus.FAIL)
    fails = [f.id for f in result.findings if f.status is Status.FAIL]
    assert fails == ["dmarc_policy.no_reporting"]
    assert result.findings[-1].remediation == "dmarc.add_rua"


async def test_weaker_sp_np_and_partial_pct_warn_but_pass(serve_zones: ServeZones) -> None:
    _, result = await _run(
        serve_zones,
        '_dmarc IN TXT "v=DMARC1; p=reject; sp=quarantine; np=none; pct=50; rua=mailto:d@example.test"\n',
    )
    assert _verdicts(result) == (VerdictStatus.PASS, VerdictStatus.PASS)
    ids = _ids(result)
    assert ids["dmarc_policy.sp_weaker"] is Status.WARN
    assert ids["dmarc_policy.np_weaker"] is Status.WARN
    assert ids["dmarc_policy.pct_partial"] is Status.WARN
    assert result.details["subdomain_policy"] == "quarantine"
    assert result.details["nonexistent_policy"] == "none"


async def test_servfail_is_error_never_fail(serve_zones: ServeZones) -> None:
    _, result = await _run(serve_zones, GOOD, faults={"_dmarc.example.test": Fault.SERVFAIL})
    assert _verdicts(result) == (VerdictStatus.ERROR, VerdictStatus.ERROR)
    assert _ids(result) == {
        "dmarc.discovery": Status.INFO,
        "dmarc.lookup_failed": Status.ERROR,
        "dmarc_policy.lookup_failed": Status.ERROR,
    }
    assert "SERVFAIL" in next(f for f in result.findings if f.id == "dmarc.lookup_failed").message


async def test_timeout_is_error(serve_zones: ServeZones) -> None:
    _, result = await _run(serve_zones, GOOD, faults={"_dmarc.example.test": Fault.TIMEOUT})
    assert _verdicts(result) == (VerdictStatus.ERROR, VerdictStatus.ERROR)


async def test_record_only_at_org_domain_is_found(serve_zones: ServeZones) -> None:
    obs, result = await _run(serve_zones, GOOD + "mail IN A 127.0.0.1\n", domain="mail.example.test")
    assert [lk.domain for lk in obs.lookups] == ["mail.example.test", "example.test"]
    assert _verdicts(result) == (VerdictStatus.PASS, VerdictStatus.PASS)
    assert _ids(result)["dmarc.org_fallback"] is Status.INFO
    assert result.details["record_domain"] == "example.test"


async def test_org_domain_sp_none_applies_to_subdomain(serve_zones: ServeZones) -> None:
    _, result = await _run(
        serve_zones,
        '_dmarc IN TXT "v=DMARC1; p=reject; sp=none; rua=mailto:d@example.test"\n',
        domain="mail.example.test",
    )
    assert _verdicts(result) == (VerdictStatus.PASS, VerdictStatus.FAIL)
    none = next(f for f in result.findings if f.id == "dmarc_policy.none")
    assert "sp=none of example.test" in none.message
    assert result.details["applied_policy"] == "none"


async def test_own_record_beats_org_record(serve_zones: ServeZones) -> None:
    obs, result = await _run(
        serve_zones, GOOD + '_dmarc.mail IN TXT "v=DMARC1; p=none"\n', domain="mail.example.test"
    )
    assert len(obs.lookups) == 1
    assert _verdicts(result) == (VerdictStatus.PASS, VerdictStatus.FAIL)


async def test_servfail_at_subdomain_stops_discovery(serve_zones: ServeZones) -> None:
    obs, result = await _run(
        serve_zones, GOOD, domain="mail.example.test", faults={"_dmarc.mail.example.test": Fault.SERVFAIL}
    )
    assert len(obs.lookups) == 1
    assert _verdicts(result) == (VerdictStatus.ERROR, VerdictStatus.ERROR)


async def test_servfail_at_org_fallback_is_error(serve_zones: ServeZones) -> None:
    _, result = await _run(
        serve_zones, GOOD, domain="mail.example.test", faults={"_dmarc.example.test": Fault.SERVFAIL}
    )
    assert _verdicts(result) == (VerdictStatus.ERROR, VerdictStatus.ERROR)


EXTERNAL = (
    '_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:a@reports.example,mailto:own@example.test; '
    'ruf=mailto:f@other.reports.example"\n'
)


async def test_authorised_external_destination(serve_zones: ServeZones) -> None:
    obs, result = await _run(
        serve_zones,
        EXTERNAL,
        reports='example.test._report._dmarc IN TXT "v=DMARC1"\n'
        'example.test._report._dmarc.other IN TXT "v=DMARC1"\n',
    )
    # one question per destination domain; the own domain is not asked
    assert sorted(e.answer.qname for e in obs.external) == [
        "example.test._report._dmarc.other.reports.example",
        "example.test._report._dmarc.reports.example",
    ]
    assert _verdicts(result) == (VerdictStatus.PASS, VerdictStatus.PASS)
    assert [f.status for f in result.findings if f.id == "dmarc_policy.external_authorised"] == [
        Status.INFO
    ] * 2


async def test_unauthorised_and_failed_external_lookups_mark_only_their_item(serve_zones: ServeZones) -> None:
    _, result = await _run(
        serve_zones,
        EXTERNAL,
        reports="other IN A 127.0.0.1\n",
        faults={"example.test._report._dmarc.other.reports.example": Fault.SERVFAIL},
    )
    assert _verdicts(result) == (VerdictStatus.PASS, VerdictStatus.PASS)
    items = {f.subject: (f.id, f.status) for f in result.findings if f.id.startswith("dmarc_policy.external")}
    assert items == {
        "mailto:a@reports.example": ("dmarc_policy.external_unauthorised", Status.WARN),
        "mailto:f@other.reports.example": ("dmarc_policy.external_lookup_failed", Status.ERROR),
    }
    destinations = {d["uri"]: d["authorised"] for d in result.details["external_destinations"]}
    assert destinations == {"mailto:a@reports.example": False, "mailto:f@other.reports.example": None}


def test_catalogue_lists_every_emitted_id() -> None:
    # Every finding kind the module declares is in its catalogue, and only those.
    emitted = {v.id for v in vars(dmarc).values() if isinstance(v, FindingKind)}
    assert {"dmarc.missing", "dmarc.multiple", "dmarc.lookup_failed", "dmarc_policy.none"} <= emitted
    assert emitted == {k.id for k in dmarc.CHECK.findings}
    assert dmarc.CHECK.protocols == ("dmarc", "dmarc_policy")
