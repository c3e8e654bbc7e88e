"""The REST API under /api/v1 (its OpenAPI document is /api/v1/openapi.json).

`GET /assessments/{id}` answers with the stored document itself: byte for byte the object that
`mecsa assess --json` prints (src/mecsa/report/assessment.schema.json).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from mecsa import __version__
from mecsa.domain import DomainError
from mecsa.web.deps import authenticated, client_key, is_address, parse_domain
from mecsa.web.jobs import Busy, RateLimited
from mecsa.web.service import service_of

router = APIRouter(prefix="/api/v1", tags=["v1"])


class AssessmentRequest(BaseModel):
    domain: str = Field(max_length=1000, description="The mail domain to assess (IDNs accepted).")
    force: bool = Field(
        False, description="Assess afresh even when a recent result is stored (API token only)."
    )


class JobState(BaseModel):
    job: str
    domain: str
    state: str = Field(description="running | finished | refused | failed")
    checks_done: int
    checks_total: int
    checks: list[dict[str, Any]]
    assessment_id: int | None
    message: str | None = None


class StoredRef(BaseModel):
    id: int
    domain: str
    stored: bool = Field(True, description="A recent stored result, returned instead of a new assessment.")
    url: str


class HistoryItem(BaseModel):
    id: int
    created_at: str
    scan_id: int | None
    profile: str
    levels: dict[str, int | None]
    error: str | None = Field(description="Why it has no levels; `running` while it runs.")
    url: str


class ScanBody(BaseModel):
    domains: list[str] = Field(min_length=1, description="The domains to scan.")
    name: str = Field("api", max_length=200, description="A name for the list.")


class Problem(BaseModel):
    detail: str


def _retry(exc: RateLimited) -> HTTPException:
    return HTTPException(429, str(exc), headers={"Retry-After": str(int(exc.retry_after) + 1)})


@router.get("/health", summary="The service and its store answer")
async def health(request: Request) -> dict[str, Any]:
    from sqlalchemy import text

    store = service_of(request).store

    def ping() -> None:
        with store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    try:
        await asyncio.to_thread(ping)
    except Exception:
        raise HTTPException(503, "the store does not answer") from None
    runner = service_of(request).runner
    return {"status": "ok", "version": __version__, "assessments_running": runner.active}


@router.post(
    "/assessments",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Start an assessment of a domain (or get the recent stored one)",
    responses={
        200: {"model": StoredRef, "description": "A recent stored result"},
        202: {"model": JobState, "description": "A running assessment: follow /api/v1/jobs/{job}"},
        400: {"model": Problem},
        429: {"model": Problem},
        503: {"model": Problem},
    },
)
async def create_assessment(request: Request, body: AssessmentRequest) -> Response:
    if is_address(body.domain):
        raise HTTPException(
            400, "mail mode (an e-mail address) is not offered by this service yet: give a domain"
        )
    try:
        domain = parse_domain(body.domain)
    except DomainError as exc:
        raise HTTPException(400, str(exc)) from None
    runner = service_of(request).runner
    try:
        outcome = await runner.request(
            domain, client_key(request), authenticated=await authenticated(request), force=body.force
        )
    except RateLimited as exc:
        raise _retry(exc) from None
    except Busy as exc:
        raise HTTPException(503, str(exc)) from None
    if outcome.job is not None:
        location = f"/api/v1/jobs/{outcome.job.token}"
        return JSONResponse(outcome.job.to_json(), 202, headers={"Location": location})
    url = f"/api/v1/assessments/{outcome.stored_id}"
    ref = StoredRef(id=outcome.stored_id or 0, domain=domain, stored=True, url=url)
    return JSONResponse(ref.model_dump(), 200, headers={"Location": url})


@router.get(
    "/jobs/{job}",
    response_model=JobState,
    summary="A running or recent assessment's progress",
    responses={404: {"model": Problem}},
)
async def get_job(request: Request, job: str) -> dict[str, Any]:
    found = service_of(request).runner.get(job)
    if found is None:
        raise HTTPException(404, f"no job {job[:40]!r} (finished jobs are kept for an hour)")
    return found.to_json()


@router.get(
    "/assessments/{assessment_id}",
    summary="A stored assessment: the document of `mecsa assess --json`",
    responses={
        200: {"content": {"application/json": {}}},
        202: {"model": JobState, "description": "Still running: its progress"},
        404: {"model": Problem},
    },
)
async def get_assessment(request: Request, assessment_id: int) -> Response:
    running = service_of(request).runner.running_job(assessment_id)
    if running is not None:  # the id is taken when the assessment starts: its progress until it ends
        location = f"/api/v1/jobs/{running.token}"
        return JSONResponse(running.to_json(), 202, headers={"Location": location})
    store = service_of(request).store
    stored = await asyncio.to_thread(store.get_assessment, assessment_id)
    if stored is None:
        raise HTTPException(404, f"no stored assessment {assessment_id}")
    return Response(stored.document_text, media_type="application/json")


@router.get(
    "/domains/{name}/assessments",
    response_model=list[HistoryItem],
    summary="Every stored assessment of a domain, newest first",
    responses={400: {"model": Problem}},
)
async def domain_assessments(request: Request, name: str, limit: int = 100) -> list[dict[str, Any]]:
    try:
        domain = parse_domain(name)
    except DomainError as exc:
        raise HTTPException(400, str(exc)) from None
    store = service_of(request).store
    stored = await asyncio.to_thread(store.assessments_of_domain, domain, max(1, min(limit, 1000)))
    running = service_of(request).runner.running_job
    return [
        {
            "id": s.id,
            "created_at": s.created_at.isoformat(),
            "scan_id": s.scan_id,
            "profile": s.profile,
            "levels": dict(s.levels),
            "error": "running" if running(s.id) is not None else s.error_reason,
            "url": f"/api/v1/assessments/{s.id}",
        }
        for s in stored
    ]


async def _require_token(request: Request) -> None:
    if not await authenticated(request):
        raise HTTPException(
            401,
            "an API token is needed: Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )


@router.post(
    "/scans",
    status_code=202,
    summary="Start a scan of a list of domains (API token)",
    responses={400: {"model": Problem}, 401: {"model": Problem}},
)
async def create_scan(request: Request, body: ScanBody) -> dict[str, Any]:
    await _require_token(request)
    try:
        scan_id = await service_of(request).scans.start("\n".join(body.domains), body.name)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    return {"id": scan_id, "url": f"/api/v1/scans/{scan_id}"}


@router.get(
    "/scans/{scan_id}",
    summary="A scan's state and summary (API token)",
    responses={401: {"model": Problem}, 404: {"model": Problem}},
)
async def get_scan(request: Request, scan_id: int) -> dict[str, Any]:
    from mecsa.store.summary import scan_summary

    await _require_token(request)
    summary = await asyncio.to_thread(scan_summary, service_of(request).store, scan_id)
    if summary is None:
        raise HTTPException(404, f"no scan {scan_id}")
    out = summary.to_json()
    out["total"] = service_of(request).scans.totals.get(scan_id)
    out["domains_done"] = summary.scan.domains_done
    return out


@router.get("/stats", summary="Domains per level in each area (newest assessment per domain)")
async def stats(request: Request) -> dict[str, Any]:
    from mecsa.web.stats import level_stats

    found = await asyncio.to_thread(level_stats, service_of(request).store)
    return found.to_json()
