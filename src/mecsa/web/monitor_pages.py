"""The monitor in the web service (issue 21): /monitor, /monitor/alerts and /api/v1/monitor/...

`mecsa serve --watchlist FILE` runs the monitor in-process (`monitor_runner`); these pages show its
watch list (schedule, last pass with its levels, next pass, open alerts) and the stored alerts with
their evidence and exact fixes. They are private (see `session`): a token or a signed-in browser.
Without --watchlist the alerts page still shows what the store holds (a `mecsa monitor run` from
cron writes to the same store).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from mecsa.domain import DomainError
from mecsa.monitor.api import alert_rows, watch_rows
from mecsa.monitor.run import AssessFn
from mecsa.monitor.watchlist import WatchList
from mecsa.store import Store
from mecsa.web.api import Problem
from mecsa.web.deps import parse_domain
from mecsa.web.monitor_runner import PrivateBackground
from mecsa.web.service import service_of
from mecsa.web.session import require_token, sign_in_page, signed_in
from mecsa.web.settings import ServiceSettings

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/v1/monitor", tags=["monitor"])
ALERT_STATES = ("open", "resolved", "event")
MAX_ALERTS = 1000


def load_watchlist_of(settings: ServiceSettings) -> WatchList | None:
    """The service's watch list (`mecsa serve --watchlist`); raises WatchListError (one line).

    A watch list without `[assess] resolvers` assesses through the service's `--resolver`s."""
    from dataclasses import replace
    from pathlib import Path

    from mecsa.monitor.watchlist import load_watchlist

    if not settings.watchlist:
        return None
    watchlist = load_watchlist(Path(settings.watchlist))
    if not watchlist.assess.resolvers and settings.resolvers:
        watchlist = replace(watchlist, assess=replace(watchlist.assess, resolvers=settings.resolvers))
    return watchlist


def start_background(
    settings: ServiceSettings, store: Store, watchlist: WatchList | None, assess: AssessFn | None = None
) -> PrivateBackground:
    """The monitor's loop, running the watch list's passes if there is one (inside the lifespan)."""
    from mecsa.dns.resolver import DnsClient, parse_nameserver

    servers = [parse_nameserver(r) for r in settings.resolvers]
    return PrivateBackground(
        watchlist, store, lambda: DnsClient(servers or None, timeout=settings.dns_timeout), assess=assess
    )


def background_of(request: Request) -> PrivateBackground:
    background: PrivateBackground = request.app.state.private_background
    return background


