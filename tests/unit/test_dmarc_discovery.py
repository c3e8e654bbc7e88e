"""RFC 9989 §4.10 tree walk and RFC 7489 PSL discovery, against a loopback zone server."""

from __future__ import annotations

import pytest

from mecsa.dns.resolver import Resolver
from mecsa.dns.zoneserver import Fault
from mecsa.observe.dmarc import (
    MAX_WALK_QUERIES,
    DiscoveryMethod,
    discover,
    organisational_domain,
    walk_targets,
)
from tests.conftest import ServeZones

HEAD = "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\nns IN A 127.0.0.53\n"
TWELVE = "a.b.c.d.e.f.g.h.i.j.example.test"


def test_walk_targets_of_a_short_name_are_the_name_and_every_ancestor() -> None:
    assert walk_targets("a.mail.example.com") == (
        "a.mail.example.com",
        "mail.example.com",
        "example.com",
        "com",
    )


def test_walk_targets_skip_to_seven_labels_after_the_first_question() -> None:
    # RFC 9989 §4.10's own example (13 labels): eight queries, the second at seven labels
    assert walk_targets("a.b.c.d.e.f.g.h.i.j.mail.example.com") == (
        "a.b.c.d.e.f.g.h.i.j.mail.example.com",
        "g.h.i.j.mail.example.com",
        "h.i.j.mail.example.com",
        "i.j.mail.example.com",
        "j.mail.example.com",
        "mail.example.com",
        "example.com",
        "com",
    )


@pytest.mark.parametrize("labels", range(1, 16))
def test_no_walk_asks_more_than_eight_names(labels: int) -> None:
    name = ".".join(f"l{i}" for i in range(labels))
    targets = walk_targets(name)
    assert len(targets) == min(labels, MAX_WALK_QUERIES)
    assert targets[0] == name and targets[-1] == f"l{labels - 1}"


async def test_walk_of_a_12_label_name_asks_eight_questions(serve_zones: ServeZones) -> None:
    zones = {"example.test.": HEAD, "test.": HEAD}
    resolver = Resolver(await serve_zones(zones))
    found = await discover(resolver, TWELVE, DiscoveryMethod.TREEWALK)
    assert found.names == (
        f"_dmarc.{TWELVE}",
        "_dmarc.f.g.h.i.j.example.test",
        "_dmarc.g.h.i.j.example.test",
        "_dmarc.h.i.j.example.test",
        "_dmarc.i.j.example.test",
        "_dmarc.j.example.test",
        "_dmarc.example.test",
        "_dmarc.test",
    )
    assert resolver.queries_sent == 8
    assert found.policy_lookup is None and found.organisational_domain == TWELVE


async def test_a_record_on_a_skipped_label_is_never_seen(serve_zones: ServeZones) -> None:
    # RFC 9989 §5.1.8: a psd=n record at eight labels or more is not discovered by a deeper name
    zones = {
        "example.test.": HEAD
        + '_dmarc.e.f.g.h.i.j IN TXT "v=DMARC1; p=none; psd=n"\n'
        + '_dmarc IN TXT "v=DMARC1; p=reject"\n',
        "test.": HEAD,
    }
    found = await discover(Resolver(await serve_zones(zones)), TWELVE, DiscoveryMethod.TREEWALK)
    assert "_dmarc.e.f.g.h.i.j.example.test" not in found.names
    assert found.policy_lookup is not None and found.policy_lookup.domain == "example.test"
    assert found.organisational_domain == "example.test"


async def test_psd_n_stops_the_walk_and_is_the_organisational_domain(serve_zones: ServeZones) -> None:
    zones = {
        "example.test.": HEAD
        + '_dmarc.dept IN TXT "v=DMARC1; p=quarantine; psd=n"\n'
        + '_dmarc IN TXT "v=DMARC1; p=reject"\n',
        "test.": HEAD,
    }
    resolver = Resolver(await serve_zones(zones))
    found = await discover(resolver, "mail.dept.example.test", DiscoveryMethod.TREEWALK)
    assert found.names == ("_dmarc.mail.dept.example.test", "_dmarc.dept.example.test")
    assert found.organisational_domain == "dept.example.test"
    assert found.policy_lookup is not None and found.policy_lookup.domain == "dept.example.test"


