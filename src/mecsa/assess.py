"""Run every registered check of one domain concurrently and collect an `Assessment`."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

from mecsa import __version__
from mecsa.checks.base import AssessOptions, CheckSpec, Context
from mecsa.deadline import check_deadline
from mecsa.dns.resolver import DnsClient, Resolver
from mecsa.model import Assessment, CheckResult, Finding, ProtocolVerdict, Status, VerdictStatus


async def assess(domain: str, client: DnsClient, options: AssessOptions | None = None) -> Assessment:
    """Assess `domain` (already normalised to its A-label form).

    Checks run concurrently; a check that crashes or overruns its deadline becomes an `error`
    finding for its protocols and never sinks the others. Unless the options set one, the
    deadline is derived from the DNS and SMTP timeouts (`mecsa.deadline`).
    """
    from mecsa.checks.registry import CHECKS

    opts = options or AssessOptions()
    if opts.check_deadline is None:
        deadline = check_deadline(client.timeout, client.attempts, opts.smtp_timeout)
        opts = replace(opts, check_deadline=deadline)
    ctx = Context(domain, Resolver(client), opts)
    selected = [c for c in CHECKS if (not opts.only or c.name in opts.only) and c.name not in opts.skip]
    started = time.monotonic()
    validating_task = asyncio.ensure_future(client.validates())
    results = await asyncio.gather(*(run_check(c, ctx) for c in selected))
    validating = await validating_task
    resolver_info: dict[str, Any] = {
        **client.describe(),
        "validates_dnssec": validating,
        "queries": ctx.resolver.queries_sent,
    }
    return Assessment(
        domain, __version__, tuple(results), resolver_info, round(time.monotonic() - started, 3)
    )


async def run_check(check: CheckSpec[Any], ctx: Context) -> CheckResult:
    try:
        observation = await asyncio.wait_for(check.observe(ctx), ctx.options.check_deadline)
        return check.evaluate(observation)
    except TimeoutError:
        return crashed(check, f"did not finish within {ctx.options.check_deadline:g} s")
    except Exception as exc:  # a bug or a surprise: report it, keep the other checks
        return crashed(check, f"{type(exc).__name__}: {exc}")


def crashed(check: CheckSpec[Any], reason: str) -> CheckResult:
    protocols = check.protocols or (check.name,)
    findings = tuple(
        Finding(f"{check.name}.check_error", Status.ERROR, p, f"the {check.name} check failed: {reason}")
        for p in protocols
    )
    verdicts = tuple(
        ProtocolVerdict(p, VerdictStatus.ERROR, f"check failed: {reason}") for p in check.protocols
    )
    return CheckResult(check.name, findings, verdicts)
