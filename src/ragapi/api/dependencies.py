"""Request dependencies, in the order a request meets them:

credential (X-API-Key, or Authorization: Bearer <API key | access token>, or a browser session's cookie
with its CSRF token on state-changing requests: `ragapi.api.cookies`) → `Principal` → scope or role
check → `TenantContext` (with the end user a delegating key acts for, and the reader view every database
session of the request then has) → rate limits (tenant, then key or user) → the route.

Every route declares who may call it through one of the aliases at the bottom (`QueryTenant`,
`IngestTenant`, `AdminTenant`, `CurrentUser`, `Superadmin`) or, for the public sign-in routes, `IpLimited`;
the tenant comes only from the verified credential. What a route works with (the domain services, the
resource its path names) comes from `ragapi.api.services`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import Scope as StarletteScope

from ragapi.api.client_ip import client_ip
from ragapi.api.cookies import CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE, csrf_matches
from ragapi.api.state import AppState
from ragapi.core import access, request_context
from ragapi.core.errors import Forbidden, RateLimited, Unauthenticated
from ragapi.core.metrics import RATE_LIMIT_REJECTIONS
from ragapi.core.ratelimit import Limit
from ragapi.tenants.api_keys import principal_for_api_key
from ragapi.tenants.context import Principal, Scope, TenantContext
from ragapi.tenants.delegation import delegated_view, parse_groups
from ragapi.tenants.keys import looks_like_key
from ragapi.tenants.users import principal_for_access_token

# Declared for the OpenAPI document (Swagger's Authorize button); the credential is read below.
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Tenant API key")
_bearer = HTTPBearer(auto_error=False, description="API key or user access token")
KeyDoc = Annotated[str | None, Depends(_api_key_header)]
BearerDoc = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.services
    return state


def credential_from_headers(x_api_key: str | None, authorization: str | None) -> str:
    if x_api_key:
        return x_api_key.strip()
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    raise Unauthenticated("missing credentials: send X-API-Key, or Authorization: Bearer <API key or access token>")


async def principal_for_credential(state: AppState, credential: str) -> Principal:
    """The principal of an API key or a user's access token (Unauthenticated if it is neither, valid)."""
    if looks_like_key(credential):
        return await principal_for_api_key(state.db, state.settings, credential)
    return await principal_for_access_token(state.db, state.settings, state.tokens, credential)


async def principal_for_request(request: Request) -> Principal:
    """The request's verified principal (once per request: `CredentialsFirstMiddleware` may have found it
    before the body was read)."""
    known: Principal | None = getattr(request.state, "authenticated", None)
    if known is not None:
        return known
    state = get_state(request)
    x_api_key, authorization = request.headers.get("x-api-key"), request.headers.get("authorization")
    cookie = request.cookies.get(SESSION_COOKIE)
    with request_context.timed("auth"):
        if cookie and not x_api_key and not authorization:
            principal = await principal_for_access_token(state.db, state.settings, state.tokens, cookie)
            if request.method not in SAFE_METHODS:
                check_csrf(state, principal, request.headers.get(CSRF_HEADER))
        else:
            principal = await principal_for_credential(state, credential_from_headers(x_api_key, authorization))
    # For the logs: context variables for records written during the request, request state for the
    # access log written after it.
    who = f"{principal.kind}:{principal.id}"
    request_context.principal.set(who)
    request.state.principal = who
    if principal.tenant_id is not None:
        request_context.tenant_id.set(str(principal.tenant_id))
        request.state.tenant_id = str(principal.tenant_id)
    request.state.authenticated = principal
    return principal


def check_csrf(state: AppState, principal: Principal, presented: str | None) -> None:
    """A browser session's state-changing request must prove it comes from a page of ours (api.cookies)."""
    if not csrf_matches(state.tokens.key, principal.session_id, presented):
        raise Forbidden("a browser session's request needs the page's CSRF token (X-CSRF-Token)")


async def authenticate_scope(scope: StarletteScope) -> Principal:
    """`principal_for_request` for middleware, which has the ASGI scope and not yet a request."""
    return await principal_for_request(Request(scope))


