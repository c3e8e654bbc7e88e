"""check_host() beyond the RFC suite: DNS failures, counters, explanations and the deadline."""

from __future__ import annotations

import asyncio

from mecsa.dns.answer import DnsAnswer, Rcode
from mecsa.spf.evaluator import SpfResult, check_host, check_sender
from tests.unit.spf.fakedns import FakeDns

ZONE = {
    "example.com": [
        {
            "TXT": "v=spf1 ip4:192.0.2.0/24 include:_spf.example.net a:gone.example.com -all "
            "exp=why.example.com"
        }
    ],
    "_spf.example.net": [{"TXT": "v=spf1 ip4:198.51.100.0/24 -all"}],
    "why.example.com": [{"TXT": "%{i} may not send for %{d}"}],
}


async def test_match_reports_lookups_and_no_explanation() -> None:
    outcome = await check_host("198.51.100.9", "example.com", "a@example.com", resolver=FakeDns(ZONE))
    assert (outcome.result, outcome.lookups, outcome.void_lookups, outcome.explanation) == (
        SpfResult.PASS,
        1,
        0,
        None,
    )
    assert "include:_spf.example.net" in outcome.reason


async def test_fail_counts_the_void_lookup_and_expands_the_explanation() -> None:
    outcome = await check_host("203.0.113.5", "example.com", "a@example.com", resolver=FakeDns(ZONE))
    assert outcome.to_json() == {
        "result": "fail",
        "reason": "example.com: matched -all",
        "explanation": "203.0.113.5 may not send for example.com",
        "lookups": 2,
        "void_lookups": 1,
    }


async def test_servfail_in_an_include_is_temperror_not_fail() -> None:
    dns = FakeDns(ZONE)
    dns.fail("_spf.example.net", "TXT", Rcode.SERVFAIL)
    outcome = await check_host("203.0.113.5", "example.com", "a@example.com", resolver=dns)
    assert outcome.result is SpfResult.TEMPERROR
    assert "SERVFAIL" in outcome.reason


async def test_timeout_on_an_a_target_is_temperror() -> None:
    dns = FakeDns(ZONE)
    dns.fail("gone.example.com", "A", Rcode.TIMEOUT)
    outcome = await check_host("203.0.113.5", "example.com", "a@example.com", resolver=dns)
    assert outcome.result is SpfResult.TEMPERROR


async def test_refused_on_the_record_itself_is_temperror_and_nxdomain_is_none() -> None:
    dns = FakeDns(ZONE)
    dns.fail("example.com", "TXT", Rcode.REFUSED)
    assert (
        await check_host("192.0.2.1", "example.com", "a@example.com", resolver=dns)
    ).result is SpfResult.TEMPERROR
    missing = await check_host("192.0.2.1", "nowhere.example.org", "a@nowhere.example.org", resolver=dns)
    assert missing.result is SpfResult.NONE


async def test_empty_mail_from_checks_postmaster_at_helo() -> None:
    zone = {"mta.example.org": [{"TXT": "v=spf1 -all exp=e.example.org"}], "e.example.org": [{"TXT": "%{s}"}]}
    outcome = await check_sender("192.0.2.1", "", "mta.example.org", resolver=FakeDns(zone))
    assert (outcome.result, outcome.explanation) == (SpfResult.FAIL, "postmaster@mta.example.org")


class _Silent:
    async def resolve(self, name: str, rdtype: str) -> DnsAnswer:
        await asyncio.sleep(10)
        raise AssertionError("unreachable")


async def test_the_deadline_gives_temperror() -> None:
    outcome = await check_host(
        "192.0.2.1", "example.com", "a@example.com", resolver=_Silent(), deadline_s=0.05
    )
    assert outcome.result is SpfResult.TEMPERROR
