"""Mail mode's DMARC under RFC 9989 (walk, psd, np, t) beside RFC 7489 (PSL), on a loopback zone server."""

from __future__ import annotations

from mecsa.dns.resolver import Resolver
from mecsa.mailmode.dkimverify import DkimResult, DkimSignatureResult
from mecsa.mailmode.dmarceval import (
    DmarcEvaluation,
    DmarcResult,
    FromDomain,
    alignment_domains,
    discover,
    domain_exists,
    evaluate_dmarc,
)
from mecsa.observe.dmarc import DiscoveryMethod
from mecsa.records.dmarc import Policy
from mecsa.spf.evaluator import SpfResult
from tests.conftest import ServeZones

HEAD = "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\nns IN A 127.0.0.53\n"
ZONES = {
    # a public suffix operator's policy for the whole fake TLD
    "test.": HEAD
    + '_dmarc IN TXT "v=DMARC1; p=reject; sp=none; np=reject; psd=y; rua=mailto:psd@nic.test"\n',
    "walk.test.": HEAD + "@ IN MX 10 mx\nmx IN A 127.0.0.20\n",
    "two.test.": HEAD
    + "@ IN MX 10 mx.walk.test.\n"
    + '_dmarc IN TXT "v=DMARC1; p=reject"\n_dmarc IN TXT "v=DMARC1; p=none"\n',
    "testing.test.": HEAD + '_dmarc IN TXT "v=DMARC1; p=reject; t=y; rua=mailto:d@testing.test"\n',
    "island.test.": HEAD
    + '_dmarc IN TXT "v=DMARC1; p=none; rua=mailto:d@island.test"\n'
    + '_dmarc.dept IN TXT "v=DMARC1; p=reject; psd=n"\n'
    + "mail.dept IN A 127.0.0.21\n",
}


async def _judge(
    serve_zones: ServeZones,
    author: str,
    method: DiscoveryMethod = DiscoveryMethod.TREEWALK,
    *,
    dkim_domain: str | None = None,
) -> DmarcEvaluation:
    resolver = Resolver(await serve_zones(ZONES))
    discovery = await discover(resolver, author, method)
    found = discovery.policy_lookup
    exists = await domain_exists(resolver, author) if found and found.domain != author else True
    dkim = (
        [DkimSignatureResult(0, DkimResult.PASS, "", dkim_domain, "s1", "rsa-sha256")] if dkim_domain else []
    )
    orgs = await alignment_domains(resolver, discovery, [dkim_domain])
    return evaluate_dmarc(
        FromDomain(author, (f"a@{author}",)),
        discovery,
        spf_domain=None,
        spf_result=SpfResult.FAIL,
        dkim=dkim,
        exists=exists,
        orgs=orgs,
    )


async def test_np_of_the_psd_applies_to_an_nxdomain_subdomain_only_by_the_walk(
    serve_zones: ServeZones,
) -> None:
    walked = await _judge(serve_zones, "ghost.walk.test")
    assert walked.names_asked == ("_dmarc.ghost.walk.test", "_dmarc.walk.test", "_dmarc.test")
    assert (walked.result, walked.policy_tag, walked.policy, walked.domain_exists) == (
        DmarcResult.FAIL, "np", Policy.REJECT, False
    )  # fmt: skip
    assert (walked.record_domain, walked.org_domain, walked.disposition) == ("test", "walk.test", "reject")
    # RFC 7489: the PSL makes walk.test the organisational domain, and it has no record
    psl = await _judge(serve_zones, "ghost.walk.test", DiscoveryMethod.PSL)
    assert (psl.result, psl.names_asked) == (DmarcResult.NONE, ("_dmarc.ghost.walk.test", "_dmarc.walk.test"))


async def test_existing_subdomain_gets_the_psd_sp(serve_zones: ServeZones) -> None:
    walked = await _judge(serve_zones, "mx.walk.test")
    assert (walked.policy_tag, walked.policy, walked.domain_exists) == ("sp", Policy.NONE, True)


async def test_two_records_at_one_name_are_discarded_and_the_walk_goes_on(serve_zones: ServeZones) -> None:
    walked = await _judge(serve_zones, "two.test")
    assert (walked.record_domain, walked.policy_tag, walked.policy) == ("test", "sp", Policy.NONE)
    # RFC 7489 §6.6.3 step 5: several records end discovery with no policy
    assert (await _judge(serve_zones, "two.test", DiscoveryMethod.PSL)).result is DmarcResult.NONE


async def test_t_y_asks_for_the_next_weaker_policy(serve_zones: ServeZones) -> None:
    walked = await _judge(serve_zones, "testing.test")
    assert (walked.result, walked.policy, walked.testing) == (DmarcResult.FAIL, Policy.REJECT, True)
    assert walked.disposition == "quarantine (t=y: testing reject)"
    # an RFC 7489 receiver does not know t=
    psl = await _judge(serve_zones, "testing.test", DiscoveryMethod.PSL)
    assert (psl.testing, psl.disposition) == (False, "reject")


async def test_psd_n_makes_an_organisational_domain_for_alignment(serve_zones: ServeZones) -> None:
    # dept.island.test declares itself an organisational domain: island.test no longer aligns
    walked = await _judge(serve_zones, "mail.dept.island.test", dkim_domain="island.test")
    assert (walked.org_domain, walked.record_domain, walked.result) == (
        "dept.island.test", "dept.island.test", DmarcResult.FAIL
    )  # fmt: skip
    assert walked.dkim_aligned_domains == ()
    # the PSL sees one organisation, island.test: relaxed alignment passes
    psl = await _judge(serve_zones, "mail.dept.island.test", DiscoveryMethod.PSL, dkim_domain="island.test")
    assert (psl.org_domain, psl.result, psl.dkim_aligned_domains) == (
        "island.test",
        DmarcResult.PASS,
        ("island.test",),
    )
