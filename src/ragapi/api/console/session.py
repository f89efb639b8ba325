"""Signing in and out of the console, and who a console page is for.

The sign-in form posts here, not to /v1/auth/login: the same `users.login` (same limits per address and
per account, same login session), but the tokens go into HttpOnly cookies (`ragapi.api.cookies`) rather
than into the page.

Single sign-on: a person names their tenant (or follows their tenant's sign-in link,
`/console/login?tenant=<id>`), and the page offers its identity provider's button, which starts the
OIDC flow with `destination=console`; the callback (`ragapi.api.routes.sso`) then starts the browser
session with `start_session` and sends the browser to /console, or shows `sign_in_failed`.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Query, Request, Response

from ragapi.api.client_ip import client_ip
from ragapi.api.console.rendering import ConsoleRoute, SignInRequired, render
from ragapi.api.cookies import (
    CSRF_HEADER,
    LOGIN_CSRF_COOKIE,
    REFRESH_COOKIE,
    SESSION_COOKIE,
    clear_session,
    csrf_matches,
    new_login_csrf,
    secure_cookies,
    set_session,
)
from ragapi.api.dependencies import enforce_limits, get_state, principal_for_request
from ragapi.core.errors import Forbidden, RagApiError, RateLimited, Unauthenticated
from ragapi.core.ratelimit import Limit
from ragapi.tenants import identity_providers, users
from ragapi.tenants.context import Principal
from ragapi.tenants.tokens import TokenType

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


@dataclass(frozen=True, slots=True)
class SignInProvider:
    name: str  # the provider, as its button names it (its issuer's host)
    tenant: str  # the tenant it signs in to
    url: str  # where its button sends the browser (our start of the OIDC flow, then the provider)


def sign_in_provider(choice: identity_providers.SignInChoice) -> SignInProvider:
    return SignInProvider(
        name=urlsplit(choice.issuer).netloc,
        tenant=choice.tenant_name,
        url=f"/v1/auth/oidc/{choice.tenant_id}/login?destination=console",
    )


async def _sso_choice(request: Request, tenant: str | None) -> tuple[SignInProvider | None, str | None]:
    """The identity provider of the tenant named on the sign-in page, or why there is none to offer (the
    same sentence whether the tenant does not exist, has no provider or shares its name with another)."""
    if not tenant or not tenant.strip():
        return None, None
    state = get_state(request)
    ip = client_ip(request, state.trusted_proxies)
    await enforce_limits(request, [Limit("ip", f"ip:{ip}", state.settings.ip_rate_limit_per_minute)])
    choice = await identity_providers.named_for_sign_in(state.db, tenant)
    if choice is None:
        why = f"No single sign-on is set up for “{tenant.strip()}”: ask your admin for your tenant's sign-in link."
        return None, why
    return sign_in_provider(choice), None


def start_session(request: Request, response: Response, pair: users.TokenPair) -> None:
    """Give the browser a signed-in session (the password form, and an identity provider's callback)."""
    set_session(response, get_state(request).settings, request, pair.access_token, pair.refresh_token)


async def console_user(request: Request) -> Principal:
    """The signed-in browser's principal; without a session cookie, the sign-in form."""
    if not request.cookies.get(SESSION_COOKIE):
        raise SignInRequired
    return await principal_for_request(request)


ConsoleUser = Annotated[Principal, Depends(console_user)]


def safe_next(target: str | None) -> str:
    """Only a console path of this site: never an open redirect."""
    if not target or not target.startswith("/console") or "//" in target or "\\" in target:
        return "/console"
    return target


def _login_page(
    request: Request,
    next_: str,
    error: str | None = None,
    status: int = 200,
    provider: SignInProvider | None = None,
    tenant: str = "",
    sso_error: str | None = None,
) -> Response:
    token = new_login_csrf()
    response = render(
        request,
        "login.html",
        None,
        status,
        login_csrf=token,
        next=next_,
        error=error,
        provider=provider,
        tenant=tenant,
        sso_error=sso_error,
    )
    settings = get_state(request).settings
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path="/console",
        secure=secure_cookies(settings, request),
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("", summary="The console's home")
async def home(principal: ConsoleUser) -> Response:
    target = "/console/tenants" if principal.is_superadmin else "/console/ask"
    return Response(status_code=303, headers={"Location": target})


def sign_in_failed(request: Request, exc: RagApiError) -> Response:
    """A single sign-on started from the console that did not end in a session: the sign-in page, saying
    why, with the error's status (the OIDC routes answer API clients with problem+json instead)."""
    return _login_page(request, "/console", status=exc.status, sso_error=f"Single sign-on failed: {exc.detail}")


@router.get("/login")
async def login_form(
    request: Request,
    next: str | None = None,  # noqa: A002 - the query name
    tenant: Annotated[str | None, Query(max_length=200, description="Single sign-on: the tenant's name or id")] = None,
) -> Response:
    if request.cookies.get(SESSION_COOKIE):
        try:
            await principal_for_request(request)
        except (Unauthenticated, Forbidden):
            pass
        else:
            return Response(status_code=303, headers={"Location": safe_next(next)})
    try:
        provider, sso_error = await _sso_choice(request, tenant)
    except RateLimited as exc:
        provider, sso_error = None, f"Too many attempts: try again in {exc.retry_after_s} s."
    return _login_page(request, safe_next(next), provider=provider, tenant=(tenant or "").strip(), sso_error=sso_error)


@router.post("/login")
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=256)],
    csrf_token: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=2000)] = "/console",  # noqa: A002 - the form field's name
) -> Response:
    state = get_state(request)
    next_ = safe_next(next)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf_token.encode()):
        return _login_page(request, next_, "The form had expired: please sign in again.", 403)
    account = username.strip().lower()[:254]
    try:
        ip = client_ip(request, state.trusted_proxies)
        await enforce_limits(request, [Limit("ip", f"ip:{ip}", state.settings.ip_rate_limit_per_minute)])
        await enforce_limits(request, [Limit("login", f"login:{account}", state.settings.login_rate_limit_per_minute)])
        pair = await users.login(state.db, state.tokens, username, password)
    except Unauthenticated:
        return _login_page(request, next_, "Wrong e-mail or password.", 401)
    except RateLimited as exc:
        return _login_page(request, next_, f"Too many attempts: try again in {exc.retry_after_s} s.", 429)
    response = Response(status_code=303, headers={"Location": next_})
    start_session(request, response, pair)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console")
    return response