async def enforce_limits(request: Request, limits: Sequence[Limit]) -> None:
    """Spend one request from every limit (or none); the decision feeds the RateLimit-* headers."""
    state = get_state(request)
    if not state.settings.rate_limits_enabled or not limits:
        return
    with request_context.timed("limits"):
        decision = await state.limiter.hit(limits)
    request.state.ratelimit = decision
    if not decision.allowed:
        RATE_LIMIT_REJECTIONS.labels(decision.name).inc()
        raise RateLimited(
            f"{decision.name} rate limit of {decision.limit} requests per minute exceeded",
            retry_after_s=int(decision.retry_after_s) + 1,
            limit_headers=decision.headers(),
        )


def principal_limits(state: AppState, principal: Principal, cost: int = 1) -> list[Limit]:
    """The limits a principal's request spends `cost` requests from (a LangServe batch: one per input)."""
    limits = []
    if principal.tenant_id is not None and principal.plan is not None:
        limits.append(Limit("tenant", f"tenant:{principal.tenant_id}", principal.plan.rate_limit_per_minute, cost=cost))
    own = principal.rate_limit_per_minute or state.settings.principal_rate_limit_per_minute
    limits.append(Limit("principal", f"{principal.kind}:{principal.id}", own, cost=cost))
    return limits


async def limit_principal(request: Request, principal: Principal) -> None:
    """Spend one request from the principal's own limits (and its tenant's)."""
    await enforce_limits(request, principal_limits(get_state(request), principal))


async def tenant_for(request: Request, scope: Scope) -> TenantContext:
    """Authenticate and check the scope: the tenant a route may act for (not yet rate-limited)."""
    principal = await principal_for_request(request)
    if principal.tenant_id is None or principal.plan is None:
        raise Forbidden("superadmins manage tenants and read no tenant's data; use a tenant account or key")
    if not principal.allows(scope):
        raise Forbidden(f"this credential lacks the '{scope.value}' scope")
    known: TenantContext | None = getattr(request.state, "tenant", None)
    if known is not None:
        return known
    state = get_state(request)
    groups = parse_groups(request.headers.get("x-on-behalf-of-groups"), state.settings.max_delegated_groups)
    delegated = await delegated_view(
        state.db, principal, request.headers.get("x-on-behalf-of"), groups, state.settings.user_external_id_max_chars
    )
    tenant = TenantContext(tenant_id=principal.tenant_id, principal=principal, plan=principal.plan, delegated=delegated)
    # Every database session of this request reads as this view (row-level security): set here, where
    # the credential is checked, and nowhere else.
    access.current.set(tenant.view)
    request.state.tenant = tenant
    return tenant


async def authorize(request: Request, scope: Scope) -> TenantContext:
    """Authenticate, check the scope, rate-limit: the whole gate for a tenant route. A request spends
    from its limits once, however many of its dependencies authorize it."""
    tenant = await tenant_for(request, scope)
    if not getattr(request.state, "limited", False):
        await enforce_limits(request, principal_limits(get_state(request), tenant.principal))
        request.state.limited = True
    return tenant


def require(scope: Scope) -> Callable[..., Coroutine[Any, Any, TenantContext]]:
    async def check(request: Request, _key: KeyDoc, _bearer: BearerDoc) -> TenantContext:
        return await authorize(request, scope)

    return check


async def current_user(request: Request, _key: KeyDoc, _bearer: BearerDoc) -> Principal:
    principal = await principal_for_request(request)
    if principal.kind != "user":
        raise Forbidden("this route needs a user's access token, not an API key")
    await limit_principal(request, principal)
    return principal


async def superadmin(request: Request, _key: KeyDoc, _bearer: BearerDoc) -> Principal:
    principal = await principal_for_request(request)
    if not principal.is_superadmin:
        raise Forbidden("this route needs a superadmin")
    await limit_principal(request, principal)
    return principal


async def ip_limited(request: Request) -> str:
    """For routes without credentials (sign-in, sign-up, refresh, reset): limit per client address."""
    state = get_state(request)
    ip = client_ip(request, state.trusted_proxies)
    await enforce_limits(request, [Limit("ip", f"ip:{ip}", state.settings.ip_rate_limit_per_minute)])
    return ip


QueryTenant = Annotated[TenantContext, Depends(require(Scope.QUERY))]
IngestTenant = Annotated[TenantContext, Depends(require(Scope.INGEST))]
FeedbackTenant = Annotated[TenantContext, Depends(require(Scope.FEEDBACK))]
AdminTenant = Annotated[TenantContext, Depends(require(Scope.ADMIN))]
CurrentUser = Annotated[Principal, Depends(current_user)]
Superadmin = Annotated[Principal, Depends(superadmin)]
IpLimited = Annotated[str, Depends(ip_limited)]
