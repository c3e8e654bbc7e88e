"""Mail mode's pages and API in the web service: enter an address, follow the test live, read the report.

- `POST /assess` with an address (the home page's field; `pages.start_assessment` hands it here):
  the probe is sent and the browser goes to `/mail/{token}`.
- `GET /mail/{token}`: the test addresses to reply to (the control address, the two traps in
  Cc), the probe's and the reply's progress, and once the reply is analysed the provider report,
  the same sections as `mecsa mailmode report --html`, inside the site's layout.
- `GET /mail/{token}/events`: server-sent events (`state` when something changed, `final` when
  nothing more will), read from the mail store, so the page updates as the probe lands and the
  reply arrives.
- `GET /mail/{token}/report.html`: the standalone page, as a file.
- `POST /api/v1/mail` `{"address": ...}` and `GET /api/v1/mail/{token}`: the same for programs.

The token is 80 random bits (`mailmode.addresses.new_token`): knowing it is what lets one read the
report, as with the auto-reply's link. Mail mode is off unless `mecsa serve --mailmode FILE`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from markupsafe import Markup
from pydantic import BaseModel, Field

from mecsa.mailmode.service import LiveState, ProbeRequestError, Stage
from mecsa.web.deps import client_key
from mecsa.web.mailmode_service import ProbeRateLimited, ProbesBusy, WebMailMode
from mecsa.web.service import service_of
from mecsa.web.settings import ServiceSettings

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/v1", tags=["mail mode"])

POLL_S = 1.0  # how often the event stream reads the store
KEEPALIVE_S = 15.0
STREAM_MAX_S = 3 * 3600.0  # a page left open stops following after this (it reloads to resume)
_PLAIN_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def install(app: FastAPI, settings: ServiceSettings) -> None:
    """Add mail mode's pages to `app`; with `settings.mailmode`, its API too (so the OpenAPI
    document names only what the service offers), started with the app's lifespan."""
    app.include_router(router)
    app.state.mailmode = None
    config = settings.mailmode
    if config is None:
        return
    app.include_router(api_router)
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        async with inner(application) as state:
            mail = await WebMailMode.start(config, settings)
            application.state.mailmode = mail
            try:
                yield state
            finally:
                application.state.mailmode = None
                await mail.close()

    app.router.lifespan_context = lifespan


def mailmode_of(request: Request) -> WebMailMode | None:
    mail: WebMailMode | None = getattr(request.app.state, "mailmode", None)
    return mail


def _enabled(request: Request) -> WebMailMode:
    mail = mailmode_of(request)
    if mail is None:
        raise HTTPException(404, "mail mode is not enabled on this service")
    return mail


def _token(text: str) -> str:
    from mecsa.mailmode.addresses import is_token

    token = text.lower()
    if not is_token(token):
        raise HTTPException(404, "no such mail-mode test")
    return token


# --- the flow's texts (pure) -------------------------------------------------------------------------


def is_final(state: LiveState) -> bool:
    """Nothing more will change: the report is ready and no trap verdict is pending."""
    return state.stage is Stage.REPORT_READY and not state.pending


def steps(state: LiveState) -> dict[str, dict[str, str]]:
    """Each step's class and sentence, for the page and its live updates (the script sets them as text)."""
    stage = state.stage
    probe_class = {Stage.PROBING: "active", Stage.PROBE_FAILED: "failed"}.get(stage, "done")
    if stage in (Stage.PROBING, Stage.PROBE_FAILED, Stage.WAITING_FOR_REPLY):
        reply = ("active" if stage is Stage.WAITING_FOR_REPLY else "pending", "Waiting for your reply.")
    elif stage is Stage.ANALYSING:
        reply = ("active", f"Your reply arrived ({state.messages} message(s)): analysing it.")
    else:
        reply = ("done", f"Your reply arrived ({state.messages} message(s)) and was analysed.")
    if stage is Stage.REPORT_READY:
        pending = " Still pending: " + "; ".join(state.pending) if state.pending else ""
        report = ("done", "Your provider's report is below." + pending)
    elif stage is Stage.ANALYSING:
        report = ("active", "Assessing your domain: the report appears here when it is ready.")
    else:
        report = ("pending", "The report appears here once your reply is analysed.")
    return {
        "probe": {"class": probe_class, "text": state.probe[:1].upper() + state.probe[1:]},
        "reply": {"class": reply[0], "text": reply[1]},
        "report": {"class": report[0], "text": report[1]},
    }


def event_data(state: LiveState) -> dict[str, Any]:
    """What one `state` event carries: the state, the step texts, and a version to compare."""
    data = {**state.to_json(), "steps": steps(state), "final": is_final(state)}
    data["version"] = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
    return data


# --- pages -------------------------------------------------------------------------------------------


