"""The LangServe playground (/v1/rag/playground/) from a plain browser: a credential given once on a small
sign-in page (/v1/rag/sign-in) is kept in a cookie that the browser sends to /v1/rag/ only, and read there
as if it had come as `Authorization: Bearer`. The API's rules do not change: the same credential check,
query scope, rate limits and quota, through the gate every LangServe endpoint has (`api.langserve`).

The cookie is HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it), Secure over
HTTPS, and lasts PLAYGROUND_SESSION_S. A request that changes something on the strength of the cookie
must also carry an `Origin` header naming this server, which browsers add to every POST: a cross-site
request is refused before it runs, whatever a browser's SameSite support. A request that brings its own
credential (X-API-Key or Authorization) is read as sent; the cookie is ignored.
"""

from __future__ import annotations

import html
from http.cookies import CookieError, SimpleCookie
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ragapi.api.dependencies import IpLimited, get_state, principal_for_credential
from ragapi.api.middleware import refuse
from ragapi.core.errors import RagApiError
from ragapi.tenants.context import Scope as CredentialScope

PREFIX = "/v1/rag"
PLAYGROUND = f"{PREFIX}/playground/"
SIGN_IN = f"{PREFIX}/sign-in"
SIGN_OUT = f"{PREFIX}/sign-out"
COOKIE = "ragapi_playground"
PUBLIC_PATHS = frozenset({SIGN_IN, SIGN_OUT})  # they take a form without a credential header
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ICON = "/docs/assets/swagger-ui/favicon-32x32.png"

router = APIRouter(include_in_schema=False)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in to the playground</title>
<link rel="icon" href="{icon}">
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 32rem; margin: 4rem auto; padding: 0 1rem; color: #1f2328; }}
label {{ display: block; font-weight: 600; margin-bottom: .25rem; }}
input {{ width: 100%; box-sizing: border-box; padding: .5rem; font: inherit; }}
button {{ margin-top: 1rem; padding: .5rem 1rem; font: inherit; }}
.error {{ color: #b42318; }} .hint {{ color: #59636e; font-size: .9rem; }}
</style></head>
<body><main>
<h1>LangServe playground</h1>
<p>Ask questions of your tenant's documents through the <code>rag</code> runnable.</p>
{error}
<form method="post" action="{sign_in}">
<label for="credential">API key or access token</label>
<input id="credential" name="credential" type="password" autocomplete="off" required autofocus
 aria-describedby="credential-hint">
<p id="credential-hint" class="hint">A key with the <code>query</code> scope (or a user's access token). This
browser keeps it in a cookie sent to <code>{prefix}/</code> only, for {hours} hours or until you sign out.</p>
<button type="submit">Open the playground</button>
</form>
<form method="post" action="{sign_out}"><button type="submit">Sign out</button></form>
</main></body></html>
"""


def page(request: Request, error: str = "", status: int = 200) -> HTMLResponse:
    hours = get_state(request).settings.playground_session_s / 3600
    shown = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    body = PAGE.format(error=shown, sign_in=SIGN_IN, sign_out=SIGN_OUT, prefix=PREFIX, hours=f"{hours:g}", icon=ICON)
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def same_origin(request_origin: str | None, scheme: str, host: str | None) -> bool:
    return request_origin is not None and host is not None and request_origin == f"{scheme}://{host}"


def _origin_ok(request: Request) -> bool:
    """A form from another site may not sign this browser in or out (no Origin: not a browser's form)."""
    origin = request.headers.get("origin")
    return origin is None or same_origin(origin, request.url.scheme, request.headers.get("host"))


@router.get(SIGN_IN)
async def sign_in_page(request: Request) -> HTMLResponse:
    return page(request)


@router.post(SIGN_IN)
async def sign_in(request: Request, credential: Annotated[str, Form(max_length=4096)], _ip: IpLimited) -> Response:
    if not _origin_ok(request):
        return page(request, "This form was sent from another site.", 403)
    try:
        principal = await principal_for_credential(get_state(request), credential.strip())
    except RagApiError as exc:
        return page(request, exc.detail, exc.status)
    if principal.tenant_id is None or not principal.allows(CredentialScope.QUERY):
        return page(request, "This credential cannot ask questions: it needs a tenant and the 'query' scope.", 403)
    response = RedirectResponse(PLAYGROUND, status_code=303)
    response.set_cookie(
        COOKIE,
        credential.strip(),
        max_age=get_state(request).settings.playground_session_s,
        path=PREFIX,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@router.post(SIGN_OUT)
async def sign_out(request: Request, _ip: IpLimited) -> Response:
    if not _origin_ok(request):
        return page(request, "This form was sent from another site.", 403)
    response = RedirectResponse(SIGN_IN, status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX, secure=request.url.scheme == "https", httponly=True, samesite="strict")
    return response


class PlaygroundCookieMiddleware:
    """Reads the playground's cookie as the credential of a /v1/rag request that brings none, after the
    Origin check for requests that change something; sends a browser without it to the sign-in page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PREFIX + "/") or path in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if b"x-api-key" in headers or b"authorization" in headers:
            await self.app(scope, receive, send)
            return
        credential = _cookie(headers.get(b"cookie", b"").decode("latin-1"))
        if credential is None:
            if scope["method"] == "GET" and "/playground" in path and b"text/html" in headers.get(b"accept", b""):
                await RedirectResponse(SIGN_IN, status_code=303)(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if scope["method"] not in SAFE_METHODS:
            origin = headers.get(b"origin", b"").decode("latin-1") or None
            host = headers.get(b"host", b"").decode("latin-1") or None
            if not same_origin(origin, scope.get("scheme", "http"), host):
                detail = "a request signed in by the playground's cookie must come from this server's own pages"
                await refuse(scope, send, 403, "Forbidden", detail)
                return
        bearer = (b"authorization", b"Bearer " + credential.encode("latin-1", "replace"))
        await self.app({**scope, "headers": [*scope["headers"], bearer]}, receive, send)


def _cookie(header: str) -> str | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:  # a malformed Cookie header is no credential
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None and morsel.value else None
