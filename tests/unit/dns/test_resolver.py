"""The resolver against the in-process DNS server on loopback: rcodes, DNSSEC status, cache, TCP."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import dns.flags
import dns.message
import pytest

from mecsa.dns import zoneserver
from mecsa.dns.answer import DnssecStatus, Rcode
from mecsa.dns.resolver import Nameserver, Resolver, ResolverConfigError, parse_nameserver
from mecsa.dns.zoneserver import Fault, ZoneData
from tests.conftest import ServeZones

HEAD = "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\nns IN A 127.0.0.53\n"
BODY = (
    '@ IN TXT "v=spf1 -all"\n'
    "www IN A 127.0.0.7\n"
    "alias IN CNAME hop\n"
    "hop IN CNAME final\n"
    "final IN A 127.0.0.9\n"
    "sub.deep IN A 127.0.0.10\n"
    'big IN TXT "' + "x" * 200 + '" "' + "y" * 200 + '"\n'
)
ZONES = {"example.test.": HEAD + BODY}

Seen = Counter[tuple[str, str, bool]]


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> Seen:
    """Count the questions the loopback server receives: (name, type, CD bit)."""
    counts: Seen = Counter()
    real = zoneserver.answer

    def counting(data: ZoneData, query: dns.message.Message) -> dns.message.Message | None:
        q = query.question[0]
        counts[(q.name.to_text(), dns.rdatatype.to_text(q.rdtype), bool(query.flags & dns.flags.CD))] += 1
        return real(data, query)

    monkeypatch.setattr(zoneserver, "answer", counting)
    return counts


async def _resolver(serve_zones: ServeZones, **kw: object) -> Resolver:
    return Resolver(await serve_zones(ZONES, **kw))


async def test_noerror_with_records(serve_zones: ServeZones) -> None:
    answer = await (await _resolver(serve_zones)).resolve("www.example.test", "A")
    assert answer.rcode is Rcode.NOERROR
    assert [rd.to_text() for rd in answer.records] == ["127.0.0.7"]
    assert answer.ttl == 300 and answer.ok and not answer.nodata


async def test_nxdomain_is_an_answer_not_a_failure(serve_zones: ServeZones) -> None:
    answer = await (await _resolver(serve_zones)).resolve("nope.example.test", "A")
    assert answer.rcode is Rcode.NXDOMAIN
    assert answer.ok and not answer.failed and not answer.exists and answer.records == ()


async def test_nodata_for_missing_type_and_empty_non_terminal(serve_zones: ServeZones) -> None:
    resolver = await _resolver(serve_zones)
    missing_type, empty_non_terminal = await asyncio.gather(
        resolver.resolve("www.example.test", "MX"), resolver.resolve("deep.example.test", "A")
    )
    for answer in (missing_type, empty_non_terminal):
        assert answer.rcode is Rcode.NOERROR and answer.nodata and answer.exists


async def test_servfail_is_a_failure(serve_zones: ServeZones) -> None:
    resolver = await _resolver(serve_zones, faults={"www.example.test/A": Fault.SERVFAIL})
    answer = await resolver.resolve("www.example.test", "A")
    assert answer.rcode is Rcode.SERVFAIL and answer.failed and answer.records == ()
    assert "SERVFAIL" in answer.describe_failure()


async def test_refused_is_a_failure(serve_zones: ServeZones) -> None:
    resolver = await _resolver(serve_zones, faults={"www.example.test": Fault.REFUSED})
    answer = await resolver.resolve("www.example.test", "A")
    assert answer.rcode is Rcode.REFUSED and answer.failed


async def test_timeout_comes_back_within_the_bound(serve_zones: ServeZones) -> None:
    resolver = await _resolver(
        serve_zones, faults={"www.example.test": Fault.TIMEOUT}, dns_timeout=0.2, attempts=2
    )
    started = time.monotonic()
    answer = await resolver.resolve("www.example.test", "A")
    elapsed = time.monotonic() - started
    assert answer.rcode is Rcode.TIMEOUT and answer.failed
    assert answer.dnssec is DnssecStatus.INDETERMINATE
    assert 0.35 <= elapsed < 1.0  # two attempts of 0.2 s, no more
    assert "no reply" in (answer.detail or "")


async def test_truncated_udp_reply_is_retried_over_tcp(serve_zones: ServeZones, seen: Seen) -> None:
    resolver = await _resolver(serve_zones, faults={"big.example.test/TXT": Fault.TRUNCATE})
    answer = await resolver.resolve("big.example.test", "TXT")
    assert answer.rcode is Rcode.NOERROR
    assert answer.texts() == ("x" * 200 + "y" * 200,)
    assert seen[("big.example.test.", "TXT", False)] == 2  # the empty UDP reply, then TCP


async def test_cname_chain_is_followed_and_recorded(serve_zones: ServeZones) -> None:
    answer = await (await _resolver(serve_zones)).resolve("alias.example.test", "A")
    assert [rd.to_text() for rd in answer.records] == ["127.0.0.9"]
    assert answer.cname_chain == ("hop.example.test", "final.example.test")


async def test_ad_bit_means_secure_including_negative_answers(serve_zones: ServeZones) -> None:
    resolver = await _resolver(serve_zones, secure=["example.test."])
    positive, negative = await asyncio.gather(
        resolver.resolve("www.example.test", "A"), resolver.resolve("_dmarc.example.test", "TXT")
    )
    assert positive.dnssec is DnssecStatus.SECURE
    assert negative.rcode is Rcode.NXDOMAIN and negative.dnssec is DnssecStatus.SECURE


async def test_validating_resolver_without_ad_means_insecure(serve_zones: ServeZones) -> None:
    resolver = await _resolver(serve_zones, validating=True)
    assert (await resolver.resolve("www.example.test", "A")).dnssec is DnssecStatus.INSECURE
    assert await resolver.client.validates()


async def test_non_validating_resolver_is_indeterminate_never_insecure(serve_zones: ServeZones) -> None:
    resolver = await _resolver(serve_zones, secure=["example.test."], validating=False)
    answers = await asyncio.gather(
        resolver.resolve("www.example.test", "A"), resolver.resolve("nope.example.test", "A")
    )
    assert [a.dnssec for a in answers] == [DnssecStatus.INDETERMINATE] * 2
    assert not await resolver.client.validates()


async def test_bogus_from_dnssec_ede_without_shopping_around(serve_zones: ServeZones, seen: Seen) -> None:
    resolver = await _resolver(
        serve_zones, secure=["example.test."], faults={"www.example.test": Fault.BOGUS}
    )
    answer = await resolver.resolve("www.example.test", "A")
    assert answer.rcode is Rcode.SERVFAIL and answer.dnssec is DnssecStatus.BOGUS
    assert answer.ede == ((6, "signature invalid"),)
    assert seen[("www.example.test.", "A", False)] == 1  # EDE is final: no retry
    assert seen[("www.example.test.", "A", True)] == 0


async def test_bogus_from_data_that_only_comes_with_checking_disabled(
    serve_zones: ServeZones, seen: Seen
) -> None:
    resolver = await _resolver(
        serve_zones, secure=["example.test."], faults={"www.example.test": Fault.BOGUS_NO_EDE}
    )
    answer = await resolver.resolve("www.example.test", "A")
    assert answer.rcode is Rcode.SERVFAIL and answer.ede == ()
    assert answer.dnssec is DnssecStatus.BOGUS
    assert seen[("www.example.test.", "A", True)] == 1


async def test_plain_servfail_is_not_bogus(serve_zones: ServeZones, seen: Seen) -> None:
    resolver = await _resolver(
        serve_zones, secure=["example.test."], faults={"www.example.test": Fault.SERVFAIL}
    )
    answer = await resolver.resolve("www.example.test", "A")
    assert answer.dnssec is DnssecStatus.INDETERMINATE
    # the CD retry was tried, and failed on both attempts too
    assert seen[("www.example.test.", "A", True)] == 2


async def test_concurrent_identical_questions_share_one_query(serve_zones: ServeZones, seen: Seen) -> None:
    resolver = await _resolver(serve_zones, secure=["example.test."])
    answers = await asyncio.gather(
        resolver.resolve("www.example.test", "A"),
        resolver.resolve("WWW.Example.Test.", "A"),
        resolver.resolve("www.example.test", "A"),
    )
    assert all(a is answers[0] for a in answers)
    assert seen[("www.example.test.", "A", False)] == 1
    assert resolver.queries_sent == 1


async def test_each_assessment_has_its_own_cache(serve_zones: ServeZones, seen: Seen) -> None:
    client = await serve_zones(ZONES, secure=["example.test."])
    await Resolver(client).resolve("www.example.test", "A")
    await Resolver(client).resolve("www.example.test", "A")
    assert seen[("www.example.test.", "A", False)] == 2


async def test_invalid_name_is_formerr_without_a_query(serve_zones: ServeZones) -> None:
    resolver = await _resolver(serve_zones)
    answer = await resolver.resolve("a" * 64 + ".example.test", "A")
    assert answer.rcode is Rcode.FORMERR and answer.failed
    assert resolver.queries_sent == 0


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("127.0.0.1", Nameserver("127.0.0.1", 53)),
        (" 127.0.0.1:5353 ", Nameserver("127.0.0.1", 5353)),
        ("[::1]:5353", Nameserver("::1", 5353)),
        ("[::1]", Nameserver("::1", 53)),
        ("::1", Nameserver("::1", 53)),
    ],
)
def test_parse_nameserver_accepts(spec: str, expected: Nameserver) -> None:
    assert parse_nameserver(spec) == expected


def test_nameserver_prints_back_in_the_same_syntax() -> None:
    assert str(Nameserver("::1", 5353)) == "[::1]:5353"
    assert str(Nameserver("127.0.0.1")) == "127.0.0.1:53"


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "resolver.example",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:dns",
        "[::1",
        "[::1]5353",
        "[::1]:",
    ],
)
def test_parse_nameserver_rejects(spec: str) -> None:
    with pytest.raises(ResolverConfigError):
        parse_nameserver(spec)
