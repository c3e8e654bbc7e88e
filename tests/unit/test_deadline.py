"""The per-check deadline: derived from the stated timeouts, never shorter than a chain inside them."""

from __future__ import annotations

from typing import Any

import pytest

from mecsa import assess as assess_module
from mecsa.checks import registry
from mecsa.checks.base import CheckSpec
from mecsa.model import CheckResult
from mecsa.observe import AssessOptions, Context
from mecsa.observe.deadline import check_deadline, dns_answer_bound
from mecsa.observe.revocation import DEADLINE_S as REVOCATION_DEADLINE_S
from mecsa.probes.https import ATTEMPT_TIMEOUT_S
from mecsa.probes.smtp import SmtpTimeouts
from tests.conftest import ServeZones

HEAD = "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\nns IN A 127.0.0.53\n"


def test_defaults_give_the_documented_figure() -> None:
    assert check_deadline(2.0, 3, 10.0) == 257.0
    assert check_deadline(2.0, 3, 10.0, revocation=False) == 232.0


@pytest.mark.parametrize("smtp_timeout", [1.0, 10.0, 20.0, 60.0])
def test_a_slow_mx_inside_every_smtp_bound_fits(smtp_timeout: float) -> None:
    # The session (5 S), its one retry after a hang-up, then the TLS sweep (5 S), after the DNS
    # questions that lead to the address: what the probe's own stated timeouts allow.
    session = SmtpTimeouts.from_base(smtp_timeout).session
    dns = 6 * dns_answer_bound(2.0, 3)
    assert check_deadline(2.0, 3, smtp_timeout) > dns + 3 * session + REVOCATION_DEADLINE_S
    if smtp_timeout >= 20.0:
        assert check_deadline(2.0, 3, smtp_timeout) > 120.0  # the old fixed deadline cut this off


@pytest.mark.parametrize(("dns_timeout", "attempts"), [(0.5, 1), (2.0, 3), (10.0, 3), (5.0, 5)])
def test_slow_dns_fits_the_spf_chain_and_the_mta_sts_fetch(dns_timeout: float, attempts: int) -> None:
    answer = attempts * 2 * dns_timeout  # UDP, then TCP after truncation, per attempt
    deadline = check_deadline(dns_timeout, attempts, 10.0)
    assert deadline > 13 * answer
    assert deadline > 6 * answer + 2 * ATTEMPT_TIMEOUT_S


async def test_assess_runs_checks_under_the_derived_deadline(
    monkeypatch: pytest.MonkeyPatch, serve_zones: ServeZones
) -> None:
    seen: list[float | None] = []

    async def observe(ctx: Context) -> None:
        seen.append(ctx.options.check_deadline)

    def evaluate(_: Any) -> CheckResult:
        return CheckResult("probe", (), ())

    probe = CheckSpec(
        name="probe", summary="records its deadline", protocols=(), observe=observe, evaluate=evaluate
    )
    monkeypatch.setattr(registry, "CHECKS", (probe,))
    client = await serve_zones({"example.test.": HEAD}, dns_timeout=1.5, attempts=2)
    await assess_module.assess("example.test", client, AssessOptions(smtp_timeout=20.0))
    await assess_module.assess("example.test", client, AssessOptions(smtp_timeout=20.0, check_deadline=7.0))
    assert seen == [check_deadline(1.5, 2, 20.0), 7.0]