async def start_from_home(
    request: Request, target: str, home: Callable[..., HTMLResponse], off_notice: str
) -> Response:
    """The home form's address: start the probe and go to the live page. On error, `home` (the
    home page's renderer, `pages._home`: passed in, so that this module does not import pages)
    shows the form again; with mail mode off it shows `off_notice`."""
    _home = home
    mail = mailmode_of(request)
    if mail is None:
        return _home(request, notice=off_notice, target=target)
    try:
        started = await mail.start_probe(target, client_key(request))
    except ProbeRequestError as exc:
        return _home(request, 400, error=str(exc), target=target)
    except ProbeRateLimited as exc:
        page = _home(request, 429, error=str(exc), target=target)
        page.headers["Retry-After"] = str(int(exc.retry_after) + 1)
        return page
    except ProbesBusy as exc:
        return _home(request, 503, error=str(exc), target=target)
    return RedirectResponse(f"/mail/{started.token}", 303)


def _assets() -> tuple[Markup, Markup]:
    from mecsa.mailmode.report import extra_css

    script = resources.files("mecsa.web").joinpath("static/mailmode.js").read_text("utf-8")
    return Markup(script), Markup(extra_css())  # ours, from the package: not from the network


@router.get("/mail/{token}", response_class=HTMLResponse)
async def mail_page(request: Request, token: str) -> HTMLResponse:
    from mecsa.mailmode.report import render_html_body

    mail = _enabled(request)
    token = _token(token)
    state = await mail.state(token)
    if state is None:
        raise HTTPException(404, "no such mail-mode test (or it was removed)")
    body = None
    if state.stage is Stage.REPORT_READY:
        report = await mail.report(token)
        body = Markup(render_html_body(report)) if report is not None else None  # escaped there
    script, css = _assets()
    data = event_data(state)
    page = service_of(request).pages.render(
        request,
        "mailmode_page.html.j2",
        state=state,
        data=data,
        steps=data["steps"],
        body=body,
        mail_script=script,
        mail_css=css,
        test_domain=mail.config.domain,
    )
    return HTMLResponse(page)


@router.get("/mail/{token}/events")
async def mail_events(request: Request, token: str) -> StreamingResponse:
    mail = _enabled(request)
    token = _token(token)
    if await mail.state(token) is None:
        raise HTTPException(404, "no such mail-mode test")

    async def stream() -> AsyncIterator[str]:
        started = last_sent = time.monotonic()
        version = None
        while time.monotonic() - started < STREAM_MAX_S:
            if await request.is_disconnected():
                return
            state = await mail.state(token)
            if state is not None:
                data = event_data(state)
                if data["version"] != version:
                    version = data["version"]
                    last_sent = time.monotonic()
                    yield f"event: state\ndata: {json.dumps(data)}\n\n"
                if data["final"]:
                    yield "event: final\ndata: {}\n\n"
                    return
            if time.monotonic() - last_sent > KEEPALIVE_S:
                last_sent = time.monotonic()
                yield ": keep-alive\n\n"
            await asyncio.sleep(POLL_S)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@router.get("/mail/{token}/report.html")
async def mail_report_file(request: Request, token: str) -> Response:
    mail = _enabled(request)
    token = _token(token)
    report = await mail.report(token)
    if report is None:
        raise HTTPException(404, "no such mail-mode test")
    return Response(
        mail.service.report_html(report),
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="mecsa-mailmode-{token}.html"',
            "Content-Security-Policy": _PLAIN_CSP,  # the page has no script
        },
    )


# --- API ---------------------------------------------------------------------------------------------


class MailTestRequest(BaseModel):
    address: Annotated[str, Field(max_length=320, description="The user's e-mail address.")]


@api_router.post("/mail", status_code=202)
async def api_start(request: Request, body: MailTestRequest) -> JSONResponse:
    """Send the probe to ADDRESS's provider; reply (to all) to the addresses returned."""
    mail = _enabled(request)
    try:
        started = await mail.start_probe(body.address, client_key(request))
    except ProbeRequestError as exc:
        raise HTTPException(400, str(exc)) from None
    except ProbeRateLimited as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": str(int(exc.retry_after) + 1)}) from None
    except ProbesBusy as exc:
        raise HTTPException(503, str(exc)) from None
    return JSONResponse(
        {
            "token": started.token,
            "recipient": started.recipient,
            "reply_to": list(started.reply_to),
            "page": f"/mail/{started.token}",
            "state": f"/api/v1/mail/{started.token}",
        },
        202,
    )


@api_router.get("/mail/{token}")
async def api_state(request: Request, token: str) -> JSONResponse:
    """The test's live state, and its provider report once the reply is analysed."""
    mail = _enabled(request)
    token = _token(token)
    state = await mail.state(token)
    if state is None:
        raise HTTPException(404, "no such mail-mode test")
    report = await mail.report(token) if state.stage is Stage.REPORT_READY else None
    return JSONResponse({"state": event_data(state), "report": report})
