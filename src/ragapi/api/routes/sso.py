"""Single sign-on: a tenant's identity provider (`/v1/identity-provider` for its admins,
`/v1/tenants/{id}/identity-provider` for superadmins) and the browser's way through it
(`/v1/auth/oidc/{tenant}/login` → the provider → `/v1/auth/oidc/{tenant}/callback` → tokens as
`/v1/auth/login` gives them; or, for a sign-in started from the console's sign-in page with
`destination=console`, the console's session cookies and a redirect to /console, a fixed path).

The browser-binding cookie is HttpOnly, SameSite=Lax (the callback is a top-level navigation from the
provider's site, which Lax lets through), Secure when the callback is https, and only sent to
/v1/auth/oidc/.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from ragapi.api.console.session import sign_in_failed, start_session
from ragapi.api.dependencies import AdminTenant, IpLimited, Superadmin
from ragapi.api.services import DatabaseDep, SettingsDep, SsoDep
from ragapi.api.sso_links import redirect_uri
from ragapi.core.errors import RagApiError
from ragapi.core.settings import Settings
from ragapi.schemas import IdentityProviderIn, IdentityProviderOut, TokenResponse
from ragapi.tenants import identity_providers, service
from ragapi.tenants.identity_providers import IdentityProvider, ProviderChange
from ragapi.tenants.sso import Callback, Destination, destination_of

router = APIRouter(tags=["single sign-on"])

COOKIE = "ragapi_oidc"
COOKIE_PATH = "/v1/auth/oidc/"
_PARAM = Annotated[str | None, Query(max_length=2048)]


def wants_page(request: Request) -> bool:
    """A browser navigating (its Accept names HTML) gets the console's page for a failed sign-in; any
    other client the problem+json every API route answers with."""
    return "text/html" in request.headers.get("accept", "")


def provider_out(provider: IdentityProvider, request: Request, settings: Settings) -> IdentityProviderOut:
    return IdentityProviderOut(
        tenant_id=provider.tenant_id,
        issuer=provider.issuer,
        client_id=provider.client_id,
        client_secret_set=provider.secret_set,
        allowed_domains=list(provider.allowed_domains),
        groups_claim=provider.groups_claim,
        scopes=list(provider.scopes),
        default_role=provider.default_role.value,
        token_auth_method=provider.token_auth_method,
        redirect_uri=redirect_uri(request, settings, provider.tenant_id),
        created_at=provider.created_at,
        updated_at=provider.updated_at,
    )


def _change(body: IdentityProviderIn) -> ProviderChange:
    return ProviderChange(
        issuer=body.issuer,
        client_id=body.client_id,
        client_secret=body.client_secret,
        allowed_domains=body.allowed_domains,
        groups_claim=body.groups_claim,
        scopes=body.scopes,
        default_role=body.default_role,
        token_auth_method=body.token_auth_method,
    )


@router.get("/v1/identity-provider", response_model=IdentityProviderOut, summary="My tenant's identity provider")
async def get_own(request: Request, db: DatabaseDep, settings: SettingsDep, tenant: AdminTenant) -> IdentityProviderOut:
    return provider_out(await identity_providers.get(db, tenant.tenant_id), request, settings)


@router.put("/v1/identity-provider", response_model=IdentityProviderOut, summary="Set my tenant's identity provider")
async def put_own(
    body: IdentityProviderIn, request: Request, db: DatabaseDep, settings: SettingsDep, tenant: AdminTenant
) -> IdentityProviderOut:
    provider = await identity_providers.put(db, settings, tenant.tenant_id, _change(body))
    return provider_out(provider, request, settings)


@router.delete("/v1/identity-provider", status_code=204, summary="Remove my tenant's identity provider")
async def delete_own(db: DatabaseDep, tenant: AdminTenant) -> Response:
    await identity_providers.delete(db, tenant.tenant_id)
    return Response(status_code=204)


@router.get("/v1/tenants/{tenant_id}/identity-provider", response_model=IdentityProviderOut)
async def get_any(
    tenant_id: uuid.UUID, request: Request, db: DatabaseDep, settings: SettingsDep, _admin: Superadmin
) -> IdentityProviderOut:
    return provider_out(await identity_providers.get(db, tenant_id), request, settings)


@router.put("/v1/tenants/{tenant_id}/identity-provider", response_model=IdentityProviderOut)
async def put_any(
    tenant_id: uuid.UUID,
    body: IdentityProviderIn,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    _admin: Superadmin,
) -> IdentityProviderOut:
    await service.get_tenant(db, tenant_id)  # 404 for a tenant that does not exist
    provider = await identity_providers.put(db, settings, tenant_id, _change(body))
    return provider_out(provider, request, settings)


@router.delete("/v1/tenants/{tenant_id}/identity-provider", status_code=204)
async def delete_any(tenant_id: uuid.UUID, db: DatabaseDep, _admin: Superadmin) -> Response:
    await identity_providers.delete(db, tenant_id)
    return Response(status_code=204)


@router.get(
    "/v1/auth/oidc/{tenant_id}/login",
    status_code=302,
    response_class=RedirectResponse,
    summary="Start signing in through the tenant's identity provider (a redirect to it)",
)
async def login(
    tenant_id: uuid.UUID,
    request: Request,
    settings: SettingsDep,
    sso: SsoDep,
    _ip: IpLimited,
    destination: Annotated[
        Destination,
        Query(description="Where the sign-in ends: `tokens` (JSON from the callback) or `console` (its session)"),
    ] = Destination.TOKENS,
) -> Response:
    callback = redirect_uri(request, settings, tenant_id)
    try:
        started = await sso.start(tenant_id, callback, request.cookies.get(COOKIE), destination)
    except RagApiError as exc:
        if destination is Destination.CONSOLE and wants_page(request):
            return sign_in_failed(request, exc)
        raise
    response = RedirectResponse(started.authorization_url, status_code=302, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        COOKIE,
        started.browser_secret,
        max_age=settings.oidc_state_ttl_s,
        path=COOKIE_PATH,
        secure=callback.startswith("https://"),
        httponly=True,
        samesite="lax",
    )
    return response


@router.get(
    "/v1/auth/oidc/{tenant_id}/callback",
    response_model=TokenResponse,
    summary="Where the identity provider sends the browser back: tokens as /v1/auth/login gives them",
    responses={
        303: {
            "description": "A sign-in started with `destination=console`: the console's session cookies "
            "(as its sign-in form sets them) and a redirect to /console"
        }
    },
)
async def callback(
    tenant_id: uuid.UUID,
    request: Request,
    response: Response,
    sso: SsoDep,
    _ip: IpLimited,
    state: _PARAM = None,
    code: _PARAM = None,
    error: _PARAM = None,
    iss: _PARAM = None,
) -> TokenResponse | Response:
    response.headers["Cache-Control"] = "no-store"
    returned = Callback(state=state, code=code, error=error, iss=iss)
    try:
        signed = await sso.finish(tenant_id, returned, request.cookies.get(COOKIE))
    except RagApiError as exc:
        if destination_of(state) is Destination.CONSOLE and wants_page(request):  # a person: a page, not JSON
            return sign_in_failed(request, exc)
        raise
    pair = signed.pair
    if signed.destination is Destination.CONSOLE:
        # Never a target from the request: the console's home, which sends each user to their first page.
        to_console = Response(status_code=303, headers={"Location": "/console", "Cache-Control": "no-store"})
        start_session(request, to_console, pair)
        to_console.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax")
        return to_console
    return TokenResponse(access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in)
