"""Run every registered check of one domain concurrently and collect an `Assessment`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from mecsa import __version__
from mecsa.checks.base import CheckSpec, crash_kinds
from mecsa.dns.resolver import DnsClient, Resolver
from mecsa.model import Assessment, CheckResult, ProtocolVerdict, VerdictStatus
from mecsa.observe import AssessOptions, Context, SharedObservations
from mecsa.observe.deadline import check_deadline

log = logging.getLogger("mecsa.assess")


async def assess(
    domain: str,
    client: DnsClient,
    options: AssessOptions | None = None,
    *,
    shared: SharedObservations | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
    context: Context | None = None,
) -> Assessment:
    """Assess `domain` (already normalised to its A-label form).

    Checks run concurrently; a check that crashes or overruns its deadline becomes an `error`
    finding for its protocols and never sinks the others (its traceback goes to the debug log).
    Unless the options set one, the deadline is derived from the DNS and SMTP timeouts
    (`mecsa.observe.deadline`). `shared` is the scan's process-wide observation cache and per-IP limits,
    when there is a scan. `on_result` is called with each check's result as it finishes (the web
    service's live progress). `context` is one made earlier for this domain, client and options
    (the cold CLI's early start, mecsa.cli.early): what it already asked is answered from its memo
    and cache, and the duration counts from its creation.
    """
    from mecsa.checks.registry import selected_checks

    opts = options or AssessOptions()
    if opts.check_deadline is None:
        deadline = check_deadline(
            client.timeout, client.attempts, opts.smtp_timeout, revocation=opts.revocation
        )
        opts = replace(opts, check_deadline=deadline)
    if context is None:
        ctx = Context(domain, Resolver(client), opts, shared)
    else:
        ctx = context
        ctx.options = opts  # the same options, with the deadline filled in
    selected = selected_checks(opts.only, opts.skip)  # imports only the checks that run
    started = time.monotonic() if context is None else context.started
    validating_task = asyncio.ensure_future(client.validates())

    async def run_and_report(check: CheckSpec[Any]) -> CheckResult:
        result = await run_check(check, ctx)
        if on_result is not None:
            on_result(result)
        return result

    results = await asyncio.gather(*(run_and_report(c) for c in selected))
    validating = await validating_task
    resolver_info: dict[str, Any] = {
        **client.describe(),
        "validates_dnssec": validating,
        "queries": ctx.resolver.queries_sent,
        "validation_queries": ctx.resolver.validation_queries,
    }
    return Assessment(
        domain, __version__, tuple(results), resolver_info, round(time.monotonic() - started, 3)
    )


async def run_check(check: CheckSpec[Any], ctx: Context) -> CheckResult:
    deadline = ctx.options.check_deadline
    if deadline is None:  # run on its own, outside assess(): derive it here too
        client = ctx.resolver.client
        options = ctx.options
        deadline = check_deadline(
            client.timeout, client.attempts, options.smtp_timeout, revocation=options.revocation
        )
    try:
        observation = await asyncio.wait_for(check.observe(ctx), deadline)
        return check.evaluate(observation)
    except TimeoutError:
        return crashed(check, f"did not finish within {deadline:g} s")
    except Exception as exc:  # a bug or a surprise: report it, keep the other checks
        # The finding says what; the traceback, for whoever debugs it, goes to the debug log
        # (`--debug` or MECSA_DEBUG=1).
        log.debug("the %s check crashed on %s", check.name, ctx.domain, exc_info=True)
        return crashed(check, f"{type(exc).__name__}: {exc}")


def crashed(check: CheckSpec[Any], reason: str) -> CheckResult:
    findings = tuple(kind(f"the {check.name} check failed: {reason}") for kind in crash_kinds(check))
    verdicts = tuple(
        ProtocolVerdict(p, VerdictStatus.ERROR, f"check failed: {reason}") for p in check.protocols
    )
    return CheckResult(check.name, findings, verdicts)
