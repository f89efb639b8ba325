"""Browser sessions (the console): the user's access and refresh tokens in cookies, and the CSRF token
bound to the login session.

A signed-in browser holds two HttpOnly cookies: `ragapi_session`, the access token (sent on every path,
so the JSON API accepts it as it accepts `Authorization: Bearer`), and `ragapi_refresh`, the refresh token
(sent only under /console, where the console swaps it for a new pair when the access token has expired).
They are the same tokens and the same login session (`auth_sessions`) as `POST /v1/auth/login` issues:
signing out, a password change or a deactivation ends them as it ends any other.

A cookie is sent by the browser whatever page made the request, so every state-changing request that
authenticates with the cookie must also carry the CSRF token (synchronizer token pattern): an HMAC of the
login session's id under the token signing key, which the console's pages carry and its script sends as
`X-CSRF-Token` (a form field in the console's own forms). Another site can make the browser send the
cookie but cannot read the token. SameSite=Lax on the session cookie and Strict on the refresh cookie
are a second line. Before there is a session (the sign-in form), a random `ragapi_csrf` cookie and the
same value in the form do the job (double submit).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import uuid

from starlette.requests import HTTPConnection
from starlette.responses import Response

from ragapi.core.settings import Settings

SESSION_COOKIE = "ragapi_session"
REFRESH_COOKIE = "ragapi_refresh"
LOGIN_CSRF_COOKIE = "ragapi_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
REFRESH_PATH = "/console"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token(key: str, session_id: uuid.UUID) -> str:
    """The login session's CSRF token: stable for the session (a refresh keeps it), useless after it."""
    digest = hmac.new(key.encode(), b"console-csrf:" + session_id.bytes, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def csrf_matches(key: str, session_id: uuid.UUID | None, presented: str | None) -> bool:
    if session_id is None or not presented:
        return False
    return hmac.compare_digest(csrf_token(key, session_id).encode(), presented.encode())


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def secure_cookies(settings: Settings, conn: HTTPConnection) -> bool:
    """SESSION_COOKIE_SECURE, or when unset: Secure except over plain http to a loopback address, where
    nothing crosses a network and browsers would otherwise drop the cookie (`make run`)."""
    if settings.session_cookie_secure is not None:
        return settings.session_cookie_secure
    if conn.url.scheme == "https":
        return True
    host = conn.url.hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def set_session(response: Response, settings: Settings, conn: HTTPConnection, access: str, refresh: str) -> None:
    secure = secure_cookies(settings, conn)
    max_age = settings.refresh_token_ttl_s  # the access token expires sooner; its cookie brings the refresh
    response.set_cookie(SESSION_COOKIE, access, max_age=max_age, path="/", secure=secure, httponly=True, samesite="lax")
    response.set_cookie(
        REFRESH_COOKIE, refresh, max_age=max_age, path=REFRESH_PATH, secure=secure, httponly=True, samesite="strict"
    )


def clear_session(response: Response, settings: Settings, conn: HTTPConnection) -> None:
    secure = secure_cookies(settings, conn)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="lax")
    response.delete_cookie(REFRESH_COOKIE, path=REFRESH_PATH, secure=secure, httponly=True, samesite="strict")
