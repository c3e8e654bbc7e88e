"""Who may see the private pages (the monitor's watch list and alerts, the ingested reports).

They are the operator's, not the public's: a watch list names the domains someone cares about,
the alerts say where their mail is weak right now, and the reports name their senders' IPs and
their receivers. So, like starting a scan, they need an API token (`mecsa serve token create`):

- the REST API reads `Authorization: Bearer <token>` on every request;
- a browser signs in once at /signin with the token; the service sets it as an HttpOnly,
  SameSite=Strict cookie (Secure when the request came over TLS), checked against the store's
  token hashes on each request, so revoking the token signs the browser out at once. SameSite=Strict
  keeps other sites from making the browser send it (no cross-site request rides on it), and the
  pages behind it only read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mecsa.web.deps import authenticated
from mecsa.web.security import request_is_tls
from mecsa.web.service import service_of

COOKIE = "mecsa_session"
COOKIE_MAX_AGE_S = 12 * 3600
router = APIRouter(include_in_schema=False)


async def signed_in(request: Request) -> bool:
    """A valid token in the Authorization header, or in the session cookie."""
    if await authenticated(request):
        return True
    cookie = request.cookies.get(COOKIE)
    return bool(cookie) and len(cookie or "") <= 300 and await authenticated(request, cookie)


async def require_token(request: Request) -> None:
    """For the API: 401 with WWW-Authenticate unless a valid bearer token came."""
    if not await authenticated(request):
        raise HTTPException(
            401,
            "an API token is needed: Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )


def sign_in_page(request: Request, status: int = 401, error: str | None = None) -> HTMLResponse:
    """The page a private page answers with when nobody is signed in: the sign-in form."""
    target = _local(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    page = service_of(request).pages.render(
        request, "private_signin.html.j2", next=target if status == 401 else _next_of(request), error=error
    )
    return HTMLResponse(page, status)


def _next_of(request: Request) -> str:
    return _local(request.query_params.get("next", "/monitor"))


def _local(target: str) -> str:
    """Only a path on this site: never another origin (`//host`, `/\\host`, `scheme:`)."""
    if not target.startswith("/") or target.startswith(("//", "/\\")) or len(target) > 2000:
        return "/monitor"
    return target


@router.get("/signin", response_class=HTMLResponse)
async def sign_in_form(request: Request) -> HTMLResponse:
    return sign_in_page(request, 200)


@router.post("/signin")
async def sign_in(
    request: Request,
    token: Annotated[str, Form(max_length=300)],
    next: Annotated[str, Form(max_length=2000)] = "/monitor",
) -> Response:
    if not await authenticated(request, token.strip()):
        page = service_of(request).pages.render(
            request, "private_signin.html.j2", next=_local(next), error="that token is not valid (or revoked)"
        )
        return HTMLResponse(page, 401)
    response = RedirectResponse(_local(next), 303)
    secure = request_is_tls(request.scope, service_of(request).settings.behind_proxy)
    response.set_cookie(
        COOKIE,
        token.strip(),
        max_age=COOKIE_MAX_AGE_S,
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )
    return response


@router.post("/signout")
async def sign_out(request: Request) -> Response:
    response = RedirectResponse("/", 303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
