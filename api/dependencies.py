"""Request dependencies, in the order a request meets them: state → credential → tenant scope → scope check."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.state import AppState
from core.errors import Forbidden, Unauthenticated
from tenants.context import Scope, TenantContext
from tenants.service import authenticate

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Tenant API key")
_bearer = HTTPBearer(auto_error=False, description="Tenant API key as a bearer token")


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.rag
    return state


State = Annotated[AppState, Depends(get_state)]


def credential_from_headers(x_api_key: str | None, authorization: str | None) -> str:
    if x_api_key:
        return x_api_key.strip()
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    raise Unauthenticated("missing credentials: send X-API-Key or Authorization: Bearer <api key>")


async def tenant_for_request(request: Request) -> TenantContext:
    """Authenticate a raw request (also used by the LangServe routes, which have no dependencies)."""
    key = credential_from_headers(request.headers.get("x-api-key"), request.headers.get("authorization"))
    return await authenticate(get_state(request).db, key)


async def current_tenant(
    request: Request,
    api_key: Annotated[str | None, Depends(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> TenantContext:
    key = credential_from_headers(api_key, f"Bearer {bearer.credentials}" if bearer else None)
    return await authenticate(get_state(request).db, key)


def require(scope: Scope) -> Callable[..., Coroutine[Any, Any, TenantContext]]:
    async def check(tenant: Annotated[TenantContext, Depends(current_tenant)]) -> TenantContext:
        if not tenant.allows(scope):
            raise Forbidden(f"this API key lacks the '{scope.value}' scope")
        return tenant

    return check


QueryTenant = Annotated[TenantContext, Depends(require(Scope.QUERY))]
IngestTenant = Annotated[TenantContext, Depends(require(Scope.INGEST))]