async def test_psd_y_stops_the_walk_one_label_below_is_the_organisation(serve_zones: ServeZones) -> None:
    zones = {
        "example.test.": HEAD + '_dmarc.mail IN TXT "v=DMARC1; p=none"\n',
        "test.": HEAD + '_dmarc IN TXT "v=DMARC1; p=reject; psd=y"\n',
    }
    found = await discover(
        Resolver(await serve_zones(zones)), "a.mail.example.test", DiscoveryMethod.TREEWALK
    )
    assert found.names[-1] == "_dmarc.test"
    # records at mail.example.test and test; psd=y at test: example.test is the organisation
    assert found.organisational_domain == "example.test"
    # example.test has no record of its own, so the public suffix domain's applies
    assert found.policy_lookup is not None and found.policy_lookup.domain == "test"


async def test_psd_y_on_the_first_name_stops_at_once(serve_zones: ServeZones) -> None:
    zones = {"test.": HEAD + '_dmarc IN TXT "v=DMARC1; p=reject; psd=y"\n'}
    resolver = Resolver(await serve_zones(zones))
    found = await discover(resolver, "test", DiscoveryMethod.TREEWALK)
    assert found.names == ("_dmarc.test",) and found.organisational_domain == "test"


async def test_without_psd_the_shortest_name_with_a_record_is_the_organisation(
    serve_zones: ServeZones,
) -> None:
    # RFC 9989 §4.10.2's first example: records at mail.example.test and example.test
    zones = {
        "example.test.": HEAD + '_dmarc.mail IN TXT "v=DMARC1; p=none"\n_dmarc IN TXT "v=DMARC1; p=reject"\n',
        "test.": HEAD,
    }
    found = await discover(
        Resolver(await serve_zones(zones)), "a.mail.example.test", DiscoveryMethod.TREEWALK
    )
    assert found.organisational_domain == "example.test"
    # intermediate records are not policy: the organisational domain's record applies
    assert found.policy_lookup is not None and found.policy_lookup.domain == "example.test"


async def test_two_records_at_one_name_are_discarded_and_the_walk_goes_on(serve_zones: ServeZones) -> None:
    zones = {
        "example.test.": HEAD
        + '_dmarc.mail IN TXT "v=DMARC1; p=none"\n_dmarc.mail IN TXT "v=DMARC1; p=reject"\n'
        + '_dmarc IN TXT "v=DMARC1; p=quarantine"\n',
        "test.": HEAD,
    }
    client = await serve_zones(zones)
    walked = await discover(Resolver(client), "mail.example.test", DiscoveryMethod.TREEWALK)
    assert walked.policy_lookup is not None and walked.policy_lookup.domain == "example.test"
    # RFC 7489 §6.6.3: records at the domain itself end discovery (and several mean no DMARC)
    psl = await discover(Resolver(client), "mail.example.test", DiscoveryMethod.PSL)
    assert psl.names == ("_dmarc.mail.example.test",) and psl.policy_lookup is None


async def test_a_failure_above_the_own_record_hides_only_the_organisation(serve_zones: ServeZones) -> None:
    zones = {"example.test.": HEAD + '_dmarc IN TXT "v=DMARC1; p=reject"\n'}  # no TLD zone: REFUSED
    found = await discover(Resolver(await serve_zones(zones)), "example.test", DiscoveryMethod.TREEWALK)
    assert found.failure is not None and found.failure.name == "_dmarc.test"
    assert not found.policy_unknown and found.policy_lookup is found.own
    assert found.organisational_domain is None


async def test_a_failure_before_any_record_leaves_the_policy_unknown(serve_zones: ServeZones) -> None:
    zones = {"example.test.": HEAD + '_dmarc IN TXT "v=DMARC1; p=reject"\n', "test.": HEAD}
    client = await serve_zones(zones, faults={"_dmarc.mail.example.test": Fault.SERVFAIL})
    found = await discover(Resolver(client), "mail.example.test", DiscoveryMethod.TREEWALK)
    assert found.names == ("_dmarc.mail.example.test",)
    assert found.policy_unknown and found.policy_lookup is None and found.organisational_domain is None


async def test_organisational_domain_of_any_name_by_each_method(serve_zones: ServeZones) -> None:
    zones = {"example.test.": HEAD + '_dmarc.dept IN TXT "v=DMARC1; p=none; psd=n"\n', "test.": HEAD}
    resolver = Resolver(await serve_zones(zones))
    assert await organisational_domain(resolver, "x.dept.example.test", DiscoveryMethod.TREEWALK) == (
        "dept.example.test"
    )
    assert await organisational_domain(resolver, "x.dept.example.test", DiscoveryMethod.PSL) == "example.test"
