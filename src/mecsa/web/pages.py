"""The HTML pages: home, live progress (server-sent events), report, history, statistics, scans."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from mecsa.domain import DomainError
from mecsa.store import StoredAssessment
from mecsa.web.deps import authenticated, client_key, is_address, parse_domain
from mecsa.web.jobs import Busy, Job, RateLimited
from mecsa.web.service import service_of

router = APIRouter(include_in_schema=False)

MAIL_MODE_NOTICE = (
    "Testing an e-mail address (mail mode: your provider sends us a message and we read how it was "
    "protected) is not enabled on this service (its operator starts it with `mecsa serve --mailmode`). "
    "Meanwhile, test the domain part of the address."
)
# The downloadable report carries its own policy (its one script by hash, see report/html.py).
_FILE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src '{script}'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_PLAIN_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def when(stored: StoredAssessment) -> str:
    return stored.created_at.strftime("%Y-%m-%d %H:%M UTC")


def _html(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(service_of(request).pages.render(request, template, **context), status)


def _home(request: Request, status: int = 200, **context: Any) -> HTMLResponse:
    mailmode = getattr(request.app.state, "mailmode", None) is not None  # web/mailmode_pages.py
    context = {"error": None, "notice": None, "target": "", "recent": [], "mailmode": mailmode, **context}
    return _html(request, "page_home.html.j2", status, **context)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> HTMLResponse:
    store = service_of(request).store
    recent = await asyncio.to_thread(_recent, store)
    return _home(request, recent=recent)


def _recent(store: Any, limit: int = 10) -> list[dict[str, Any]]:
    from sqlalchemy import false, select

    from mecsa.store.schema import assessments

    with store.engine.connect() as conn:
        rows = conn.execute(
            select(
                assessments.c.id,
                assessments.c.domain,
                assessments.c.created_at,
                *(assessments.c[a] for a in ("confidentiality", "phishing", "integrity")),
            )
            .where(assessments.c.error == false(), assessments.c.scan_id.is_(None))
            .order_by(assessments.c.id.desc())
            .limit(limit)
        ).all()
    return [
        {
            "id": r.id,
            "domain": r.domain,
            "when": r.created_at.strftime("%Y-%m-%d %H:%M"),
            "levels": {a: getattr(r, a) for a in ("confidentiality", "phishing", "integrity")},
        }
        for r in rows
    ]


@router.post("/assess")
async def start_assessment(request: Request, target: Annotated[str, Form(max_length=1000)]) -> Response:
    if is_address(target):
        from mecsa.web.mailmode_pages import start_from_home

        return await start_from_home(request, target, _home, MAIL_MODE_NOTICE)
    try:
        domain = parse_domain(target)
    except DomainError as exc:
        return _home(request, 400, error=str(exc), target=target)
    runner = service_of(request).runner
    try:
        outcome = await runner.request(
            domain, client_key(request), authenticated=await authenticated(request), force=False
        )
    except RateLimited as exc:
        page = _home(request, 429, error=str(exc), target=target)
        page.headers["Retry-After"] = str(int(exc.retry_after) + 1)
        return page
    except Busy as exc:
        return _home(request, 503, error=str(exc), target=target)
    if outcome.job is not None:  # the permanent page, which follows the progress live
        return RedirectResponse(f"/report/{outcome.job.assessment_id}", 303)
    return RedirectResponse(f"/report/{outcome.stored_id}", 303)


def _job(request: Request, token: str) -> Job:
    job = service_of(request).runner.get(token)
    if job is None:
        raise HTTPException(404, "no such test (finished tests are kept for an hour; reports for good)")
    return job


@router.get("/progress/{token}")
async def progress(request: Request, token: str) -> Response:
    """The old progress link: the report's permanent page shows the progress itself."""
    job = _job(request, token)
    return RedirectResponse(f"/report/{job.assessment_id}", 303)


def _events(request: Request, job: Job) -> StreamingResponse:
    async def stream() -> AsyncIterator[str]:
        async for event in job.follow():
            if await request.is_disconnected():
                return
            if event is None:
                yield ": keep-alive\n\n"
            else:
                yield f"event: {event.kind}\ndata: {json.dumps(event.data)}\n\n"

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@router.get("/progress/{token}/events")
async def progress_events(request: Request, token: str) -> StreamingResponse:
    return _events(request, _job(request, token))


