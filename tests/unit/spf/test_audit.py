"""The worst-case audit: counts over the whole tree, even where check_host() matches early."""

from __future__ import annotations

from typing import Any

import pytest

from mecsa.checks.spf import evaluate
from mecsa.dns.answer import Rcode
from mecsa.model import VerdictStatus
from mecsa.spf.audit import IssueKind, audit_spf
from mecsa.spf.evaluator import SpfResult, check_host
from tests.unit.spf.fakedns import FakeDns


def _a_terms(count: int, prefix: str) -> str:
    return " ".join(f"a:{prefix}{n}.example.net" for n in range(count))


def _hosts(count: int, prefix: str) -> dict[str, list[Any]]:
    return {
        f"{prefix}{n}.example.net": [{"A": f"198.51.100.{n + 1}"}, {"AAAA": f"2001:db8::{n + 1}"}]
        for n in range(count)
    }


# The first branch matches 192.0.2.0/24 at once; the 11 lookups sit in a branch those IPs never reach.
BRANCHY = {
    "example.com": [{"TXT": "v=spf1 ip4:192.0.2.0/24 include:big.example.net -all"}],
    "big.example.net": [{"TXT": f"v=spf1 {_a_terms(10, 'h')} -all"}],
    **_hosts(10, "h"),
}


async def test_early_match_passes_but_the_audit_counts_eleven_lookups() -> None:
    dns = FakeDns(BRANCHY)
    early = await check_host("192.0.2.7", "example.com", "a@example.com", resolver=dns)
    assert (early.result, early.lookups) == (SpfResult.PASS, 0)
    late = await check_host("203.0.113.1", "example.com", "a@example.com", resolver=dns)
    assert late.result is SpfResult.PERMERROR

    audit = await audit_spf(dns, "example.com")
    assert audit.lookups == 11
    assert audit.root.lookups == 1
    assert audit.root.includes[0].total_lookups == 10
    kinds = [i.kind for i in audit.issues]
    assert kinds == [IssueKind.TOO_MANY_LOOKUPS]
    assert "include:big.example.net costs 10 lookup(s)" in audit.issues[0].evidence

    result = evaluate(audit)
    verdicts = {v.protocol: v.status for v in result.verdicts}
    # The 11th lookup ends a non-listed sender's evaluation in permerror (RFC 7208 §4.6.4): -all never
    # applies.
    assert verdicts == {"spf": VerdictStatus.FAIL, "spf_policy": VerdictStatus.FAIL}
    assert [f.id for f in result.findings] == ["spf.too_many_lookups", "spf_policy.invalid"]
    assert result.findings[0].remediation == "spf.reduce_lookups"


async def test_exactly_ten_lookups_pass() -> None:
    zone = {**BRANCHY, "big.example.net": [{"TXT": f"v=spf1 {_a_terms(9, 'h')} ~all"}]}
    audit = await audit_spf(FakeDns(zone), "example.com")
    assert (audit.lookups, audit.void_lookups, audit.issues) == (10, 0, ())
    result = evaluate(audit)
    assert [f.id for f in result.findings] == ["spf.valid", "spf_policy.fail_all"]
    assert all(v.status is VerdictStatus.PASS for v in result.verdicts)


async def test_void_lookups_are_counted_per_address_family() -> None:
    zone = {
        "example.com": [
            {"TXT": "v=spf1 a:v4only.example.com mx:nomx.example.com exists:nothing.example.com -all"}
        ],
        "v4only.example.com": [{"A": "198.51.100.1"}],
    }
    audit = await audit_spf(FakeDns(zone), "example.com")
    assert (audit.root.total_void4, audit.root.total_void6) == (2, 3)
    assert [i.kind for i in audit.issues] == [IssueKind.VOID_LOOKUPS]
    assert {v.protocol: v.status for v in evaluate(audit).verdicts}["spf"] is VerdictStatus.FAIL


async def test_a_servfail_in_an_include_is_an_error_with_its_chain() -> None:
    zone = {
        "example.com": [{"TXT": "v=spf1 include:mid.example.net -all"}],
        "mid.example.net": [{"TXT": "v=spf1 include:leaf.example.org ~all"}],
        "leaf.example.org": [{"TXT": "v=spf1 ip4:198.51.100.0/24 -all"}],
    }
    dns = FakeDns(zone)
    dns.fail("leaf.example.org", "TXT", Rcode.SERVFAIL)
    audit = await audit_spf(dns, "example.com")
    (issue,) = audit.issues
    assert issue.kind is IssueKind.LOOKUP_FAILED
    assert issue.chain == ("example.com", "include:mid.example.net", "include:leaf.example.org")
    result = evaluate(audit)
    # The receiver's evaluation would stop at that lookup; whether -all applies is unknown: error.
    assert {v.protocol: v.status for v in result.verdicts} == {
        "spf": VerdictStatus.ERROR,
        "spf_policy": VerdictStatus.ERROR,
    }
    assert (
        "path: example.com → include:mid.example.net → include:leaf.example.org"
        in result.findings[0].evidence
    )


async def test_a_missing_include_target_is_permerror_and_outranks_a_lookup_failure() -> None:
    zone = {
        "example.com": [{"TXT": "v=spf1 include:gone.example.net a:flaky.example.com -all"}],
    }
    dns = FakeDns(zone)
    dns.fail("flaky.example.com", "A", Rcode.TIMEOUT)
    audit = await audit_spf(dns, "example.com")
    kinds = sorted(i.kind.value for i in audit.issues)
    assert kinds == ["lookup_failed", "target_missing"]
    assert {v.protocol: v.status for v in evaluate(audit).verdicts}["spf"] is VerdictStatus.FAIL


