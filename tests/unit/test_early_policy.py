"""The cold CLI's early MTA-STS policy fetch (mecsa.cli.early): asked first when a helper makes it.

With the CLI's HTTPS helper (`https_attempt`), the early start asks for the policy as soon as the
`_mta-sts` TXT answer says so, so that the helper answers while this process imports; without
one, the fetch waits for the check, as in a plain assessment. Either way the document is the
plain assessment's, and no question is asked that the check would not ask.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from mecsa.assess import assess
from mecsa.checks.registry import check_names
from mecsa.cli.early import assess_early
from mecsa.observe import AssessOptions
from mecsa.probes.https import Attempt
from mecsa.probes.https_helper import HelperProcess
from mecsa.probes.https_remote import RemoteAttempt
from mecsa.report.json import assessment_to_json
from tests.conftest import ServeZones
from tests.unit.mta_sts.pki import make_ca, make_leaf
from tests.unit.mta_sts.policy_server import PolicyServer, Reply
from tests.unit.test_early import OPTIONS, ZONE, _without_timings

DOMAIN = "example.test"
POLICY_IP = "127.0.0.2"
POLICY_ZONE = ZONE + f"mta-sts IN A {POLICY_IP}\n"
POLICY = b"version: STSv1\r\nmode: enforce\r\nmx: mx1.example.test\r\nmax_age: 604800\r\n"


@dataclass
class PolicyHost:
    """The loopback policy server, and the CLI's real helper process, which makes its requests."""

    server: PolicyServer
    ca_file: str
    remote: RemoteAttempt

    def options(self, base: AssessOptions = OPTIONS) -> AssessOptions:
        return replace(base, ca_file=self.ca_file, https_port=self.server.port)


@pytest.fixture
async def policy_host(tmp_path: Path) -> AsyncIterator[PolicyHost]:
    ca = make_ca()
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.cert_pem)
    cert, key = make_leaf(ca, f"mta-sts.{DOMAIN}").write(tmp_path, "policy")
    server = await PolicyServer(cert, key, Reply(body=POLICY), POLICY_IP).start()
    helper = HelperProcess.spawn(str(ca_file))
    assert helper is not None
    try:
        yield PolicyHost(server, str(ca_file), RemoteAttempt(helper, _no_fallback))
    finally:
        helper.close()
        await server.stop()


def _no_fallback() -> Attempt:
    raise AssertionError("the helper was given up: the request would be made here")


async def test_with_a_helper_the_policy_is_asked_before_the_checks_start(
    serve_zones: ServeZones, policy_host: PolicyHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await serve_zones({f"{DOMAIN}.": POLICY_ZONE})
    server = policy_host.server

    async def checks_after_the_request(*args: Any, **kwargs: Any) -> str:
        # Fails (times out) unless the early start made the request before the checks ran.
        await asyncio.wait_for(server.requested.wait(), 5)
        return "checked"

    monkeypatch.setattr("mecsa.assess.assess", checks_after_the_request)
    options = policy_host.options()
    result: Any = await assess_early(DOMAIN, client, options, check_names(), https_attempt=policy_host.remote)
    assert result == "checked"
    assert len(server.requests) == 1 and server.sni == [f"mta-sts.{DOMAIN}"]
    assert not policy_host.remote.gone  # made by the helper, not here


@pytest.mark.parametrize(
    ("zone", "skip"),
    [
        (POLICY_ZONE.replace('"v=STSv1; id=20240101"', '"v=spf1 -all"'), frozenset[str]()),
        (POLICY_ZONE, frozenset({"mta-sts"})),
    ],
    ids=["no-sts-record", "mta-sts-skipped"],
)
async def test_no_early_request_where_the_check_would_make_none(
    serve_zones: ServeZones, policy_host: PolicyHost, zone: str, skip: frozenset[str]
) -> None:
    client = await serve_zones({f"{DOMAIN}.": zone})
    options = policy_host.options(replace(OPTIONS, skip=skip))
    plain = assessment_to_json(await assess(DOMAIN, client, options))
    early = await assess_early(DOMAIN, client, options, check_names(), https_attempt=policy_host.remote)
    assert _without_timings(assessment_to_json(early)) == _without_timings(plain)
    assert policy_host.server.requests == []


async def test_early_start_with_the_real_helper_gives_the_plain_document(
    serve_zones: ServeZones, policy_host: PolicyHost
) -> None:
    options = policy_host.options()
    client = await serve_zones({f"{DOMAIN}.": POLICY_ZONE})
    plain = assessment_to_json(await assess(DOMAIN, client, options))
    early = await assess_early(DOMAIN, client, options, check_names(), https_attempt=policy_host.remote)
    assert not policy_host.remote.gone
    assert _without_timings(assessment_to_json(early)) == _without_timings(plain)
    # One request each: the plain run's and the helper's; the check reused the early fetch.
    assert len(policy_host.server.requests) == 2
    assert assessment_to_json(early)["protocols"]["mta-sts"]["status"] == "pass"