async def _stored(request: Request, assessment_id: int) -> StoredAssessment:
    store = service_of(request).store
    stored = await asyncio.to_thread(store.get_assessment, assessment_id)
    if stored is None or stored.is_error:
        raise HTTPException(404, f"no stored assessment {assessment_id}")
    return stored


def _progress_page(request: Request, job: Job) -> HTMLResponse:
    from mecsa.checks.registry import CHECKS

    opts = service_of(request).settings.assess_options
    names = [c.name for c in CHECKS if (not opts.only or c.name in opts.only) and c.name not in opts.skip]
    response = _html(request, "page_progress.html.j2", job=job, checks=names)
    response.headers["Cache-Control"] = "no-store"  # the same address shows the report soon
    return response


@router.get("/report/{assessment_id}", response_class=HTMLResponse)
async def report(request: Request, assessment_id: int) -> HTMLResponse:
    """The assessment's permanent page: its live progress while it runs, then its report."""
    service = service_of(request)
    page = service.reports.cached(request, assessment_id)
    if page is not None:
        return HTMLResponse(page)
    job = service.runner.running_job(assessment_id)
    if job is not None:
        return _progress_page(request, job)
    stored = await asyncio.to_thread(service.store.get_assessment, assessment_id)
    if stored is None:
        raise HTTPException(404, f"no stored assessment {assessment_id}")
    if stored.is_error:  # refused, failed, or never finished: the page says why
        refused = (stored.error_reason or "").startswith("refused")
        title = "Refused" if refused else f"No report for {stored.domain}"
        return HTMLResponse(service.pages.message(request, title, stored.error_reason or ""), 200)
    return HTMLResponse(service.reports.page(request, stored, when(stored)))


@router.get("/report/{assessment_id}/events")
async def report_events(request: Request, assessment_id: int) -> Response:
    """The running assessment's progress as server-sent events; the final one when it has ended."""
    job = service_of(request).runner.running_job(assessment_id)
    if job is None:
        stored = await asyncio.to_thread(service_of(request).store.get_assessment, assessment_id)
        if stored is None:
            raise HTTPException(404, f"no stored assessment {assessment_id}")
        kind, state = ("failed", "failed") if stored.is_error else ("done", "finished")
        data = {
            "state": state,
            "message": stored.error_reason,
            "assessment_id": assessment_id,
            "report": f"/report/{assessment_id}",
        }
        text = f"event: {kind}\ndata: {json.dumps(data)}\n\n"
        return Response(text, media_type="text/event-stream", headers={"Cache-Control": "no-store"})
    return _events(request, job)


@router.get("/report/{assessment_id}/report.html")
async def download(request: Request, assessment_id: int) -> Response:
    from mecsa.report.html import render_html, script_hash
    from mecsa.store.web_reports import load_report
    from mecsa.web.document import assessment_from_document

    stored = await _stored(request, assessment_id)
    kept = await asyncio.to_thread(load_report, service_of(request).store, assessment_id)
    if kept is not None:
        text = kept[1]
    else:  # not made by the service (a scan's): from the document, typed facts read back from its details
        document = stored.document()
        text = render_html(assessment_from_document(document), str(document.get("profile") or "mecsa"))
    name = f"mecsa-{stored.domain}-{stored.id}.html"
    return Response(
        text,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            # the file's own policy (its script by hash) rather than the pages' nonce
            "Content-Security-Policy": _FILE_POLICY.format(script=script_hash()),
        },
    )


