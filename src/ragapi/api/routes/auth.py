"""/v1/auth: sign-up, sign-in (OAuth2 password form), token refresh, sign-out, password change and reset.

The routes without credentials are limited per client address (`IpLimited`); sign-in is also limited
per account, so a password cannot be guessed from many addresses either.
"""

from __future__ import annotations

import logging
from typing import Annotated

import httpx
from fastapi import APIRouter, BackgroundTasks, Form, Request, Response

from ragapi.api.dependencies import CurrentUser, IpLimited, enforce_limits
from ragapi.api.services import DatabaseDep, SettingsDep, TokensDep
from ragapi.core.ratelimit import Limit
from ragapi.schemas import (
    ForgotPassword,
    LoginForm,
    PasswordChange,
    PasswordReset,
    RefreshRequest,
    RegisterRequest,
    TokenResponse,
    UserOut,
)
from ragapi.tenants import users
from ragapi.tenants.models import User

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/auth", tags=["auth"])

# The routes that take a body without a credential (`IpLimited`): every other /v1 route with a body is
# authenticated before its body is read (api.middleware.CredentialsFirstMiddleware).
PUBLIC_PATHS = frozenset(
    f"/v1/auth/{name}" for name in ("register", "login", "refresh", "forgot-password", "reset-password")
)


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        tenant_id=user.tenant_id,
        email=user.email,
        role=user.role,
        is_active=user.is_active,
        created_at=user.created_at,
        external_id=user.external_id,
    )


def _tokens(pair: users.TokenPair) -> TokenResponse:
    return TokenResponse(access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in)


@router.post("/register", response_model=UserOut, status_code=201, summary="Join a tenant that allows sign-up")
async def register(body: RegisterRequest, db: DatabaseDep, settings: SettingsDep, _ip: IpLimited) -> UserOut:
    user = await users.register(db, settings, body.tenant_id, body.email, body.password)
    return user_out(user)


@router.post("/login", response_model=TokenResponse, summary="Sign in (OAuth2 password form: username = e-mail)")
async def login(
    request: Request,
    form: Annotated[LoginForm, Form()],
    db: DatabaseDep,
    settings: SettingsDep,
    tokens: TokensDep,
    _ip: IpLimited,
) -> TokenResponse:
    account = form.username.strip().lower()[:254]
    await enforce_limits(request, [Limit("login", f"login:{account}", settings.login_rate_limit_per_minute)])
    return _tokens(await users.login(db, tokens, form.username, form.password))


@router.post("/refresh", response_model=TokenResponse, summary="Swap a refresh token for a new pair (rotation)")
async def refresh(body: RefreshRequest, db: DatabaseDep, tokens: TokensDep, _ip: IpLimited) -> TokenResponse:
    return _tokens(await users.refresh(db, tokens, body.refresh_token))


@router.post("/logout", status_code=204, summary="End this session: its access and refresh tokens stop working")
async def logout(db: DatabaseDep, user: CurrentUser) -> Response:
    if user.session_id is not None:
        await users.logout(db, user.session_id)
    return Response(status_code=204)


@router.get("/me", response_model=UserOut, summary="The signed-in user")
async def me(db: DatabaseDep, user: CurrentUser) -> UserOut:
    return user_out(await users.get_user(db, user.id))


@router.post("/password", status_code=204, summary="Change my password; every session and token ends")
async def change_password(body: PasswordChange, db: DatabaseDep, settings: SettingsDep, user: CurrentUser) -> Response:
    await users.change_password(db, settings, user.id, body.current_password, body.new_password)
    return Response(status_code=204)


async def _deliver_reset(url: str, email: str, token: str, expires_at: str) -> None:
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(url, json={"email": email, "token": token, "expires_at": expires_at})
            response.raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("password reset delivery failed: %s", type(exc).__name__)


@router.post(
    "/forgot-password",
    status_code=202,
    response_class=Response,
    summary="Send a reset token to PASSWORD_RESET_WEBHOOK_URL (same answer whether or not the account exists)",
)
async def forgot_password(
    body: ForgotPassword,
    db: DatabaseDep,
    settings: SettingsDep,
    tokens: TokensDep,
    background: BackgroundTasks,
    _ip: IpLimited,
) -> Response:
    url = settings.password_reset_webhook_url
    if url:
        issued = await users.reset_token(db, tokens, body.email)
        if issued is not None:
            token, expires_at = issued
            background.add_task(_deliver_reset, url, body.email.strip().lower(), token, expires_at.isoformat())
    else:
        log.warning("forgot-password called but PASSWORD_RESET_WEBHOOK_URL is not set: nothing is sent")
    return Response(status_code=202)


@router.post("/reset-password", status_code=204, summary="Set a new password with a reset token (single use)")
async def reset_password(
    body: PasswordReset, db: DatabaseDep, settings: SettingsDep, tokens: TokensDep, _ip: IpLimited
) -> Response:
    await users.reset_password(db, settings, tokens, body.token, body.new_password)
    return Response(status_code=204)
