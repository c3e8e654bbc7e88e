"""Message analysis: DKIM per signature, SPF for MAIL FROM and HELO, DMARC alignment and disposition."""

from __future__ import annotations

import datetime as dt

from mecsa.dns.resolver import Resolver
from mecsa.dns.zoneserver import Fault
from mecsa.mailmode.analysis import Connection, MessageAnalysis, TlsInfo, analyse_message
from mecsa.mailmode.dkimverify import DkimResult
from mecsa.mailmode.dmarceval import DmarcResult
from mecsa.observe.dmarc import DiscoveryMethod
from mecsa.records.dmarc import Policy
from mecsa.spf.evaluator import SpfResult
from tests.conftest import ServeZones
from tests.unit.mailmode.signing import message, sign_ed25519, sign_rsa
from tests.unit.mailmode.zones import OTHER_IP, SENDER_IP, zones

NOW = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def conn(
    ip: str = SENDER_IP, mail_from: str = "bounce@sender.test", helo: str = "mail.sender.test"
) -> Connection:
    return Connection(
        ip, 40000, helo, mail_from, ("abcdefgh12345678@receiver.test",), TlsInfo("TLSv1.3", "X", 256), NOW
    )


async def analyse(
    serve_zones: ServeZones,
    raw: bytes,
    connection: Connection | None = None,
    faults: dict[str, Fault] | None = None,
    method: DiscoveryMethod = DiscoveryMethod.TREEWALK,
) -> MessageAnalysis:
    client = await serve_zones(zones(), faults=faults)
    return await analyse_message(raw, connection or conn(), Resolver(client), method)


# --- DKIM ------------------------------------------------------------------------------------------


async def test_dkim_good_rsa_signature_passes_with_key_size(serve_zones: ServeZones) -> None:
    result = await analyse(serve_zones, sign_rsa(message(), "s1", "sender.test", "good"))
    (sig,) = result.dkim
    assert (sig.result, sig.domain, sig.selector, sig.algorithm) == (
        DkimResult.PASS, "sender.test", "s1", "rsa-sha256"
    )  # fmt: skip
    assert (sig.key_type, sig.key_bits) == ("rsa", 2048)
    assert "from" in sig.signed_headers


async def test_dkim_body_altered_fails_with_body_hash_reason(serve_zones: ServeZones) -> None:
    signed = sign_rsa(message(), "s1", "sender.test", "good")
    result = await analyse(serve_zones, signed.replace(b"Hello", b"Jello"))
    (sig,) = result.dkim
    assert sig.result is DkimResult.FAIL
    assert "body hash mismatch" in sig.reason


async def test_dkim_wrong_key_fails(serve_zones: ServeZones) -> None:
    # signed with key "other", but s1 publishes key "good"
    result = await analyse(serve_zones, sign_rsa(message(), "s1", "sender.test", "other"))
    (sig,) = result.dkim
    assert sig.result is DkimResult.FAIL
    assert "does not verify" in sig.reason and sig.key_bits == 2048


async def test_two_signatures_one_bad_are_judged_each(serve_zones: ServeZones) -> None:
    good = sign_rsa(message(), "s1", "sender.test", "good")
    both = sign_rsa(good, "s2", "sender.test", "not-published")  # the topmost signature is index 0
    result = await analyse(serve_zones, both)
    assert [(s.index, s.selector, s.result) for s in result.dkim] == [
        (0, "s2", DkimResult.FAIL),
        (1, "s1", DkimResult.PASS),
    ]
    assert result.dmarc.result is DmarcResult.PASS


async def test_ed25519_signature_passes(serve_zones: ServeZones) -> None:
    result = await analyse(serve_zones, sign_ed25519(message(), "e1", "sender.test", "ed"))
    (sig,) = result.dkim
    assert (sig.result, sig.algorithm, sig.key_type, sig.key_bits) == (
        DkimResult.PASS, "ed25519-sha256", "ed25519", 256
    )  # fmt: skip


async def test_missing_and_revoked_keys_are_permerrors(serve_zones: ServeZones) -> None:
    missing = sign_rsa(message(), "nosuch", "sender.test", "good")
    revoked = sign_rsa(missing, "revoked", "sender.test", "good")
    result = await analyse(serve_zones, revoked)
    assert [(s.selector, s.result) for s in result.dkim] == [
        ("revoked", DkimResult.PERMERROR),
        ("nosuch", DkimResult.PERMERROR),
    ]
    assert "revoked" in result.dkim[0].reason and "no key" in result.dkim[1].reason


async def test_key_lookup_failure_is_temperror_not_fail(serve_zones: ServeZones) -> None:
    raw = sign_rsa(message(), "s1", "sender.test", "good")
    result = await analyse(serve_zones, raw, faults={"s1._domainkey.sender.test": Fault.SERVFAIL})
    (sig,) = result.dkim
    assert sig.result is DkimResult.TEMPERROR and "SERVFAIL" in sig.reason


