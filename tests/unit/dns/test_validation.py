"""Our own chain walk over zones the tests sign with dns.dnssec, served on loopback: every link."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest

from mecsa.dns import zoneserver
from mecsa.dns.answer import DnsAnswer, DnssecStatus, Rcode
from mecsa.dns.resolver import Resolver
from mecsa.dns.signing import NOW, Signing, new_key
from mecsa.dns.validation.anchors import TrustAnchorError, iana_root_anchors, load_anchor_file
from mecsa.dns.validation.verdict import DnssecMode
from tests.conftest import ServeZones
from tests.unit.dns.world import World, client_for, key

SECURE_TOP = "secure (chain . → test. → top.test.)"


async def _resolve(serve_zones: ServeZones, world: World, name: str, rdtype: str, **kw: Any) -> DnsAnswer:
    resolver = Resolver(await client_for(serve_zones, world, **kw))
    return await resolver.resolve(name, rdtype)


async def test_secure_answer_names_its_chain_through_a_non_validating_server(serve_zones: ServeZones) -> None:
    answer = await _resolve(serve_zones, World(), "mx1.top.test", "A")
    assert answer.dnssec is DnssecStatus.SECURE
    assert answer.validation is not None and answer.validation.link == SECURE_TOP
    assert answer.validation.chain == (".", "test.", "top.test.")
    assert [rd.to_text() for rd in answer.records] == ["127.0.0.25"]
    assert answer.resolver_dnssec is None  # own mode does not ask for the resolver's opinion


async def test_secure_cname_chain_and_nsec_denials(serve_zones: ServeZones) -> None:
    resolver = Resolver(await client_for(serve_zones, World()))
    alias, nxdomain, nodata = await asyncio.gather(
        resolver.resolve("alias.top.test", "A"),
        resolver.resolve("nope.top.test", "A"),
        resolver.resolve("mx1.top.test", "MX"),
    )
    assert alias.dnssec is DnssecStatus.SECURE and alias.cname_chain == ("mx1.top.test",)
    assert nxdomain.rcode is Rcode.NXDOMAIN and nxdomain.dnssec is DnssecStatus.SECURE
    assert nxdomain.validation is not None
    assert (
        nxdomain.validation.link
        == "secure (chain . → test. → top.test.; NXDOMAIN for nope.top.test proven by NSEC)"
    )
    assert nodata.dnssec is DnssecStatus.SECURE and nodata.nodata
    assert nodata.validation is not None and "no MX at mx1.top.test proven by NSEC" in nodata.validation.link


async def test_nsec3_denials_are_proven(serve_zones: ServeZones) -> None:
    resolver = Resolver(await client_for(serve_zones, World()))
    nxdomain, nodata, deep = await asyncio.gather(
        resolver.resolve("nope.n3.test", "TXT"),
        resolver.resolve("mx1.n3.test", "TXT"),
        resolver.resolve("a.b.nope.n3.test", "A"),
    )
    for answer in (nxdomain, nodata, deep):
        assert answer.dnssec is DnssecStatus.SECURE, answer.validation
        assert answer.validation is not None and answer.validation.link.endswith("proven by NSEC3)")
    assert nxdomain.rcode is Rcode.NXDOMAIN and nodata.rcode is Rcode.NOERROR


async def test_expired_rrsig_over_tlsa_is_bogus_and_its_data_withheld(serve_zones: ServeZones) -> None:
    world = World(signing={"top.test.": Signing(expired={("_25._tcp.mx1.top.test.", "TLSA")})})
    answer = await _resolve(serve_zones, world, "_25._tcp.mx1.top.test", "TLSA")
    assert answer.dnssec is DnssecStatus.BOGUS
    assert answer.validation is not None
    assert answer.validation.link.startswith("bogus: RRSIG over _25._tcp.mx1.top.test TLSA expired 20")
    assert answer.rcode is Rcode.SERVFAIL and answer.records == ()  # bogus data is not handed on
    assert "expired" in answer.describe_failure()


async def test_rrsig_not_yet_valid_is_bogus(serve_zones: ServeZones) -> None:
    world = World(signing={"top.test.": Signing(inception=NOW + 86400, expiration=NOW + 2 * 86400)})
    answer = await _resolve(serve_zones, world, "mx1.top.test", "A")
    assert answer.dnssec is DnssecStatus.BOGUS
    assert answer.validation is not None and "is not valid before" in answer.validation.link


async def test_ds_with_a_wrong_digest_is_bogus(serve_zones: ServeZones) -> None:
    real = key("top.test.").ds("top.test.")
    wrong = f"{real.key_tag} {real.algorithm} 2 {'00' * 32}"
    answer = await _resolve(serve_zones, World(ds={"top.test.": [wrong]}), "mx1.top.test", "A")
    assert answer.dnssec is DnssecStatus.BOGUS
    assert answer.validation is not None
    assert answer.validation.link == (
        f"bogus: DS at test. for top.test. (key tag {real.key_tag}, alg 13) "
        "has a digest that matches no DNSKEY"
    )


async def test_ds_for_an_algorithm_the_child_lacks_is_bogus(serve_zones: ServeZones) -> None:
    other = new_key(15)  # Ed25519: the child signs with ECDSA only
    answer = await _resolve(
        serve_zones, World(ds={"top.test.": [other.ds("top.test.").to_text()]}), "mx1.top.test", "A"
    )
    assert answer.dnssec is DnssecStatus.BOGUS
    assert answer.validation is not None
    assert (
        answer.validation.link
        == f"bogus: DS at test. for top.test. (key tag {other.tag}, alg 15) matches no DNSKEY"
    )


async def test_ds_only_for_algorithms_not_validated_is_insecure(serve_zones: ServeZones) -> None:
    # RFC 4035 §5.2: DSA (3) is refused by RFC 8624, so the delegation counts as unsigned.
    world = World(ds={"top.test.": [f"12345 3 2 {'11' * 32}"]})
    answer = await _resolve(serve_zones, world, "mx1.top.test", "A")
    assert answer.dnssec is DnssecStatus.INSECURE
    assert answer.validation is not None and "lists only DSA (3)" in answer.validation.link


async def test_missing_dnskey_is_bogus(serve_zones: ServeZones) -> None:
    answer = await _resolve(
        serve_zones, World(signing={"top.test.": Signing(drop_dnskey=True)}), "mx1.top.test", "A"
    )
    assert answer.dnssec is DnssecStatus.BOGUS
    assert answer.validation is not None
    assert answer.validation.link.startswith(
        "bogus: no DNSKEY at top.test., though DS at test. for top.test."
    )


async def test_stripped_rrsig_in_a_signed_zone_is_bogus(serve_zones: ServeZones) -> None:
    world = World(signing={"top.test.": Signing(unsigned={("mx1.top.test.", "A")})})
    answer = await _resolve(serve_zones, world, "mx1.top.test", "A")
    assert answer.dnssec is DnssecStatus.BOGUS
    assert answer.validation is not None
    assert answer.validation.link.startswith(
        "bogus: no RRSIG over mx1.top.test A, though top.test. is signed"
    )


async def test_insecure_delegation_proven_by_nsec(serve_zones: ServeZones) -> None:
    answer = await _resolve(serve_zones, World(), "mx1.weak.test", "A")
    assert answer.dnssec is DnssecStatus.INSECURE
    assert answer.validation is not None
    assert answer.validation.link == "insecure (no DS for weak.test at test., proven by NSEC)"
    assert [rd.to_text() for rd in answer.records] == ["127.0.0.25"]


async def test_insecure_delegation_proven_by_nsec3_and_by_opt_out(serve_zones: ServeZones) -> None:
    for how, expected in (
        (Signing(denial="nsec3"), "NSEC3"),
        (Signing(denial="nsec3", opt_out=True), "NSEC3 opt-out"),
    ):
        answer = await _resolve(serve_zones, World(signing={"test.": how}), "mx1.weak.test", "A")
        assert answer.dnssec is DnssecStatus.INSECURE
        assert answer.validation is not None
        assert answer.validation.link == f"insecure (no DS for weak.test at test., proven by {expected})"


async def test_missing_ds_without_denial_proof_is_bogus(serve_zones: ServeZones) -> None:
    # test. signed without any NSEC: the absence of a DS for weak.test cannot be proven.
    answer = await _resolve(
        serve_zones, World(signing={"test.": Signing(denial="none")}), "mx1.weak.test", "A"
    )
    assert answer.dnssec is DnssecStatus.BOGUS
    assert answer.validation is not None
    assert (
        answer.validation.link == "bogus: no DS for weak.test at test., and no NSEC or NSEC3 record proves it"
    )


async def test_wildcard_expanded_tlsa_is_secure_with_nsec_and_nsec3(serve_zones: ServeZones) -> None:
    resolver = Resolver(await client_for(serve_zones, World()))
    for zone, how in (("top.test", "NSEC"), ("n3.test", "NSEC3")):
        answer = await resolver.resolve(f"_25._tcp.mx2.{zone}", "TLSA")
        assert answer.dnssec is DnssecStatus.SECURE, answer.validation
        assert answer.validation is not None
        assert f"expanded from *._tcp.mx2.{zone}., proven by {how}" in answer.validation.link
        assert len(answer.records) == 1


async def test_wildcard_expansion_without_denial_is_bogus(
    serve_zones: ServeZones, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = zoneserver.answer

    def no_authority(data: zoneserver.ZoneData, query: dns.message.Message) -> dns.message.Message | None:
        reply = real(data, query)
        if reply is not None and query.question[0].rdtype == dns.rdatatype.TLSA:
            reply.authority.clear()
        return reply

    monkeypatch.setattr(zoneserver, "answer", no_authority)
    answer = await _resolve(serve_zones, World(), "_25._tcp.mx2.top.test", "TLSA")
    assert answer.dnssec is DnssecStatus.BOGUS
    assert answer.validation is not None
    assert answer.validation.link == (
        "bogus: _25._tcp.mx2.top.test TLSA is expanded from the wildcard *._tcp.mx2.top.test. but "
        "no NSEC proves that _25._tcp.mx2.top.test. does not exist"
    )


async def test_nxdomain_with_tampered_denial_is_bogus(
    serve_zones: ServeZones, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = zoneserver.answer

    def keep_soa_only(data: zoneserver.ZoneData, query: dns.message.Message) -> dns.message.Message | None:
        reply = real(data, query)
        if reply is not None and query.question[0].name.to_text() == "nope.top.test.":
            reply.authority = [
                r
                for r in reply.authority
                if r.rdtype == dns.rdatatype.SOA
                or (r.rdtype == dns.rdatatype.RRSIG and r.covers == dns.rdatatype.SOA)
            ]
        return reply

    monkeypatch.setattr(zoneserver, "answer", keep_soa_only)
    answer = await _resolve(serve_zones, World(), "nope.top.test", "A")
    assert answer.dnssec is DnssecStatus.BOGUS
    assert answer.validation is not None
    assert answer.validation.link == (
        "bogus: NXDOMAIN for nope.top.test without a valid proof: no NSEC or NSEC3 record proves it"
    )


async def test_nsec3_iterations_over_the_rfc9276_limit_are_insecure(serve_zones: ServeZones) -> None:
    world = World(signing={"n3.test.": Signing(denial="nsec3", iterations=200)})
    resolver = Resolver(await client_for(serve_zones, world))
    negative, positive = await asyncio.gather(
        resolver.resolve("nope.n3.test", "A"), resolver.resolve("mx1.n3.test", "A")
    )
    assert negative.dnssec is DnssecStatus.INSECURE
    assert negative.validation is not None
    assert negative.validation.link == (
        "insecure (NSEC3 at n3.test. uses 200 iterations, over 150: treated as insecure, RFC 9276 §3.2)"
    )
    assert positive.dnssec is DnssecStatus.SECURE  # signatures still count; only the denial is weak


async def test_nsec3_with_some_iterations_is_secure_with_a_warning(serve_zones: ServeZones) -> None:
    world = World(signing={"n3.test.": Signing(denial="nsec3", iterations=10, salt=b"\xab\xcd")})
    answer = await _resolve(serve_zones, world, "nope.n3.test", "A")
    assert answer.dnssec is DnssecStatus.SECURE
    assert answer.validation is not None
    assert [n.text for n in answer.validation.notes] == [
        "NSEC3 at n3.test. uses 10 extra iterations; RFC 9276 §3.1 says 0"
    ]


async def test_rsasha1_and_short_rsa_keys_are_secure_but_flagged(serve_zones: ServeZones) -> None:
    sha1 = new_key(5, rsa_bits=1024)
    world = World(keys={"top.test.": [sha1]})
    answer = await _resolve(serve_zones, world, "mx1.top.test", "A")
    assert answer.dnssec is DnssecStatus.SECURE
    assert answer.validation is not None
    texts = [(n.level, n.text) for n in answer.validation.notes]
    assert (
        "warn",
        f"top.test. signs with RSASHA1 (5) (key {sha1.tag}): SHA-1 signing is deprecated (RFC 9905 §2)",
    ) in texts
    assert ("warn", f"top.test. key {sha1.tag} is RSA of 1024 bits, under 2048 (RFC 8624 §3.1)") in texts


async def test_ecdsa_chain_has_no_strength_notes(serve_zones: ServeZones) -> None:
    answer = await _resolve(serve_zones, World(), "mx1.top.test", "A")
    assert answer.validation is not None and answer.validation.notes == ()


async def test_wrong_trust_anchor_is_bogus_at_the_root(serve_zones: ServeZones) -> None:
    answer = await _resolve(serve_zones, World(), "mx1.top.test", "A", anchors=iana_root_anchors())
    assert answer.dnssec is DnssecStatus.BOGUS
    assert answer.validation is not None
    assert answer.validation.link == "bogus: DNSKEY at . matches no trust anchor (key tag 20326, 38696)"


async def test_unreachable_root_is_indeterminate_never_insecure(serve_zones: ServeZones) -> None:
    client = await serve_zones({"top.test.": World().zones()["top.test."]}, validating=False)
    own = Resolver(
        type(client)(
            client.nameservers,
            timeout=0.5,
            attempts=1,
            dnssec_mode=DnssecMode.OWN,
            trust_anchors=World().anchors(),
        )
    )
    answer = await own.resolve("mx1.top.test", "A")
    assert answer.dnssec is DnssecStatus.INDETERMINATE
    assert answer.validation is not None
    assert answer.validation.link == "indeterminate (could not fetch DS for top.test.: top.test. DS: REFUSED)"


async def test_both_mode_agrees_with_a_validating_resolver(serve_zones: ServeZones) -> None:
    client = await client_for(
        serve_zones, World(), DnssecMode.BOTH, validating=True, secure=(".", "test.", "top.test.")
    )
    answer = await Resolver(client).resolve("mx1.top.test", "A")
    assert answer.dnssec is DnssecStatus.SECURE and answer.resolver_dnssec is DnssecStatus.SECURE
    assert answer.disagreement is None


async def test_both_mode_reports_a_disagreement_and_keeps_the_stricter_verdict(
    serve_zones: ServeZones,
) -> None:
    world = World(signing={"top.test.": Signing(expired={("mx1.top.test.", "A")})})
    # The fake resolver sets AD on top.test. answers without checking: it disagrees with us.
    client = await client_for(
        serve_zones, world, DnssecMode.BOTH, validating=True, secure=(".", "test.", "top.test.")
    )
    answer = await Resolver(client).resolve("mx1.top.test", "A")
    assert answer.resolver_dnssec is DnssecStatus.SECURE
    assert answer.dnssec is DnssecStatus.BOGUS
    assert answer.disagreement is not None
    assert answer.disagreement.startswith("we say bogus: RRSIG over mx1.top.test A expired")
    assert answer.disagreement.endswith("the resolver says secure")


async def test_resolver_mode_asks_nothing_extra(serve_zones: ServeZones) -> None:
    client = await client_for(serve_zones, World(), DnssecMode.RESOLVER)
    resolver = Resolver(client)
    answer = await resolver.resolve("mx1.top.test", "A")
    assert answer.validation is None and resolver.validator is None and resolver.validation_queries == 0


async def test_zone_keys_are_fetched_once_per_assessment(serve_zones: ServeZones) -> None:
    seen: list[tuple[str, str, bool]] = []
    real = zoneserver.answer

    def counting(data: zoneserver.ZoneData, query: dns.message.Message) -> dns.message.Message | None:
        q = query.question[0]
        seen.append((q.name.to_text(), dns.rdatatype.to_text(q.rdtype), bool(query.flags & dns.flags.CD)))
        return real(data, query)

    resolver = Resolver(await client_for(serve_zones, World()))
    zoneserver.answer = counting
    try:
        answers = await asyncio.gather(
            *(
                resolver.resolve(n, t)
                for n, t in (("mx1.top.test", "A"), ("mx2.top.test", "A"), ("top.test", "TXT"))
            )
        )
    finally:
        zoneserver.answer = real
    assert all(a.dnssec is DnssecStatus.SECURE for a in answers)
    chain_questions = [q for q in seen if q[1] in ("DS", "DNSKEY")]
    assert sorted(chain_questions) == sorted(
        [
            (".", "DNSKEY", True),
            ("test.", "DS", True),
            ("test.", "DNSKEY", True),
            ("top.test.", "DS", True),
            ("top.test.", "DNSKEY", True),
        ]
    )
    assert resolver.validation_queries == 3 + 5  # the three answers (CD=1) and the chain


def test_built_in_anchors_are_iana_root_ksks() -> None:
    anchors = iana_root_anchors()
    assert sorted((ds.key_tag, ds.algorithm, ds.digest_type) for ds in anchors.ds[dns.name.root]) == [
        (20326, 8, 2),
        (38696, 8, 2),
    ]


def test_anchor_file_takes_dnskey_lines_and_refuses_junk(tmp_path: Path) -> None:
    good = tmp_path / "root.key"
    good.write_text(f". 3600 IN DNSKEY {key('.').dnskey.to_text()}\n", encoding="utf-8")
    anchors = load_anchor_file(good)
    assert [ds.key_tag for ds in anchors.ds[dns.name.root]] == [key(".").tag]
    bad = tmp_path / "bad.key"
    bad.write_text(". IN A 127.0.0.1\n", encoding="utf-8")
    with pytest.raises(TrustAnchorError, match="neither DS nor DNSKEY"):
        load_anchor_file(bad)
    with pytest.raises(TrustAnchorError, match=r"(?i)no such file"):
        load_anchor_file(tmp_path / "missing")


async def test_chain_walk_adds_about_one_round_trip_not_one_per_zone_cut(
    serve_zones: ServeZones, monkeypatch: pytest.MonkeyPatch
) -> None:
    delay = 0.2
    real = zoneserver._Udp.datagram_received

    def late(self: zoneserver._Udp, wire: bytes, addr: tuple[str, int]) -> None:
        asyncio.get_running_loop().call_later(delay, real, self, wire, addr)

    monkeypatch.setattr(zoneserver._Udp, "datagram_received", late)
    resolver = Resolver(await client_for(serve_zones, World()))
    started = asyncio.get_running_loop().time()
    answer = await resolver.resolve("mx1.top.test", "A")
    elapsed = asyncio.get_running_loop().time() - started
    assert answer.dnssec is DnssecStatus.SECURE
    # The answer (1 round trip), then DS/DNSKEY of top.test., test. and . all at once (1 more);
    # walking one zone cut at a time would take 4 round trips.
    assert 2 * delay <= elapsed < 3 * delay


async def test_a_resolver_that_strips_dnssec_records_makes_it_indeterminate_not_bogus(
    serve_zones: ServeZones, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = zoneserver.answer

    def stripping(data: zoneserver.ZoneData, query: dns.message.Message) -> dns.message.Message | None:
        reply = real(data, query)
        if reply is not None:
            for section in (reply.answer, reply.authority):
                section[:] = [r for r in section if r.rdtype not in (dns.rdatatype.RRSIG, dns.rdatatype.NSEC)]
        return reply

    monkeypatch.setattr(zoneserver, "answer", stripping)
    answer = await _resolve(serve_zones, World(), "mx1.top.test", "A")
    assert answer.dnssec is DnssecStatus.INDETERMINATE
    assert answer.validation is not None
    assert answer.validation.link == (
        "indeterminate (the resolver passes no signed DNSKEY for the trust anchor .: "
        "it does not pass DNSSEC records)"
    )
    assert [rd.to_text() for rd in answer.records] == ["127.0.0.25"]  # the data is still handed on


@pytest.mark.parametrize(("zone", "how"), [("top.test", "NSEC"), ("n3.test", "NSEC3")])
async def test_stripped_signatures_with_a_forged_apex_are_bogus_not_insecure(
    serve_zones: ServeZones, monkeypatch: pytest.MonkeyPatch, zone: str, how: str
) -> None:
    """A downgrade: strip the RRSIG, claim the name is an unsigned zone's apex; the parent's NSEC
    at that name (no DS, but no NS either) must not pass for an insecure delegation."""
    real = zoneserver.answer
    host = dns.name.from_text(f"mx1.{zone}")

    def forging(data: zoneserver.ZoneData, query: dns.message.Message) -> dns.message.Message | None:
        reply = real(data, query)
        question = query.question[0]
        if reply is None or question.name != host:
            return reply
        reply.answer = [r for r in reply.answer if r.rdtype != dns.rdatatype.RRSIG]
        if question.rdtype == dns.rdatatype.SOA:
            reply.set_rcode(dns.rcode.NOERROR)
            reply.authority.clear()
            reply.answer.append(
                dns.rrset.from_text(host, 300, "IN", "SOA", f"ns.{zone}. h.{zone}. 1 300 300 300 300")
            )
        return reply

    monkeypatch.setattr(zoneserver, "answer", forging)
    answer = await _resolve(serve_zones, World(), f"mx1.{zone}", "A")
    assert answer.dnssec is DnssecStatus.BOGUS, answer.validation
    assert answer.validation is not None
    assert answer.validation.link == (
        f"bogus: no DS for mx1.{zone} at {zone}., and mx1.{zone}. is no delegation in {zone}. "
        + ("(its NSEC has no NS bit)" if how == "NSEC" else "(NSEC3 without NS bit)")
    )


async def test_parent_side_nsec_cannot_deny_names_below_a_delegation(serve_zones: ServeZones) -> None:
    # weak.test is delegated (unsigned) from test.: test. must not be able to deny x.weak.test.
    from mecsa.dns.validation.denial import nsec_nxdomain

    world_zones = World().zones()
    tld = dns.zone.from_text(world_zones["test."], origin="test.", relativize=False, check_origin=False)
    nsecs = []
    for name, node in tld.nodes.items():
        found = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.NSEC)
        if found is not None:
            nsecs.append(dns.rrset.from_rdata_list(name, 300, list(found)))
    proof = nsec_nxdomain(dns.name.from_text("x.weak.test."), nsecs, dns.name.from_text("test."))
    assert not proof.proven
    assert proof.detail == "weak.test. is a delegation: its parent cannot deny x.weak.test."


async def test_a_denial_from_an_unrelated_zone_proves_nothing(
    serve_zones: ServeZones, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NXDOMAIN for nope.n3.test carrying top.test.'s SOA and NSECs: top.test.'s last NSEC wraps
    round and "covers" every name before its apex, but it cannot speak for another zone."""
    real = zoneserver.answer
    target = dns.name.from_text("nope.n3.test.")

    def borrowing(data: zoneserver.ZoneData, query: dns.message.Message) -> dns.message.Message | None:
        question = query.question[0]
        if question.name != target:
            return real(data, query)
        borrowed = dns.message.make_query("nope.top.test.", question.rdtype, want_dnssec=True)
        borrowed.flags = query.flags
        reply = real(data, borrowed)
        assert reply is not None
        reply.id = query.id
        reply.question = query.question
        zone = data.zones[dns.name.from_text("top.test.")]
        for name, node in zone.nodes.items():  # every NSEC, the wrap-around one included
            for rdataset in node.rdatasets:
                wanted = dns.rdatatype.NSEC in (rdataset.rdtype, rdataset.covers)
                if wanted and name != dns.name.from_text("top.test."):
                    reply.authority.append(dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset)))
        return reply

    monkeypatch.setattr(zoneserver, "answer", borrowing)
    answer = await _resolve(serve_zones, World(), "nope.n3.test", "A")
    assert answer.dnssec is DnssecStatus.BOGUS, answer.validation
    assert answer.validation is not None
    assert (
        answer.validation.link
        == "bogus: NXDOMAIN for nope.n3.test comes with the SOA of top.test., not of a zone above it"
    )


