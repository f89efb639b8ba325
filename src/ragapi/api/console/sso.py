"""An admin's page for the tenant's identity provider (OpenID Connect): its settings, changed through
`PUT /v1/identity-provider` by the page's script; the client secret can be replaced or removed, never
read back. It also shows what to register at the provider (the redirect URI) and the link that opens the
console's sign-in with this tenant's provider offered (signing in is `console.session`'s)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ragapi.api.console.rendering import ConsoleRoute, render
from ragapi.api.console.session import ConsoleUser
from ragapi.api.dependencies import authorize
from ragapi.api.services import DatabaseDep, SettingsDep
from ragapi.api.sso_links import console_sign_in, redirect_uri
from ragapi.core.errors import NotFound
from ragapi.tenants import identity_providers
from ragapi.tenants.context import Scope

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


@router.get("/identity-provider")
async def identity_provider(
    request: Request, principal: ConsoleUser, db: DatabaseDep, settings: SettingsDep
) -> Response:
    tenant = await authorize(request, Scope.ADMIN)
    try:
        provider = await identity_providers.get(db, tenant.tenant_id)
    except NotFound:
        provider = None
    return render(
        request,
        "identity_provider.html",
        principal,
        provider=provider,
        redirect_uri=redirect_uri(request, settings, tenant.tenant_id),
        sign_in_link=console_sign_in(request, settings, tenant.tenant_id),
        auth_methods=identity_providers.TOKEN_AUTH_METHODS,
        roles=[role.value for role in identity_providers.SIGN_IN_ROLES],
    )
