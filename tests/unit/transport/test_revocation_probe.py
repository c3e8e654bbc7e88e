"""Item 7 of issue 12, the probe: HTTP through the assessment's resolver, bounded in size and time."""

from __future__ import annotations

import time

import pytest

from mecsa.dns.resolver import Resolver
from mecsa.probes import revocation as probe
from tests.conftest import ServeZones
from tests.unit.transport.revocation_pki import HttpServer, static
from tests.unit.transport.test_transport_checks import HEAD

ZONE = HEAD + "crl IN A 127.0.0.8\n"


async def _resolver(serve_zones: ServeZones) -> Resolver:
    return Resolver(await serve_zones({"example.test.": ZONE}))


async def test_a_crl_is_fetched_by_name_through_the_resolver(serve_zones: ServeZones) -> None:
    server = await HttpServer("127.0.0.8", {"/a.crl": static(b"crl-bytes")}).start()
    try:
        fetch = await probe.fetch_http(
            await _resolver(serve_zones),
            probe.make_client(),
            server.url("crl.example.test", "/a.crl"),
            max_bytes=100,
        )
    finally:
        await server.close()
    assert (fetch.address, fetch.status, fetch.body, fetch.failure) == ("127.0.0.8", 200, b"crl-bytes", None)
    assert server.requests[0][2] == f"crl.example.test:{server.port}"


async def test_a_name_that_does_not_resolve_is_a_failure(serve_zones: ServeZones) -> None:
    fetch = await probe.fetch_http(
        await _resolver(serve_zones), probe.make_client(), "http://nowhere.example.test/x.crl", max_bytes=100
    )
    assert fetch.body is None and fetch.failure == "nowhere.example.test has no A or AAAA record"


async def test_a_body_over_the_limit_is_cut(serve_zones: ServeZones) -> None:
    server = await HttpServer("127.0.0.8", {"/big.crl": static(b"x" * 5000)}).start()
    try:
        fetch = await probe.fetch_http(
            await _resolver(serve_zones),
            probe.make_client(),
            server.url("crl.example.test", "/big.crl"),
            max_bytes=4096,
        )
    finally:
        await server.close()
    assert fetch.body is None and fetch.failure is not None and "4096-byte limit" in fetch.failure


async def test_a_silent_server_is_bounded_in_time(
    serve_zones: ServeZones, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(probe, "ATTEMPT_TIMEOUT_S", 0.3)
    server = await HttpServer("127.0.0.8", hang=True).start()
    started = time.monotonic()
    try:
        fetch = await probe.fetch_http(
            await _resolver(serve_zones),
            probe.make_client(),
            server.url("crl.example.test", "/slow.crl"),
            max_bytes=100,
        )
    finally:
        await server.close()
    assert time.monotonic() - started < 2
    assert fetch.body is None and fetch.failure is not None and "within 0.3 s" in fetch.failure


async def test_a_link_local_address_is_never_fetched_from(serve_zones: ServeZones) -> None:
    # Only the address choice is exercised: nothing connects, even if the rule broke.
    resolver = Resolver(await serve_zones({"example.test.": ZONE + "meta IN A 169.254.169.254\n"}))
    chosen = await probe._addresses(resolver, "meta.example.test")
    assert (
        chosen == "meta.example.test resolves only to addresses that are never fetched from (169.254.169.254)"
    )
    assert isinstance(await probe._addresses(resolver, "169.254.169.254"), str)
    assert await probe._addresses(resolver, "crl.example.test") == ["127.0.0.8"]