async def test_a_forged_rrsig_cannot_hide_a_wildcard_expansion(
    serve_zones: ServeZones, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = zoneserver.answer

    def forging(data: zoneserver.ZoneData, query: dns.message.Message) -> dns.message.Message | None:
        reply = real(data, query)
        if reply is None or query.question[0].rdtype != dns.rdatatype.TLSA:
            return reply
        reply.authority.clear()  # no proof that the name itself does not exist
        sigs = next(r for r in reply.answer if r.rdtype == dns.rdatatype.RRSIG)
        good = sigs[0]
        forged = good.replace(labels=len(sigs.name) - 1, signature=b"\x00" * len(good.signature))
        reply.answer[reply.answer.index(sigs)] = dns.rrset.from_rdata_list(
            sigs.name, sigs.ttl, [forged, good]
        )
        return reply

    monkeypatch.setattr(zoneserver, "answer", forging)
    answer = await _resolve(serve_zones, World(), "_25._tcp.mx2.top.test", "TLSA")
    assert answer.dnssec is DnssecStatus.BOGUS, answer.validation
    assert (
        answer.validation is not None
        and "is expanded from the wildcard *._tcp.mx2.top.test." in answer.validation.link
    )


@pytest.mark.parametrize(
    ("inception", "expiration", "expect"),
    [
        (NOW + 1800, NOW + 30 * 86400, DnssecStatus.SECURE),  # 30 min ahead: inside the 24 h skew
        (NOW - 30 * 86400, NOW - 1800, DnssecStatus.SECURE),  # expired 30 min ago: inside it too
        (NOW + 3 * 86400, NOW + 30 * 86400, DnssecStatus.BOGUS),  # 3 days ahead: beyond it
        (
            NOW - 86400 - 10800,
            NOW - 10800,
            DnssecStatus.BOGUS,
        ),  # a 1-day window allows 2.4 h; 3 h is too late
    ],
)
async def test_signature_times_allow_the_skew_validators_allow(
    serve_zones: ServeZones, inception: int, expiration: int, expect: DnssecStatus
) -> None:
    world = World(signing={"top.test.": Signing(inception=inception, expiration=expiration)})
    answer = await _resolve(serve_zones, world, "mx1.top.test", "A")
    assert answer.dnssec is expect, answer.validation


async def test_a_cname_synthesised_from_a_signed_dname_is_secure(
    serve_zones: ServeZones, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = zoneserver.answer
    qname = dns.name.from_text("mx1.old.top.test.")

    def with_dname(data: zoneserver.ZoneData, query: dns.message.Message) -> dns.message.Message | None:
        if query.question[0].name != qname:
            return real(data, query)
        target = dns.message.make_query("mx1.top.test.", query.question[0].rdtype, want_dnssec=True)
        target.flags = query.flags
        reply = real(data, target)
        assert reply is not None
        reply.id, reply.question = query.id, query.question
        zone = data.zones[dns.name.from_text("top.test.")]
        owner = dns.name.from_text("old.top.test.")
        node = zone.nodes[owner]
        dname = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.DNAME)
        sig = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, dns.rdatatype.DNAME)
        assert dname is not None and sig is not None
        synthesised = dns.rrset.from_text(qname, 300, "IN", "CNAME", "mx1.top.test.")  # unsigned, as served
        reply.answer[:0] = [
            dns.rrset.from_rdata_list(owner, dname.ttl, list(dname)),
            dns.rrset.from_rdata_list(owner, sig.ttl, list(sig)),
            synthesised,
        ]
        return reply

    monkeypatch.setattr(zoneserver, "answer", with_dname)
    world = World(extra={"top.test.": "old IN DNAME top.test.\n"})
    answer = await _resolve(serve_zones, world, "mx1.old.top.test", "A")
    assert answer.dnssec is DnssecStatus.SECURE, answer.validation
    assert [rd.to_text() for rd in answer.records] == ["127.0.0.25"]


