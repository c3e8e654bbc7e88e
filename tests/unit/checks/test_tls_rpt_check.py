"""The tls-rpt check against a loopback DNS server: present, missing, multiple, invalid, failing."""

from __future__ import annotations

from mecsa.checks import tls_rpt
from mecsa.dns.resolver import Resolver
from mecsa.dns.zoneserver import Fault
from mecsa.model import CheckResult, VerdictStatus
from mecsa.observe import Context
from tests.conftest import ServeZones

HEAD = "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\nns IN A 127.0.0.53\n"


async def _run(serve_zones: ServeZones, body: str, **kw: object) -> CheckResult:
    client = await serve_zones({"example.test.": HEAD + body}, **kw)
    return tls_rpt.evaluate(await tls_rpt.observe(Context("example.test", Resolver(client))))


def _outcome(result: CheckResult) -> tuple[str, VerdictStatus]:
    (finding,) = result.findings
    (verdict,) = result.verdicts
    assert verdict.protocol == "tls-rpt" and finding.protocol == "tls-rpt"
    return finding.id, verdict.status


async def test_valid_record_passes_and_lists_destinations(serve_zones: ServeZones) -> None:
    result = await _run(
        serve_zones,
        '_smtp._tls IN TXT "v=TLSRPTv1; rua=mailto:tls@example.test,https://r.example.test/rpt"\n'
        '_smtp._tls IN TXT "unrelated text"\n',
    )
    assert _outcome(result) == ("tls-rpt.valid", VerdictStatus.PASS)
    assert result.details["rua"] == ["mailto:tls@example.test", "https://r.example.test/rpt"]
    assert result.details["name"] == "_smtp._tls.example.test"


async def test_record_split_into_strings_is_joined(serve_zones: ServeZones) -> None:
    result = await _run(serve_zones, '_smtp._tls IN TXT "v=TLSRPTv1; rua=mai" "lto:tls@example.test"\n')
    assert _outcome(result) == ("tls-rpt.valid", VerdictStatus.PASS)


async def test_nxdomain_is_missing(serve_zones: ServeZones) -> None:
    assert _outcome(await _run(serve_zones, "")) == ("tls-rpt.missing", VerdictStatus.FAIL)


async def test_only_other_txt_is_missing(serve_zones: ServeZones) -> None:
    result = await _run(serve_zones, '_smtp._tls IN TXT "v=STSv1; id=1"\n')
    assert _outcome(result) == ("tls-rpt.missing", VerdictStatus.FAIL)


async def test_two_records_fail(serve_zones: ServeZones) -> None:
    result = await _run(
        serve_zones,
        '_smtp._tls IN TXT "v=TLSRPTv1; rua=mailto:a@example.test"\n'
        '_smtp._tls IN TXT "v=TLSRPTv1; rua=mailto:b@example.test"\n',
    )
    assert _outcome(result) == ("tls-rpt.multiple", VerdictStatus.FAIL)
    assert len(result.findings[0].evidence) == 2


async def test_http_destination_is_invalid(serve_zones: ServeZones) -> None:
    result = await _run(serve_zones, '_smtp._tls IN TXT "v=TLSRPTv1; rua=http://r.example.test/"\n')
    assert _outcome(result) == ("tls-rpt.invalid", VerdictStatus.FAIL)
    assert "unsupported URI scheme" in result.findings[0].message


async def test_wrong_case_version_is_reported_invalid_not_missing(serve_zones: ServeZones) -> None:
    result = await _run(serve_zones, '_smtp._tls IN TXT "v=tlsrptv1; rua=mailto:a@example.test"\n')
    assert _outcome(result) == ("tls-rpt.invalid", VerdictStatus.FAIL)


async def test_servfail_is_error_not_missing(serve_zones: ServeZones) -> None:
    result = await _run(
        serve_zones,
        '_smtp._tls IN TXT "v=TLSRPTv1; rua=mailto:a@example.test"\n',
        faults={"_smtp._tls.example.test/TXT": Fault.SERVFAIL},
    )
    assert _outcome(result) == ("tls-rpt.lookup_failed", VerdictStatus.ERROR)


async def test_timeout_is_error(serve_zones: ServeZones) -> None:
    result = await _run(serve_zones, "", faults={"_smtp._tls.example.test": Fault.TIMEOUT})
    assert _outcome(result) == ("tls-rpt.lookup_failed", VerdictStatus.ERROR)
    assert "TIMEOUT" in result.findings[0].message