@router.get("/domain/{name}", response_class=HTMLResponse)
async def history(
    request: Request, name: str, older: int | None = None, newer: int | None = None
) -> HTMLResponse:
    from mecsa.web.charts import levels_chart
    from mecsa.web.history import diff_documents

    try:
        domain = parse_domain(name)
    except DomainError as exc:
        raise HTTPException(400, str(exc)) from None
    store = service_of(request).store
    stored = await asyncio.to_thread(store.assessments_of_domain, domain, 200)
    running = service_of(request).runner.running_job
    rows = [
        {
            "id": s.id,
            "when": when(s),
            "levels": s.levels,
            "profile": s.profile,
            "scan_id": s.scan_id,
            # a running assessment's placeholder says what it will say if the service stops
            "error": "running" if running(s.id) is not None else s.error_reason,
        }
        for s in stored
    ]
    good = [s for s in reversed(stored) if not s.is_error]
    chart = levels_chart([(s.created_at.strftime("%Y-%m-%d"), dict(s.levels)) for s in good])
    by_id = {s.id: s for s in good}
    diff = diff_ids = diff_when = None
    if older is None and newer is None and len(good) >= 2:
        older, newer = good[-2].id, good[-1].id
    if older is not None and newer is not None:
        if older not in by_id or newer not in by_id:
            raise HTTPException(
                404, f"{domain} has no stored assessment {older if older not in by_id else newer}"
            )
        if by_id[older].created_at > by_id[newer].created_at:
            older, newer = newer, older
        diff = diff_documents(by_id[older].document(), by_id[newer].document())
        diff_ids = (older, newer)
        diff_when = (when(by_id[older]), when(by_id[newer]))
    return _html(
        request,
        "page_history.html.j2",
        domain=domain,
        rows=rows,
        chart=chart,
        diff=diff,
        diff_ids=diff_ids,
        diff_when=diff_when,
    )


@router.get("/stats", response_class=HTMLResponse)
async def statistics(request: Request) -> HTMLResponse:
    from mecsa.scoring import AREA_TITLES
    from mecsa.web.charts import bar_chart
    from mecsa.web.stats import level_stats

    stats = await asyncio.to_thread(level_stats, service_of(request).store)
    areas = [
        {
            "name": area,
            "title": title,
            "chart": bar_chart(
                [(str(k), v) for k, v in stats.levels[area].items()], f"{title}: domains per level"
            ),
        }
        for area, title in AREA_TITLES.items()
    ]
    return _html(request, "page_stats.html.j2", stats=stats, areas=areas)


# --- scans ------------------------------------------------------------------------------------------


@router.get("/scans", response_class=HTMLResponse)
async def scans(request: Request) -> HTMLResponse:
    store = service_of(request).store
    listed = await asyncio.to_thread(store.list_scans, 50)
    return _html(request, "page_scans.html.j2", scans=listed, error=None)


@router.post("/scans")
async def start_scan(
    request: Request, token: Annotated[str, Form(max_length=300)], domains: UploadFile
) -> Response:
    service = service_of(request)
    if not await authenticated(request, token):
        listed = await asyncio.to_thread(service.store.list_scans, 50)
        return _html(
            request,
            "page_scans.html.j2",
            401,
            scans=listed,
            error="a valid API token is needed to start a scan",
        )
    raw = await domains.read()
    try:
        scan_id = await service.scans.start(
            raw.decode("utf-8-sig", errors="replace"), domains.filename or "upload"
        )
    except ValueError as exc:
        listed = await asyncio.to_thread(service.store.list_scans, 50)
        return _html(request, "page_scans.html.j2", 400, scans=listed, error=str(exc))
    return RedirectResponse(f"/scans/{scan_id}", 303)


@router.get("/scans/{scan_id}", response_class=HTMLResponse)
async def scan_page(request: Request, scan_id: int) -> HTMLResponse:
    store = service_of(request).store
    scan = await asyncio.to_thread(store.get_scan, scan_id)
    if scan is None:
        raise HTTPException(404, f"no scan {scan_id}")
    total = service_of(request).scans.totals.get(scan_id)
    return _html(request, "page_scan.html.j2", scan=scan, total=total)


@router.get("/scans/{scan_id}/summary")
async def scan_summary_page(request: Request, scan_id: int) -> Response:
    """The summary report of `mecsa scan report --html`, as it is (it has no script)."""
    from mecsa.scan.report import render_html
    from mecsa.store.summary import scan_summary

    summary = await asyncio.to_thread(scan_summary, service_of(request).store, scan_id)
    if summary is None:
        raise HTTPException(404, f"no scan {scan_id}")
    return HTMLResponse(render_html(summary), headers={"Content-Security-Policy": _PLAIN_CSP})
