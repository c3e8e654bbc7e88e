"""The ASGI application: `create_app(settings)` wires the store, the job runner, pages and API."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mecsa import __version__
from mecsa.store import Store, open_store
from mecsa.web import api, mailmode_pages, monitor_pages, pages, reports_pages, session
from mecsa.web.jobs import JobRunner
from mecsa.web.rendering import Pages, ReportCache
from mecsa.web.scans import ScanRunner
from mecsa.web.security import BodyLimit, SecurityHeaders
from mecsa.web.service import Service, service_of
from mecsa.web.settings import ServiceSettings

log = logging.getLogger("mecsa.web")


def create_app(settings: ServiceSettings | None = None, *, store: Store | None = None) -> FastAPI:
    """The service's application. The store is opened (and migrated) here unless one is given."""
    chosen = settings or ServiceSettings()
    watchlist = monitor_pages.load_watchlist_of(chosen)  # a bad watch list stops here, before serving
    opened = store or open_store(chosen.store_url)
    owns_store = store is None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The runner's locks belong to the serving loop (made here); assessments run in its
        # worker processes, started on the first one.
        pages = Pages(opened)
        runner = JobRunner(chosen, opened)
        scans = ScanRunner(chosen, opened)
        app.state.service = Service(chosen, opened, runner, pages, ReportCache(pages), scans)
        app.state.private_background = monitor_pages.start_background(chosen, opened, watchlist)
        try:
            yield
        finally:
            await app.state.private_background.close()
            await runner.close()
            await scans.close()
            if owns_store:
                opened.close()

    app = FastAPI(
        title="mecsa",
        version=__version__,
        description="MECSA-style mail security assessments: domains, history, scans.",
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        # Swagger UI and ReDoc load scripts from a CDN: no external assets, so none is served.
        docs_url=None,
        redoc_url=None,
    )
    app.state.store_url = opened.url
    app.include_router(api.router)
    app.include_router(pages.router)
    for private in (monitor_pages, reports_pages):  # the monitor (issue 21), the reports (issue 22)
        app.include_router(private.api_router)
        app.include_router(private.router)
    app.include_router(session.router)
    mailmode_pages.install(app, chosen)  # mail mode's routes; with --mailmode, its receiver too
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _internal_error)
    app.add_middleware(BodyLimit, max_bytes=chosen.max_body_bytes)
    app.add_middleware(SecurityHeaders, behind_proxy=chosen.behind_proxy)
    return app


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if _wants_json(request):
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=headers)
    page = service_of(request).pages.message(request, f"Error {exc.status_code}", str(exc.detail))
    return HTMLResponse(page, exc.status_code, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    # Field names and messages only: never the input echoed back, never internals.
    problems = [
        {"field": ".".join(str(p) for p in e.get("loc", ())[1:]), "message": str(e.get("msg", ""))}
        for e in exc.errors()
    ]
    if _wants_json(request):
        return JSONResponse({"detail": "invalid request", "problems": problems}, 422)
    text = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    return HTMLResponse(service_of(request).pages.message(request, "Invalid request", text), 422)


async def _internal_error(request: Request, exc: Exception) -> Response:
    # The traceback goes to the log; the client gets a plain sentence (no stack trace on a page).
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    if _wants_json(request):
        return JSONResponse({"detail": "internal error"}, 500)
    return HTMLResponse(
        service_of(request).pages.message(request, "Internal error", "Something went wrong on our side."), 500
    )
