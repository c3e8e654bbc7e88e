"""The ingested DMARC aggregate and TLS reports in the web service (issue 22): /reports, /api/v1/reports.

The view and its HTML components are the ones of `mecsa reports show` (`mecsa.reports.views`,
`mecsa.reports.render`): sources per domain grouped as aligned / known-failing / unknown, with their
reverse names, reporting organisations, SPF/DKIM/alignment results and dispositions, inline-SVG
charts per day; TLS sessions per sending organisation and per policy, and the failure types.

The join is shown where it is cheap: each failing DMARC source's SPF is asked now (a few DNS
questions), and each TLS failure class is judged against the domain's newest stored assessment
(no new probe from a page view; "Test" on the home page makes a fresh one). DNS answers are
kept for a few minutes, so reloading the page asks nothing again.

Everything in a report came from the network: it is autoescaped like all other page text.
Private, like the monitor's pages (see `session`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from mecsa.domain import DomainError
from mecsa.reports.join import JoinItem, JoinStatus
from mecsa.reports.storage import ReportStore
from mecsa.reports.views import ReportsView, SpfMembership, Window
from mecsa.store import Store
from mecsa.web.api import Problem
from mecsa.web.deps import parse_domain
from mecsa.web.monitor_pages import background_of
from mecsa.web.monitor_runner import PrivateBackground
from mecsa.web.service import service_of
from mecsa.web.session import require_token, sign_in_page, signed_in

log = logging.getLogger("mecsa.web.reports")
router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/v1", tags=["reports"])
DEFAULT_DAYS = 30
LOOKUP_TIMEOUT_S = 15.0
CACHE_S = 300.0
_CACHE_SIZE = 64


@dataclass(frozen=True, slots=True)
class Lookups:
    """The live DNS facts of one window: SPF membership, reverse names, the DMARC join."""

    spf: Mapping[tuple[str, str], SpfMembership]
    reverse: Mapping[str, str | None]
    dmarc_join: tuple[JoinItem, ...]


async def _lookups(background: PrivateBackground, reports: ReportStore, window: Window, days: int) -> Lookups:
    key = ("reports", window.domain, days)
    cache = background.cache
    hit = cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < CACHE_S:
        found: Lookups = hit[1]
        return found
    from mecsa.dns.resolver import Resolver
    from mecsa.reports.join import dmarc_join
    from mecsa.reports.lookups import reverse_names, spf_membership
    from mecsa.reports.views import dmarc_failing_sources, dmarc_source_ips

    failing = await asyncio.to_thread(dmarc_failing_sources, reports, window)
    ips = await asyncio.to_thread(dmarc_source_ips, reports, window)

    async def ask() -> Lookups:  # on the monitor's loop, through its DNS client
        resolver = Resolver(background.client)
        spf = await spf_membership(resolver, failing) if failing else {}
        reverse = await reverse_names(resolver, ips) if ips else {}
        joined = await dmarc_join(reports, window, background.client) if failing else []
        return Lookups(spf, reverse, tuple(joined))

    try:
        found = await asyncio.wait_for(background.run(ask()), LOOKUP_TIMEOUT_S)
    except Exception as exc:  # a timeout, a resolver that fails: could not find out
        # every failing source stays "SPF could not be checked", never "unknown"; nothing is cached
        log.warning("the reports page's DNS lookups failed: %s: %s", type(exc).__name__, exc)
        return Lookups({}, {}, ())
    if len(cache) >= _CACHE_SIZE:
        cache.pop(next(iter(cache)))
    cache[key] = (time.monotonic(), found)
    return found


def tls_join_from_store(store: Store, view: ReportsView) -> list[JoinItem]:
    """Each TLS failure class judged against the domain's newest stored assessment (no new probe)."""
    from mecsa.reports.join import judge_tls
    from mecsa.web.document import assessment_from_document

    items: list[JoinItem] = []
    for domain_view in view.tls:
        if not domain_view.failures:
            continue
        stored = next((s for s in store.assessments_of_domain(domain_view.domain, 5) if not s.is_error), None)
        assessment = assessment_from_document(stored.document()) if stored is not None else None
        for failure in domain_view.failures:
            target = failure.receiving_mx or failure.receiving_ip or "the policy host"
            reported = (
                f"{failure.sessions} failed sessions ({failure.policy_type}) reported by "
                f"{', '.join(failure.orgs)}, last {failure.last_seen:%Y-%m-%d}"
            )
            problem = f"{failure.result_type} on {target}"
            if stored is None or assessment is None:
                now = f"no stored assessment of {domain_view.domain}: test it to re-check"
                items.append(
                    JoinItem("tls", domain_view.domain, problem, reported, JoinStatus.NOT_PROBED, now)
                )
                continue
            status, said, fixes = judge_tls(assessment, failure)
            now = f"as of the assessment of {stored.created_at:%Y-%m-%d %H:%M UTC}: {said}"
            items.append(JoinItem("tls", domain_view.domain, problem, reported, status, now, fixes))
    return items


async def _build(request: Request, domain: str | None, days: int) -> tuple[ReportsView, Sequence[JoinItem]]:
    from mecsa.reports.views import build_view

    store = service_of(request).store
    reports = ReportStore(store.engine)
    window = Window(domain, dt.datetime.now(dt.UTC) - dt.timedelta(days=days))
    found = await _lookups(background_of(request), reports, window, days)

    def build() -> tuple[ReportsView, list[JoinItem]]:
        view = build_view(reports, window, found.spf, found.reverse)
        return view, [*tls_join_from_store(store, view), *found.dmarc_join]

    return await asyncio.to_thread(build)


def _domain(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return parse_domain(name)
    except DomainError as exc:
        raise HTTPException(400, str(exc)) from None


def _reported_domains(store: Store) -> list[str]:
    from sqlalchemy import select, union

    from mecsa.store.reports import dmarc_reports, tls_policies

    statement = union(select(dmarc_reports.c.domain), select(tls_policies.c.policy_domain))
    with store.engine.connect() as conn:
        return sorted({str(r[0]) for r in conn.execute(statement)})[:500]


Days = Annotated[int, Query(ge=1, le=366, description="Reports whose date range ends within this many days.")]


@router.get("/reports", response_class=HTMLResponse)
async def reports_page(request: Request, domain: str | None = None, days: Days = DEFAULT_DAYS) -> Response:
    from mecsa.reports.render import render_sections, section_style

    if not await signed_in(request):
        return sign_in_page(request)
    chosen = _domain(domain)
    view, joined = await _build(request, chosen, days)
    domains = await asyncio.to_thread(_reported_domains, service_of(request).store)
    page = service_of(request).pages.render(
        request,
        "reports_page.html.j2",
        view=view,
        domain=chosen,
        days=days,
        domains=domains,
        # ours: rendered by mecsa.reports.render with autoescape on (network text escaped there)
        sections=Markup(render_sections(view, joined)),
        section_style=Markup(section_style()),
    )
    return HTMLResponse(page)


@api_router.get(
    "/reports",
    summary="Ingested DMARC aggregate and TLS reports per domain, with the cheap live join (API token)",
    responses={
        200: {"description": "The document of `mecsa reports show --json`"},
        400: {"model": Problem},
        401: {"model": Problem},
    },
)
async def api_reports(
    request: Request, domain: str | None = None, days: Days = DEFAULT_DAYS
) -> dict[str, Any]:
    from mecsa.reports.render import to_json

    await require_token(request)
    view, joined = await _build(request, _domain(domain), days)
    return to_json(view, joined)
