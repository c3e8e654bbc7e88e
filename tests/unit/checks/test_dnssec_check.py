"""The dnssec check against a loopback DNS server: all secure, insecure, bogus, non-validating, failing."""

from __future__ import annotations

from typing import Any

from mecsa.checks import dnssec
from mecsa.dns.resolver import Resolver
from mecsa.dns.zoneserver import Fault
from mecsa.model import CheckResult, Status, VerdictStatus
from mecsa.observe import Context
from tests.conftest import ServeZones

HEAD = "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\nns IN A 127.0.0.53\n"
DOMAIN = (
    HEAD + "@ IN MX 10 mx1\n@ IN MX 20 mail.other.test.\n"
    'mx1 IN A 127.0.0.25\n@ IN TXT "v=spf1 mx -all"\n'
    '_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:d@example.test"\n'
)
OTHER = HEAD + "mail IN A 127.0.0.26\nmail IN AAAA ::1\n"
ZONES = {"example.test.": DOMAIN, "other.test.": OTHER}


async def _run(serve_zones: ServeZones, zones: dict[str, str] | None = None, **kw: Any) -> CheckResult:
    client = await serve_zones(zones or ZONES, **kw)
    return dnssec.evaluate(await dnssec.observe(Context("example.test", Resolver(client))))


def _states(result: CheckResult) -> dict[str, str]:
    return {s["label"]: s["dnssec"] for s in result.details["subjects"]}


def _ids(result: CheckResult) -> dict[str, Status]:
    return {f.id: f.status for f in result.findings}


async def test_everything_signed_passes(serve_zones: ServeZones) -> None:
    result = await _run(serve_zones, secure=["example.test.", "other.test."])
    (verdict,) = result.verdicts
    assert verdict.status is VerdictStatus.PASS
    assert _ids(result) == {"dnssec.secure": Status.PASS}
    assert _states(result) == {
        "MX": "secure",
        "MX host mx1.example.test A": "secure",
        "MX host mx1.example.test AAAA": "secure",
        "MX host mail.other.test A": "secure",
        "MX host mail.other.test AAAA": "secure",
        "SPF TXT": "secure",
        "DMARC TXT": "secure",
        "MX host mx1.example.test TLSA": "secure",
        "MX host mail.other.test TLSA": "secure",
    }
    assert result.details["resolver_validates"] is True


async def test_secure_nxdomain_for_dmarc_counts_as_secure(serve_zones: ServeZones) -> None:
    zones = {"example.test.": HEAD + "@ IN MX 10 mx1\nmx1 IN A 127.0.0.25\n"}
    result = await _run(serve_zones, zones, secure=["example.test."])
    dmarc = next(s for s in result.details["subjects"] if s["label"] == "DMARC TXT")
    assert dmarc == {
        "label": "DMARC TXT",
        "name": "_dmarc.example.test",
        "type": "TXT",
        "rcode": "NXDOMAIN",
        "dnssec": "secure",
    }
    assert result.verdicts[0].status is VerdictStatus.PASS


async def test_one_unsigned_mx_host_fails_and_is_named(serve_zones: ServeZones) -> None:
    result = await _run(serve_zones, secure=["example.test."])
    (verdict,) = result.verdicts
    assert verdict.status is VerdictStatus.FAIL
    assert _ids(result) == {"dnssec.insecure": Status.FAIL}
    assert "mail.other.test" in verdict.reason and "mx1.example.test" not in verdict.reason
    assert {k for k, v in _states(result).items() if v == "insecure"} == {
        "MX host mail.other.test A",
        "MX host mail.other.test AAAA",
        "MX host mail.other.test TLSA",
    }


async def test_unsigned_everything_fails(serve_zones: ServeZones) -> None:
    result = await _run(serve_zones)
    assert result.verdicts[0].status is VerdictStatus.FAIL
    assert set(_states(result).values()) == {"insecure"}


async def test_bogus_dmarc_fails_with_ede_evidence(serve_zones: ServeZones) -> None:
    result = await _run(
        serve_zones, secure=["example.test.", "other.test."], faults={"_dmarc.example.test": Fault.BOGUS}
    )
    assert result.verdicts[0].status is VerdictStatus.FAIL
    assert _ids(result) == {"dnssec.bogus": Status.FAIL}
    (finding,) = result.findings
    assert "DMARC TXT" in finding.message
    assert finding.evidence == ("DMARC TXT: _dmarc.example.test TXT (EDE 6: signature invalid)",)


async def test_bogus_without_ede_is_found_by_the_cd_retry(serve_zones: ServeZones) -> None:
    result = await _run(
        serve_zones,
        secure=["example.test.", "other.test."],
        faults={"mx1.example.test/A": Fault.BOGUS_NO_EDE},
    )
    assert result.verdicts[0].status is VerdictStatus.FAIL
    assert _states(result)["MX host mx1.example.test A"] == "bogus"
    assert "checking disabled" in result.findings[0].evidence[0]


async def test_non_validating_resolver_is_error_never_insecure(serve_zones: ServeZones) -> None:
    result = await _run(serve_zones, secure=["example.test.", "other.test."], validating=False)
    (verdict,) = result.verdicts
    assert verdict.status is VerdictStatus.ERROR
    assert _ids(result) == {"dnssec.resolver_not_validating": Status.ERROR}
    assert "does not validate" in verdict.reason
    assert "insecure" not in _states(result).values()
    assert result.details["resolver_validates"] is False


async def test_timeout_on_dmarc_is_error_for_that_item(serve_zones: ServeZones) -> None:
    result = await _run(
        serve_zones, secure=["example.test.", "other.test."], faults={"_dmarc.example.test": Fault.TIMEOUT}
    )
    (verdict,) = result.verdicts
    assert verdict.status is VerdictStatus.ERROR
    assert _ids(result) == {"dnssec.lookup_failed": Status.ERROR}
    assert _states(result)["DMARC TXT"] == "error"
    assert [k for k, v in _states(result).items() if v != "secure"] == ["DMARC TXT"]


async def test_definite_insecurity_outranks_a_failed_lookup(serve_zones: ServeZones) -> None:
    result = await _run(serve_zones, secure=["example.test."], faults={"_dmarc.example.test": Fault.SERVFAIL})
    assert result.verdicts[0].status is VerdictStatus.FAIL
    assert _ids(result) == {"dnssec.insecure": Status.FAIL, "dnssec.lookup_failed": Status.ERROR}


async def test_implicit_mx_counts_the_negative_mx_answer(serve_zones: ServeZones) -> None:
    zones = {"example.test.": HEAD + "@ IN A 127.0.0.30\n"}
    result = await _run(serve_zones, zones, secure=["example.test."])
    states = _states(result)
    assert states["MX"] == "secure"
    assert states["MX host example.test A"] == "secure"
    assert result.verdicts[0].status is VerdictStatus.PASS


async def test_failed_mx_lookup_is_error_not_pass(serve_zones: ServeZones) -> None:
    result = await _run(
        serve_zones, secure=["example.test.", "other.test."], faults={"example.test/MX": Fault.SERVFAIL}
    )
    assert result.verdicts[0].status is VerdictStatus.ERROR
    assert _states(result)["MX"] == "error"


def test_no_subjects_is_never_a_pass() -> None:
    result = dnssec.evaluate(dnssec.DnssecObservation("example.test", True, ()))
    assert result.verdicts[0].status is VerdictStatus.ERROR