async def test_below_a_proven_insecure_delegation_no_zone_is_looked_for(
    serve_zones: ServeZones, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    real = zoneserver.answer

    def counting(data: zoneserver.ZoneData, query: dns.message.Message) -> dns.message.Message | None:
        q = query.question[0]
        asked.append(f"{q.name} {dns.rdatatype.to_text(q.rdtype)}")
        return real(data, query)

    monkeypatch.setattr(zoneserver, "answer", counting)
    resolver = Resolver(await client_for(serve_zones, World()))
    first = await resolver.resolve("mx1.weak.test", "A")
    then = await resolver.resolve("_25._tcp.mx1.weak.test", "TLSA")
    assert first.dnssec is then.dnssec is DnssecStatus.INSECURE
    assert then.validation is not None
    assert then.validation.link == "insecure (no DS for weak.test at test., proven by NSEC)"
    assert "_25._tcp.mx1.weak.test. SOA" not in asked  # weak.test. was already settled


async def test_mx_hosts_addresses_are_asked_while_the_mx_answer_is_validated(
    serve_zones: ServeZones, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MX, then the chain walk and the MX host's A/AAAA at once: 2 round trips to the addresses, not 3."""
    delay = 0.2
    real = zoneserver._Udp.datagram_received

    def late(self: zoneserver._Udp, wire: bytes, addr: tuple[str, int]) -> None:
        asyncio.get_running_loop().call_later(delay, real, self, wire, addr)

    monkeypatch.setattr(zoneserver._Udp, "datagram_received", late)
    resolver = Resolver(await client_for(serve_zones, World()))
    started = asyncio.get_running_loop().time()
    mx = await resolver.resolve("top.test", "MX")
    assert mx.dnssec is DnssecStatus.SECURE
    address = await resolver.resolve("mx1.top.test", "A")  # what observe_mx asks next
    elapsed = asyncio.get_running_loop().time() - started
    assert address.dnssec is DnssecStatus.SECURE and [r.to_text() for r in address.records] == ["127.0.0.25"]
    assert 2 * delay <= elapsed < 3 * delay
