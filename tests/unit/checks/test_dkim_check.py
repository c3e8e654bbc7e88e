"""The dkim check against a loopback DNS server: selectors, key judgement, the verdict rule."""

from __future__ import annotations

import datetime

from mecsa.checks import dkim
from mecsa.dns.resolver import Resolver
from mecsa.dns.zoneserver import Fault
from mecsa.model import CheckResult, FindingKind, Status, VerdictStatus
from mecsa.observe import AssessOptions, Context
from tests.conftest import ServeZones
from tests.unit.dkim_keys import ed25519_p, rsa_p, weak_rsa_p, zone_txt

HEAD = "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\nns IN A 127.0.0.53\n"


def key(selector: str, record: str) -> str:
    return f"{selector}._domainkey IN TXT {zone_txt(record)}\n"


async def _run(
    serve_zones: ServeZones,
    body: str,
    *,
    selectors: tuple[str, ...] = (),
    faults: dict[str, Fault] | None = None,
    provider: str = "",
) -> CheckResult:
    zones = {"example.test.": HEAD + body, "provider.example.": HEAD + provider}
    client = await serve_zones(zones, faults=faults)
    ctx = Context("example.test", Resolver(client), AssessOptions(dkim_selectors=selectors))
    return dkim.evaluate(await dkim.observe(ctx))


def _verdict(result: CheckResult) -> VerdictStatus:
    (verdict,) = result.verdicts
    assert verdict.protocol == "dkim"
    return verdict.status


def _ids(result: CheckResult) -> list[tuple[str, Status, str | None]]:
    return [(f.id, f.status, f.subject) for f in result.findings]


async def test_2048_bit_key_under_common_selector_passes(serve_zones: ServeZones) -> None:
    result = await _run(serve_zones, key("selector1", f"v=DKIM1; k=rsa; p={rsa_p(2048)}"))
    assert _verdict(result) is VerdictStatus.PASS
    assert _ids(result) == [("dkim.key_ok", Status.PASS, "selector1._domainkey.example.test")]
    selector = result.details["selectors"]["selector1"]
    assert selector["keys"][0]["bits"] == 2048 and selector["given"] is False
    assert result.details["selectors"]["default"] == {"given": False, "rcode": "NXDOMAIN"}
    assert result.details["usable_selectors"] == ["selector1"]


async def test_given_selector_is_looked_up(serve_zones: ServeZones) -> None:
    result = await _run(serve_zones, key("corp2024", f"v=DKIM1; p={rsa_p(2048)}"), selectors=("corp2024",))
    assert _verdict(result) is VerdictStatus.PASS
    assert result.details["selectors"]["corp2024"]["given"] is True


async def test_dated_selector_of_mecsa_harden_is_tried(serve_zones: ServeZones) -> None:
    this_month = f"s{datetime.datetime.now(datetime.UTC):%Y%m}"
    result = await _run(serve_zones, key(this_month, f"v=DKIM1; p={rsa_p(2048)}"))
    assert _verdict(result) is VerdictStatus.PASS
    assert result.details["usable_selectors"] == [this_month]


def test_dated_selectors_cross_the_year() -> None:
    assert dkim.dated_selectors(datetime.date(2025, 1, 31)) == ("s202501", "s202412")


async def test_selector_cname_to_provider_is_followed(serve_zones: ServeZones) -> None:
    result = await _run(
        serve_zones,
        "selector2._domainkey IN CNAME selector2-example._domainkey.provider.example.\n",
        provider=key("selector2-example", f"v=DKIM1; p={rsa_p(2048)}"),
    )
    assert _verdict(result) is VerdictStatus.PASS


async def test_ed25519_key_passes(serve_zones: ServeZones) -> None:
    result = await _run(serve_zones, key("default", f"v=DKIM1; k=ed25519; p={ed25519_p()}"))
    assert _verdict(result) is VerdictStatus.PASS
    assert "Ed25519" in result.findings[0].message


async def test_1024_bit_key_passes_with_a_warning(serve_zones: ServeZones) -> None:
    result = await _run(serve_zones, key("k1", f"v=DKIM1; p={rsa_p(1024)}"))
    assert _verdict(result) is VerdictStatus.PASS
    assert _ids(result) == [
        ("dkim.key_weak", Status.WARN, "k1._domainkey.example.test"),
        ("dkim.key_ok", Status.PASS, "k1._domainkey.example.test"),
    ]


async def test_512_bit_key_fails(serve_zones: ServeZones) -> None:
    result = await _run(serve_zones, key("k1", f"v=DKIM1; p={weak_rsa_p(512)}"))
    assert _verdict(result) is VerdictStatus.FAIL
    assert _ids(result) == [("dkim.key_too_small", Status.FAIL, "k1._domainkey.example.test")]
    assert "512-bit" in result.verdicts[0].reason


async def test_h_rsa_sha256_fails_with_the_exact_fix(serve_zones: ServeZones) -> None:
    result = await _run(serve_zones, key("mail", f"v=DKIM1; h=rsa-sha256; k=rsa; p={rsa_p(2048)}"))
    assert _verdict(result) is VerdictStatus.FAIL
    (finding,) = result.findings
    assert (finding.id, finding.status, finding.remediation) == (
        "dkim.hash_rsa_sha256",
        Status.FAIL,
        "dkim.fix_h_tag",
    )
    assert "replace h=rsa-sha256 with h=sha256, or drop h=" in finding.message


async def test_sha1_only_key_fails(serve_zones: ServeZones) -> None:
    result = await _run(serve_zones, key("mail", f"v=DKIM1; h=sha1; p={rsa_p(2048)}"))
    assert _verdict(result) is VerdictStatus.FAIL
    assert _ids(result) == [("dkim.hash_unusable", Status.FAIL, "mail._domainkey.example.test")]