def _domain(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return parse_domain(name)
    except DomainError as exc:
        raise HTTPException(400, str(exc)) from None


def _state(state: str | None) -> str | None:
    if state is not None and state not in ALERT_STATES:
        raise HTTPException(400, f"state must be one of {', '.join(ALERT_STATES)}")
    return state


def interval_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _when(text: str | None) -> str | None:
    return dt.datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M UTC") if text else None


def stars(level: int | None) -> str:
    """Five stars with halves for a 0-10 level (as the report's areas)."""
    if level is None:
        return "–"
    full, half = divmod(level, 2)
    return "★" * full + "½" * half + "☆" * (5 - full - half)


# --- pages ----------------------------------------------------------------------------------------


@router.get("/monitor", response_class=HTMLResponse)
async def monitor_page(request: Request) -> Response:
    if not await signed_in(request):
        return sign_in_page(request)
    background = background_of(request)
    watchlist = background.watchlist
    store = service_of(request).store
    rows = await asyncio.to_thread(watch_rows, watchlist, store) if watchlist else []
    now = dt.datetime.now(dt.UTC)
    for row in rows:
        row["interval"] = interval_text(row["interval_s"])
        row["last_run"] = _when(row["last_run_at"])
        due = row["next_pass_at"]
        row["next_pass"] = "due now" if not due or dt.datetime.fromisoformat(due) <= now else _when(due)
        row["stars"] = {a: stars(v) for a, v in (row["last_levels"] or {}).items()}
    return HTMLResponse(
        service_of(request).pages.render(
            request,
            "monitor_watchlist.html.j2",
            rows=rows,
            watchlist=watchlist,
            monitoring=background.monitoring,
        )
    )


@router.get("/monitor/alerts", response_class=HTMLResponse)
async def alerts_page(request: Request, domain: str | None = None, state: str | None = None) -> Response:
    if not await signed_in(request):
        return sign_in_page(request)
    chosen, wanted = _domain(domain), _state(state)
    store = service_of(request).store

    def load() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        if wanted is not None:
            return ([], alert_rows(store, chosen, wanted, 200))
        open_now = alert_rows(store, chosen, "open", MAX_ALERTS)
        recent = [a for a in alert_rows(store, chosen, None, 200) if a["state"] != "open"]
        return open_now, recent

    open_now, recent = await asyncio.to_thread(load)
    for a in open_now + recent:
        a["first"], a["last"], a["resolved"] = (
            _when(a["first_seen"]),
            _when(a["last_seen"]),
            _when(a["resolved_at"]),
        )
    return HTMLResponse(
        service_of(request).pages.render(
            request,
            "monitor_alerts.html.j2",
            open_alerts=open_now,
            recent=recent,
            domain=chosen,
            state=wanted,
        )
    )


# --- API ------------------------------------------------------------------------------------------


class Levels(BaseModel):
    confidentiality: int | None
    phishing: int | None
    integrity: int | None


class WatchedDomainRow(BaseModel):
    domain: str
    interval_s: float
    notify: list[str]
    reports: bool = Field(description="Alerts from this domain's ingested DMARC and TLS reports.")
    last_run_at: str | None
    last_assessment_id: int | None
    last_levels: Levels | None
    last_error: str | None
    next_pass_at: str | None = Field(description="None: due now.")
    open_alerts: int
    report: str | None = Field(description="The last assessment's report page.")
    history: str


class WatchListState(BaseModel):
    monitoring: bool = Field(description="Whether this service runs the monitor (mecsa serve --watchlist).")
    source: str | None = Field(description="The watch list file.")
    next_pass_at: str | None
    domains: list[WatchedDomainRow]


class FixSnippet(BaseModel):
    where: str
    text: str


class AlertFix(BaseModel):
    title: str
    snippets: list[FixSnippet]


class AlertRow(BaseModel):
    id: int
    domain: str
    rule: str
    key: str
    kind: str = Field(description="condition (holds until it clears) | event (a change, told once)")
    severity: str = Field(description="critical | warning | info")
    state: str = Field(description="open | resolved | event")
    message: str
    evidence: list[str]
    fixes: list[AlertFix]
    first_seen: str
    last_seen: str
    resolved_at: str | None


@api_router.get(
    "/watchlist",
    response_model=WatchListState,
    summary="The monitor's watch list with each domain's last and next pass (API token)",
    responses={401: {"model": Problem}},
)
async def api_watchlist(request: Request) -> dict[str, Any]:
    await require_token(request)
    background = background_of(request)
    watchlist = background.watchlist
    if watchlist is None:
        return {"monitoring": False, "source": None, "next_pass_at": None, "domains": []}
    store = service_of(request).store

    def load() -> dict[str, Any]:
        from mecsa.monitor.api import next_pass_at

        rows = watch_rows(watchlist, store)
        for row in rows:
            row["report"] = f"/report/{row['last_assessment_id']}" if row["last_assessment_id"] else None
            row["history"] = f"/domain/{row['domain']}"
        return {
            "monitoring": background.monitoring,
            "source": watchlist.source or None,
            "next_pass_at": next_pass_at(watchlist, store),
            "domains": rows,
        }

    return await asyncio.to_thread(load)


@api_router.get(
    "/alerts",
    response_model=list[AlertRow],
    summary="Stored monitor alerts, newest first, with evidence and fixes (API token)",
    responses={400: {"model": Problem}, 401: {"model": Problem}},
)
async def api_alerts(
    request: Request,
    domain: str | None = None,
    state: Annotated[str | None, Query(description="open | resolved | event")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ALERTS)] = 200,
) -> list[dict[str, Any]]:
    await require_token(request)
    chosen, wanted = _domain(domain), _state(state)
    return await asyncio.to_thread(alert_rows, service_of(request).store, chosen, wanted, limit)
