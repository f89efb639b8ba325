"""Rendering a console page: the templates, the headers every page carries, and errors as pages.

Pages are Jinja2 templates rendered on the server (autoescaped). Each response carries a strict Content
Security Policy: scripts, styles, images and connections from this origin only (no inline script, no
eval), so the console cannot load anything from elsewhere nor be framed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from ragapi.api.cookies import REFRESH_COOKIE, SESSION_COOKIE, clear_session, csrf_token, set_session
from ragapi.api.dependencies import get_state
from ragapi.core.errors import RagApiError, Unauthenticated
from ragapi.tenants import users
from ragapi.tenants.context import Principal, Scope

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")


def _when(moment: datetime | None) -> Markup:
    """A timestamp for people (UTC, to the minute), machine-readable in <time>."""
    if moment is None:
        return Markup("")
    return Markup('<time datetime="{}">{}</time>').format(moment.isoformat(), moment.strftime("%Y-%m-%d %H:%M UTC"))


TEMPLATES.env.filters["when"] = _when
STATIC_PATH = "/console/static"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def nav(principal: Principal | None) -> list[tuple[str, str]]:
    """The pages this principal may open: (path, label)."""
    if principal is None:
        return []
    if principal.is_superadmin:
        return [("/console/tenants", "Tenants"), ("/console/analytics", "Analytics")]
    pages = [("/console/ask", "Ask"), ("/console/knowledge-bases", "Knowledge bases")]
    if principal.allows(Scope.INGEST):
        pages.append(("/console/upload", "Upload"))
    pages.append(("/console/documents", "Documents"))
    if principal.allows(Scope.ADMIN):
        pages += [("/console/analytics", "Analytics"), ("/console/api-keys", "API keys"), ("/console/users", "Users")]
        pages += [("/console/groups", "Groups"), ("/console/identity-provider", "Single sign-on")]
    return pages


def render(
    request: Request, name: str, principal: Principal | None, status_code: int = 200, **context: Any
) -> Response:
    state = get_state(request)
    csrf = csrf_token(state.tokens.key, principal.session_id) if principal and principal.session_id else ""
    values = {
        "principal": principal,
        "nav": nav(principal),
        "path": request.url.path,
        "csrf_token": csrf,
        "static": STATIC_PATH,
        "can": (lambda scope: principal is not None and principal.allows(Scope(scope))),
        **context,
    }
    return TEMPLATES.TemplateResponse(request, name, values, status_code=status_code, headers=SECURITY_HEADERS)


class SignInRequired(Exception):
    """No valid browser session: the page sends the browser to the sign-in form."""


class ConsoleRoute(APIRoute):
    """A console route: a domain error becomes an error page with its status (a problem+json body is for
    API clients), a missing session a redirect to the sign-in form."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except (SignInRequired, Unauthenticated):
                return await _signed_in_again(request)
            except RagApiError as exc:
                principal = getattr(request.state, "authenticated", None)
                return render(request, "error.html", principal, exc.status, title=exc.title, detail=exc.detail)

        return handle


async def _signed_in_again(request: Request) -> Response:
    """The access token has expired (or there is none): a page load swaps the refresh cookie for a new pair
    and comes back to the same page; without one that works, the sign-in form, then back here."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    state = get_state(request)
    refresh = request.cookies.get(REFRESH_COOKIE)
    if request.method == "GET" and refresh:
        try:
            pair = await users.refresh(state.db, state.tokens, refresh)
        except Unauthenticated:
            pass
        else:
            response = Response(status_code=303, headers={"Location": target})
            set_session(response, state.settings, request, pair.access_token, pair.refresh_token)
            return response
    response = Response(status_code=303, headers={"Location": f"/console/login?next={quote(target, safe='/')}"})
    if request.cookies.get(SESSION_COOKIE):
        clear_session(response, state.settings, request)
    return response