async def test_revoked_key_alone_fails(serve_zones: ServeZones) -> None:
    result = await _run(serve_zones, key("default", "v=DKIM1; p="))
    assert _verdict(result) is VerdictStatus.FAIL
    assert _ids(result) == [("dkim.revoked", Status.FAIL, "default._domainkey.example.test")]
    assert "revoked" in result.verdicts[0].reason


async def test_revoked_key_beside_a_usable_one_is_only_info(serve_zones: ServeZones) -> None:
    result = await _run(
        serve_zones, key("default", "v=DKIM1; p=") + key("selector1", f"v=DKIM1; p={rsa_p(2048)}")
    )
    assert _verdict(result) is VerdictStatus.PASS
    assert ("dkim.revoked", Status.INFO, "default._domainkey.example.test") in _ids(result)


async def test_broken_key_beside_a_usable_one_fails(serve_zones: ServeZones) -> None:
    result = await _run(
        serve_zones,
        key("default", "v=DKIM1; p=AAAA") + key("selector1", f"v=DKIM1; p={rsa_p(2048)}"),
    )
    assert _verdict(result) is VerdictStatus.FAIL
    assert ("dkim.invalid", Status.FAIL, "default._domainkey.example.test") in _ids(result)
    assert ("dkim.key_ok", Status.PASS, "selector1._domainkey.example.test") in _ids(result)


async def test_testing_mode_warns(serve_zones: ServeZones) -> None:
    result = await _run(serve_zones, key("s1", f"v=DKIM1; t=y; p={rsa_p(2048)}"))
    assert _verdict(result) is VerdictStatus.PASS
    assert ("dkim.testing", Status.WARN, "s1._domainkey.example.test") in _ids(result)


async def test_two_records_at_one_selector_warn(serve_zones: ServeZones) -> None:
    result = await _run(
        serve_zones, key("s1", f"v=DKIM1; p={rsa_p(2048)}") + key("s1", f"v=DKIM1; p={rsa_p(1024)}")
    )
    assert ("dkim.multiple_records", Status.WARN, "s1._domainkey.example.test") in _ids(result)


async def test_no_key_and_no_domainkey_node_fails_as_missing(serve_zones: ServeZones) -> None:
    result = await _run(serve_zones, "")
    assert _verdict(result) is VerdictStatus.FAIL
    assert _ids(result) == [("dkim.missing", Status.FAIL, None)]
    assert "NXDOMAIN" in result.verdicts[0].reason
    assert result.details["domainkey_rcode"] == "NXDOMAIN"


async def test_no_known_selector_but_domainkey_exists_hints_at_unknown_selector(
    serve_zones: ServeZones,
) -> None:
    result = await _run(serve_zones, key("xyzzy-secret", f"v=DKIM1; p={rsa_p(2048)}"))
    assert _verdict(result) is VerdictStatus.FAIL
    assert _ids(result) == [
        ("dkim.missing", Status.FAIL, None),
        ("dkim.likely_unknown_selector", Status.WARN, None),
    ]
    assert "likely" in result.verdicts[0].reason and "--dkim-selector" in result.verdicts[0].reason


async def test_non_key_txt_at_selector_is_ignored(serve_zones: ServeZones) -> None:
    # what a wildcard TXT (here its synthesised answer, written out) puts at every selector name
    result = await _run(serve_zones, key("default", "v=spf1 -all"))
    assert _verdict(result) is VerdictStatus.FAIL
    assert [f.id for f in result.findings] == ["dkim.missing", "dkim.likely_unknown_selector"]
    assert result.details["selectors"]["default"]["ignored_txt"] == 1


async def test_all_lookups_failing_is_error(serve_zones: ServeZones) -> None:
    names = (*dkim.COMMON_SELECTORS, *dkim.dated_selectors(datetime.datetime.now(datetime.UTC).date()))
    faults = {f"{s}._domainkey.example.test": Fault.SERVFAIL for s in names}
    faults["_domainkey.example.test"] = Fault.SERVFAIL
    result = await _run(serve_zones, key("default", f"v=DKIM1; p={rsa_p(2048)}"), faults=faults)
    assert _verdict(result) is VerdictStatus.ERROR
    assert {f.id for f in result.findings} == {"dkim.lookup_failed"}
    assert len(result.findings) == len(set(names))


async def test_one_failed_lookup_and_no_key_is_error_not_fail(serve_zones: ServeZones) -> None:
    result = await _run(serve_zones, "", faults={"selector1._domainkey.example.test": Fault.TIMEOUT})
    assert _verdict(result) is VerdictStatus.ERROR
    assert _ids(result) == [("dkim.lookup_failed", Status.ERROR, "selector1._domainkey.example.test")]


async def test_failed_lookup_beside_usable_key_still_passes(serve_zones: ServeZones) -> None:
    result = await _run(
        serve_zones,
        key("selector2", f"v=DKIM1; p={rsa_p(2048)}"),
        faults={"selector1._domainkey.example.test": Fault.SERVFAIL},
    )
    assert _verdict(result) is VerdictStatus.PASS
    assert ("dkim.lookup_failed", Status.ERROR, "selector1._domainkey.example.test") in _ids(result)


def test_catalogue_lists_every_emitted_id() -> None:
    # Every finding kind the module declares is in its catalogue, and only those.
    emitted = {v.id for v in vars(dkim).values() if isinstance(v, FindingKind)}
    assert {"dkim.key_ok", "dkim.revoked", "dkim.hash_rsa_sha256", "dkim.missing"} <= emitted
    assert emitted == {k.id for k in dkim.CHECK.findings}