def _session_of(request: Request) -> uuid.UUID | None:
    """The login session the browser's cookies name, even with an expired access token."""
    state = get_state(request)
    for cookie, kind in ((SESSION_COOKIE, TokenType.ACCESS), (REFRESH_COOKIE, TokenType.REFRESH)):
        token = request.cookies.get(cookie)
        if token:
            try:
                return state.tokens.verify(token, kind).session_id
            except Unauthenticated:
                continue
    return None


@router.post("/logout")
async def logout(request: Request, csrf_token: Annotated[str, Form(max_length=200)]) -> Response:
    """End the login session (its tokens stop working everywhere) and forget the cookies."""
    state = get_state(request)
    session_id = _session_of(request)
    if session_id is not None:
        if not csrf_matches(state.tokens.key, session_id, csrf_token):
            raise Forbidden("the sign-out form needs the page's CSRF token")
        await users.logout(state.db, session_id)
    response = Response(status_code=303, headers={"Location": "/console/login"})
    clear_session(response, state.settings, request)
    return response


@router.post("/session/refresh", status_code=204)
async def refresh(request: Request) -> Response:
    """The console's script, on a 401 from the API: a new pair for the same login session."""
    state = get_state(request)
    token = request.cookies.get(REFRESH_COOKIE)
    if not token:
        raise Unauthenticated("no browser session")
    claims = state.tokens.verify(token, TokenType.REFRESH)
    if not csrf_matches(state.tokens.key, claims.session_id, request.headers.get(CSRF_HEADER)):
        raise Forbidden("a browser session's request needs the page's CSRF token (X-CSRF-Token)")
    pair = await users.refresh(state.db, state.tokens, token)
    response = Response(status_code=204)
    start_session(request, response, pair)
    return response
