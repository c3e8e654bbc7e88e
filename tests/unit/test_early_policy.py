"""The cold CLI's early MTA-STS policy fetch (mecsa.cli.early): asked first when a helper makes it.

With the CLI's HTTPS helper (`https_attempt`), the early start asks for the policy as soon as the
`_mta-sts` TXT answer says so, so that the helper answers while this process imports; without
one, the fetch waits for the check, as in a plain assessment. Either way the document is the
plain assessment's, and no question is asked that the check would not ask.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mecsa.assess import assess
from mecsa.checks.registry import check_names
from mecsa.cli.early import assess_early
from mecsa.observe import AssessOptions
from mecsa.probes.https import Attempt, FailureKind, FetchFailure, HttpsAnswer
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


class Recorded:
    """An `Attempt` that notes each request and refuses it, as a closed port would."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []
        self.first = asyncio.Event()

    async def __call__(
        self, host: str, shown_port: str, address: str, port: int, path: str
    ) -> HttpsAnswer | FetchFailure:
        self.asked.append((host, address))
        self.first.set()
        return FetchFailure("connect", FailureKind.REFUSED, "connection refused", address)


async def test_with_a_helper_the_policy_is_asked_before_the_checks_start(
    serve_zones: ServeZones, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await serve_zones({f"{DOMAIN}.": POLICY_ZONE})
    attempt = Recorded()

    async def checks_after_the_request(*args: Any, **kwargs: Any) -> str:
        # Fails (times out) unless the early start made the request before the checks ran.
        await asyncio.wait_for(attempt.first.wait(), 5)
        return "checked"

    monkeypatch.setattr("mecsa.assess.assess", checks_after_the_request)
    result: Any = await assess_early(DOMAIN, client, OPTIONS, check_names(), https_attempt=attempt)
    assert result == "checked"
    assert attempt.asked == [(f"mta-sts.{DOMAIN}", POLICY_IP)]


@pytest.mark.parametrize(
    ("zone", "options"),
    [
        (POLICY_ZONE.replace('"v=STSv1; id=20240101"', '"v=spf1 -all"'), OPTIONS),
        (POLICY_ZONE, replace(OPTIONS, skip=frozenset({"mta-sts"}))),
    ],
    ids=["no-sts-record", "mta-sts-skipped"],
)
async def test_no_early_request_where_the_check_would_make_none(
    serve_zones: ServeZones, zone: str, options: AssessOptions
) -> None:
    client = await serve_zones({f"{DOMAIN}.": zone})
    attempt = Recorded()
    plain = assessment_to_json(await assess(DOMAIN, client, options))
    early = await assess_early(DOMAIN, client, options, check_names(), https_attempt=attempt)
    assert _without_timings(assessment_to_json(early)) == _without_timings(plain)
    assert attempt.asked == []


@pytest.fixture
async def policy_host(tmp_path: Path) -> AsyncIterator[tuple[PolicyServer, str]]:
    ca = make_ca()
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.cert_pem)
    cert, key = make_leaf(ca, f"mta-sts.{DOMAIN}").write(tmp_path, "policy")
    server = await PolicyServer(cert, key, Reply(body=POLICY), POLICY_IP).start()
    yield server, str(ca_file)
    await server.stop()


def _no_fallback() -> Attempt:
    raise AssertionError("the helper was given up: the request would be made here")


async def test_early_start_with_the_real_helper_gives_the_plain_document(
    serve_zones: ServeZones, policy_host: tuple[PolicyServer, str]
) -> None:
    server, ca_file = policy_host
    options = replace(OPTIONS, ca_file=ca_file, https_port=server.port)
    client = await serve_zones({f"{DOMAIN}.": POLICY_ZONE})
    plain = assessment_to_json(await assess(DOMAIN, client, options))
    helper = HelperProcess.spawn(ca_file)
    assert helper is not None
    try:
        remote = RemoteAttempt(helper, _no_fallback)
        early = await assess_early(DOMAIN, client, options, check_names(), https_attempt=remote)
        assert not remote.gone
    finally:
        helper.close()
    assert _without_timings(assessment_to_json(early)) == _without_timings(plain)
    # One request each: the plain run's and the helper's; the check reused the early fetch.
    assert len(server.requests) == 2
    assert assessment_to_json(early)["protocols"]["mta-sts"]["status"] == "pass"