async def test_unsigned_message_has_no_signatures(serve_zones: ServeZones) -> None:
    result = await analyse(serve_zones, message())
    assert result.dkim == ()


# --- SPF -------------------------------------------------------------------------------------------


async def test_spf_pass_for_mail_from_and_helo(serve_zones: ServeZones) -> None:
    result = await analyse(serve_zones, message())
    assert (result.spf_mailfrom.domain, result.spf_mailfrom.outcome.result) == ("sender.test", SpfResult.PASS)
    assert (result.spf_helo.domain, result.spf_helo.outcome.result) == ("mail.sender.test", SpfResult.PASS)


async def test_spf_fail_for_an_ip_not_listed(serve_zones: ServeZones) -> None:
    result = await analyse(serve_zones, message(), conn(ip=OTHER_IP))
    assert result.spf_mailfrom.outcome.result is SpfResult.FAIL
    assert result.spf_helo.outcome.result is SpfResult.FAIL


async def test_spf_softfail(serve_zones: ServeZones) -> None:
    result = await analyse(serve_zones, message(), conn(ip=OTHER_IP, mail_from="x@soft.test"))
    assert (result.spf_mailfrom.domain, result.spf_mailfrom.outcome.result) == (
        "soft.test",
        SpfResult.SOFTFAIL,
    )


async def test_null_sender_uses_helo_identity_and_address_literal_helo_is_none(
    serve_zones: ServeZones,
) -> None:
    result = await analyse(serve_zones, message(), conn(mail_from="", helo="mail.sender.test"))
    assert (result.spf_mailfrom.domain, result.spf_mailfrom.outcome.result) == (
        "mail.sender.test",
        SpfResult.PASS,
    )
    literal = await analyse(serve_zones, message(), conn(helo="[127.0.0.10]"))
    assert literal.spf_helo.outcome.result is SpfResult.NONE


# --- DMARC -----------------------------------------------------------------------------------------


async def test_dmarc_aligned_by_spf_and_dkim(serve_zones: ServeZones) -> None:
    result = await analyse(serve_zones, sign_rsa(message(), "s1", "sender.test", "good"))
    dmarc = result.dmarc
    assert dmarc.result is DmarcResult.PASS
    assert dmarc.spf_aligned and dmarc.dkim_aligned_domains == ("sender.test",)
    assert (dmarc.policy, dmarc.policy_tag, dmarc.disposition) == (Policy.REJECT, "p", "none")


async def test_dmarc_unaligned_fails_with_reject(serve_zones: ServeZones) -> None:
    # SPF passes for other.test and DKIM passes for other.test: neither aligns with sender.test
    raw = sign_rsa(message(), "s1", "other.test", "good")
    result = await analyse(serve_zones, raw, conn(mail_from="b@other.test"))
    assert result.spf_mailfrom.outcome.result is SpfResult.PASS and result.dkim[0].result is DkimResult.PASS
    dmarc = result.dmarc
    assert dmarc.result is DmarcResult.FAIL
    assert not dmarc.spf_aligned and dmarc.dkim_aligned_domains == ()
    assert dmarc.disposition == "reject"
    assert "other.test" in dmarc.reason


async def test_dmarc_relaxed_aligns_subdomains(serve_zones: ServeZones) -> None:
    # DKIM d=mail.sender.test and MAIL FROM @mail.sender.test align with sender.test in relaxed mode
    raw = sign_rsa(message(), "s1", "mail.sender.test", "good")
    result = await analyse(serve_zones, raw, conn(mail_from="b@mail.sender.test"))
    assert result.dmarc.result is DmarcResult.PASS
    assert result.dmarc.spf_aligned and result.dmarc.dkim_aligned_domains == ("mail.sender.test",)
    assert result.dmarc.adkim == "r"


async def test_dmarc_strict_rejects_subdomains_and_reports_pct(serve_zones: ServeZones) -> None:
    raw = sign_rsa(message(from_addr="a@strict.test"), "s1", "mail.strict.test", "good")
    # RFC 7489 (PSL discovery) still applies pct=50
    result = await analyse(serve_zones, raw, conn(mail_from="b@mail.strict.test"), method=DiscoveryMethod.PSL)
    assert result.dkim[0].result is DkimResult.PASS
    assert result.spf_mailfrom.outcome.result is SpfResult.PASS
    dmarc = result.dmarc
    assert (dmarc.result, dmarc.adkim, dmarc.aspf) == (DmarcResult.FAIL, "s", "s")
    assert dmarc.disposition == "reject for 50% of such mail, quarantine for the rest"
    # RFC 9989 removed pct: the whole policy applies
    walked = (await analyse(serve_zones, raw, conn(mail_from="b@mail.strict.test"))).dmarc
    assert (walked.result, walked.disposition, walked.method) == (
        DmarcResult.FAIL,
        "reject",
        DiscoveryMethod.TREEWALK,
    )
    # the same message signed by strict.test itself aligns strictly
    exact = sign_rsa(message(from_addr="a@strict.test"), "s1", "strict.test", "good")
    assert (
        await analyse(serve_zones, exact, conn(mail_from="b@mail.strict.test"))
    ).dmarc.result is DmarcResult.PASS


