"""The mx check against a loopback DNS server: null, implicit, alias and failing MX sets."""

from __future__ import annotations

from mecsa.checks import mx
from mecsa.dns.resolver import Resolver
from mecsa.dns.zoneserver import Fault
from mecsa.model import Status
from mecsa.observe import Context
from mecsa.observe.mx import MxObservation, observe_mx
from tests.conftest import ServeZones

HEAD = "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\nns IN A 127.0.0.53\n"


async def _run(serve_zones: ServeZones, body: str, **kw: object) -> tuple[MxObservation, dict[str, Status]]:
    client = await serve_zones({"example.test.": HEAD + body}, **kw)
    ctx = Context("example.test", Resolver(client))
    obs = await observe_mx(ctx)
    result = mx.evaluate(obs)
    return obs, {f.id: f.status for f in result.findings}


async def test_two_hosts_sorted_by_preference_with_addresses(serve_zones: ServeZones) -> None:
    obs, ids = await _run(
        serve_zones,
        "@ IN MX 20 b\n@ IN MX 10 a\na IN A 127.0.0.2\na IN AAAA ::1\nb IN A 127.0.0.3\n",
    )
    assert [(h.preference, h.name) for h in obs.hosts] == [(10, "a.example.test"), (20, "b.example.test")]
    assert obs.hosts[0].addresses == ("127.0.0.2", "::1")
    assert ids == {"mx.present": Status.PASS}
    assert obs.receives_mail


async def test_null_mx_means_no_mail(serve_zones: ServeZones) -> None:
    obs, ids = await _run(serve_zones, "@ IN MX 0 .\n")
    assert obs.null_mx and not obs.receives_mail
    assert ids == {"mx.null": Status.INFO}


async def test_null_mx_beside_other_mx_fails(serve_zones: ServeZones) -> None:
    _, ids = await _run(serve_zones, "@ IN MX 0 .\n@ IN MX 10 a\na IN A 127.0.0.2\n")
    assert ids == {"mx.null_mixed": Status.FAIL}


async def test_implicit_mx_uses_domain_address(serve_zones: ServeZones) -> None:
    obs, ids = await _run(serve_zones, "@ IN A 127.0.0.4\n")
    assert obs.implicit and obs.hosts[0].name == "example.test"
    assert obs.hosts[0].addresses == ("127.0.0.4",)
    assert ids == {"mx.implicit": Status.WARN}


async def test_no_mx_and_no_address_fails(serve_zones: ServeZones) -> None:
    _, ids = await _run(serve_zones, "")
    assert ids == {"mx.missing": Status.FAIL}


async def test_nxdomain_fails_as_missing_domain(serve_zones: ServeZones) -> None:
    client = await serve_zones({"example.test.": HEAD})
    obs = await observe_mx(Context("nope.example.test", Resolver(client)))
    assert {f.id: f.status for f in mx.evaluate(obs).findings} == {"mx.domain_missing": Status.FAIL}


async def test_servfail_on_mx_is_error_not_absence(serve_zones: ServeZones) -> None:
    _, ids = await _run(serve_zones, "@ IN MX 10 a\n", faults={"example.test/MX": Fault.SERVFAIL})
    assert ids == {"mx.lookup_failed": Status.ERROR}


async def test_timeout_on_mx_is_error(serve_zones: ServeZones) -> None:
    _, ids = await _run(serve_zones, "@ IN MX 10 a\n", faults={"example.test/MX": Fault.TIMEOUT})
    assert ids == {"mx.lookup_failed": Status.ERROR}


async def test_alias_target_is_followed_and_flagged(serve_zones: ServeZones) -> None:
    obs, ids = await _run(serve_zones, "@ IN MX 10 alias\nalias IN CNAME real\nreal IN A 127.0.0.5\n")
    assert obs.hosts[0].addresses == ("127.0.0.5",)
    assert obs.hosts[0].cname_chain == ("real.example.test",)
    assert ids["mx.target_cname"] is Status.WARN


async def test_host_without_address_fails_and_failed_lookup_is_error(serve_zones: ServeZones) -> None:
    _, ids = await _run(
        serve_zones,
        '@ IN MX 10 a\n@ IN MX 20 b\na IN TXT "no address"\nb IN A 127.0.0.6\n',
        faults={"b.example.test/AAAA": Fault.SERVFAIL},
    )
    assert ids["mx.host_no_address"] is Status.FAIL
    assert ids["mx.host_lookup_failed"] is Status.ERROR


async def test_mx_set_is_looked_up_once_per_assessment(serve_zones: ServeZones) -> None:
    client = await serve_zones({"example.test.": HEAD + "@ IN MX 10 a\na IN A 127.0.0.2\n"})
    ctx = Context("example.test", Resolver(client))
    first, second = await observe_mx(ctx), await observe_mx(ctx)
    assert first is second
    assert ctx.resolver.queries_sent == 3  # MX, A, AAAA