async def test_include_loops_are_flagged() -> None:
    zone = {
        "example.com": [{"TXT": "v=spf1 include:b.example.com -all"}],
        "b.example.com": [{"TXT": "v=spf1 include:example.com -all"}],
    }
    audit = await audit_spf(FakeDns(zone), "example.com")
    assert [i.kind for i in audit.issues] == [IssueKind.LOOP]
    assert audit.issues[0].chain == ("example.com", "include:b.example.com", "include:example.com")


async def test_policy_follows_redirect_and_takes_the_first_all() -> None:
    redirected = {
        "example.com": [{"TXT": "v=spf1 ip4:192.0.2.1 redirect=_spf.example.com"}],
        "_spf.example.com": [{"TXT": "v=spf1 ip4:192.0.2.2 -all"}],
    }
    audit = await audit_spf(FakeDns(redirected), "example.com")
    assert (audit.policy.qualifier, audit.policy.chain) == ("-", ("example.com", "redirect=_spf.example.com"))
    assert audit.lookups == 1
    # "-all" appears in the text, but the +all before it is what applies (mecsa-st would pass this).
    open_door = {"example.com": [{"TXT": "v=spf1 +all -all"}]}
    result = evaluate(await audit_spf(FakeDns(open_door), "example.com"))
    policy = next(f for f in result.findings if f.protocol == "spf_policy")
    assert (policy.id, policy.remediation) == ("spf_policy.pass_all", "spf.end_with_all")
    # -all only inside an include does not apply to the domain's own senders.
    hidden = {
        "example.com": [{"TXT": "v=spf1 include:_i.example.com ?all"}],
        "_i.example.com": [{"TXT": "v=spf1 ip4:192.0.2.0/24 -all"}],
    }
    result = evaluate(await audit_spf(FakeDns(hidden), "example.com"))
    assert {v.protocol: v.status for v in result.verdicts} == {
        "spf": VerdictStatus.PASS,
        "spf_policy": VerdictStatus.FAIL,
    }


async def test_missing_multiple_and_broken_records() -> None:
    missing = evaluate(await audit_spf(FakeDns({"example.com": [{"A": "192.0.2.1"}]}), "example.com"))
    assert [f.id for f in missing.findings] == ["spf.missing", "spf_policy.missing"]
    two = {"example.com": [{"TXT": "v=spf1 -all"}, {"TXT": "v=spf1 ~all"}]}
    assert [f.id for f in evaluate(await audit_spf(FakeDns(two), "example.com")).findings] == [
        "spf.multiple",
        "spf_policy.invalid",
    ]
    broken = {"example.com": [{"TXT": "v=spf1 ip4:192.0.2.300 -all"}]}
    result = evaluate(await audit_spf(FakeDns(broken), "example.com"))
    assert result.findings[0].id == "spf.syntax"
    assert result.findings[0].evidence == ("v=spf1 ip4:192.0.2.300 -all", " " * 11 + "^")
    timeout = FakeDns({})
    timeout.fail("example.com", "TXT", Rcode.TIMEOUT)
    result = evaluate(await audit_spf(timeout, "example.com"))
    assert {v.protocol: v.status for v in result.verdicts} == {
        "spf": VerdictStatus.ERROR,
        "spf_policy": VerdictStatus.ERROR,
    }


async def test_ptr_and_long_records_warn_without_failing() -> None:
    long_record = "v=spf1 " + " ".join(f"ip4:198.51.100.{n}" for n in range(40)) + " ptr -all"
    strings = [long_record[i : i + 255] for i in range(0, len(long_record), 255)]
    assert len(long_record) > 512
    audit = await audit_spf(FakeDns({"example.com": [{"TXT": strings}]}), "example.com")
    ids = [f.id for f in evaluate(audit).findings]
    assert ids == ["spf.valid", "spf.too_long", "spf.ptr", "spf_policy.fail_all"]


STOPS_BEFORE_ALL = {
    "void lookups": {
        "example.com": [{"TXT": "v=spf1 a:n1.example.com a:n2.example.com a:n3.example.com -all"}],
    },
    "syntax error in an include": {
        "example.com": [{"TXT": "v=spf1 include:bad.example.net -all"}],
        "bad.example.net": [{"TXT": "v=spf1 ip4:192.0.2.300 -all"}],
    },
    "include without a record": {
        "example.com": [{"TXT": "v=spf1 include:gone.example.net ~all"}],
    },
    "include loop": {
        "example.com": [{"TXT": "v=spf1 include:b.example.com -all"}],
        "b.example.com": [{"TXT": "v=spf1 include:example.com -all"}],
    },
    "redirect to a record with too many lookups": {
        "example.com": [{"TXT": "v=spf1 redirect=big.example.net"}],
        "big.example.net": [{"TXT": f"v=spf1 {_a_terms(11, 'h')} -all"}],
        **_hosts(11, "h"),
    },
}


@pytest.mark.parametrize("case", sorted(STOPS_BEFORE_ALL))
async def test_spf_policy_is_invalid_when_evaluation_stops_before_all(case: str) -> None:
    audit = await audit_spf(FakeDns(STOPS_BEFORE_ALL[case]), "example.com")
    assert audit.policy.status == "invalid"
    assert audit.policy.qualifier is None
    assert "permerror" in audit.policy.detail
    result = evaluate(audit)
    policy = next(f for f in result.findings if f.protocol == "spf_policy")
    assert policy.id == "spf_policy.invalid"
    assert "permerror" in policy.message
    assert {v.protocol: v.status for v in result.verdicts}["spf_policy"] is VerdictStatus.FAIL