async def test_sp_applies_to_existing_subdomain_and_np_to_nonexistent_one(serve_zones: ServeZones) -> None:
    sub = await analyse(serve_zones, message(from_addr="a@exists.sender.test"), conn(ip=OTHER_IP))
    assert (sub.dmarc.result, sub.dmarc.policy_tag, sub.dmarc.policy) == (
        DmarcResult.FAIL, "sp", Policy.QUARANTINE
    )  # fmt: skip
    assert sub.dmarc.record_domain == "sender.test" and sub.dmarc.domain_exists is True
    ghost = await analyse(serve_zones, message(from_addr="a@ghost.sender.test"), conn(ip=OTHER_IP))
    assert (ghost.dmarc.policy_tag, ghost.dmarc.policy, ghost.dmarc.domain_exists) == (
        "np",
        Policy.NONE,
        False,
    )
    org = await analyse(serve_zones, message(), conn(ip=OTHER_IP))
    assert (org.dmarc.policy_tag, org.dmarc.policy) == (
        "p",
        Policy.REJECT,
    )  # sp never applies to the org domain


async def test_dmarc_lookup_failure_is_temperror(serve_zones: ServeZones) -> None:
    result = await analyse(serve_zones, message(), faults={"_dmarc.sender.test": Fault.SERVFAIL})
    assert result.dmarc.result is DmarcResult.TEMPERROR


async def test_no_dmarc_record_is_none_and_two_from_fields_permerror(serve_zones: ServeZones) -> None:
    result = await analyse(serve_zones, message(from_addr="a@soft.test"), conn(mail_from="b@soft.test"))
    assert result.dmarc.result is DmarcResult.NONE
    twice = message(extra="From: other@other.test\r\n")
    assert (await analyse(serve_zones, twice)).dmarc.result is DmarcResult.PERMERROR


async def test_headers_are_read_for_information(serve_zones: ServeZones) -> None:
    extra = (
        "Authentication-Results: mx.example.net; spf=pass (good) smtp.mailfrom=sender.test;\r\n"
        " dkim=fail header.d=sender.test header.s=s1; dmarc=pass header.from=sender.test\r\n"
        "Received: from mail.sender.test (mail.sender.test [127.0.0.10])\r\n"
        " by mx.example.net (Postfix) with ESMTPS id 4ABC for <x@example.net>;\r\n"
        " Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    )
    result = await analyse(serve_zones, message(extra=extra))
    (ar,) = result.authentication_results
    assert ar.authserv_id == "mx.example.net"
    assert [(r.method, r.result) for r in ar.results] == [
        ("spf", "pass"),
        ("dkim", "fail"),
        ("dmarc", "pass"),
    ]
    assert ar.results[1].properties == {"header.d": "sender.test", "header.s": "s1"}
    (hop,) = result.received
    assert hop.ip == "127.0.0.10"
    assert hop.clauses == {"from": "mail.sender.test", "by": "mx.example.net", "with": "ESMTPS", "id": "4ABC",
                           "for": "x@example.net"}  # fmt: skip
    assert hop.date == "Mon, 1 Jan 2024 00:00:00 +0000"


async def test_dmarc_discovery_for_a_message_asks_only_for_the_policy(serve_zones: ServeZones) -> None:
    from mecsa.dns.resolver import Resolver
    from mecsa.mailmode.dmarceval import discover

    zone = (
        "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\n"
        '_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:d@reports.example.net"\n'
    )
    resolver = Resolver(await serve_zones({"example.test.": zone, "test.": zone.split("_dmarc")[0]}))
    found = await discover(resolver, "example.test")
    assert found.policy_lookup is not None
    assert found.policy_lookup.records == ("v=DMARC1; p=reject; rua=mailto:d@reports.example.net",)
    # Domain mode also asks example.test._report._dmarc.reports.example.net; a message's verdict does not.
    # The RFC 9989 walk goes on to the TLD (for the organisational domain); the PSL method does not.
    assert found.names == ("_dmarc.example.test", "_dmarc.test") and resolver.queries_sent == 2
    psl = Resolver(await serve_zones({"example.test.": zone}))
    assert (await discover(psl, "example.test", DiscoveryMethod.PSL)).names == ("_dmarc.example.test",)
    assert psl.queries_sent == 1
