"""Tenants: provisioning (with a first admin key), plans, status and the answer-cache policy."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select

from ragapi.core.database import Database
from ragapi.core.errors import InvalidInput, NotFound
from ragapi.core.settings import Settings
from ragapi.tenants.context import Principal, Scope, TenantContext
from ragapi.tenants.keys import generate_key
from ragapi.tenants.models import ApiKey, Tenant
from ragapi.tenants.plans import plan_for

# What a superadmin may change on a tenant (the API validates the values' types and ranges).
MUTABLE = frozenset(
    {
        "name",
        "plan",
        "status",
        "rate_limit_per_minute",
        "monthly_query_quota",
        "monthly_ingest_bytes_quota",
        "max_document_bytes",
        "allow_registration",
        "registration_role",
        "cache_enabled",
    }
)


# Of those, the ones that may be cleared (None = back to the service default).
NULLABLE = frozenset(
    {"rate_limit_per_minute", "monthly_query_quota", "monthly_ingest_bytes_quota", "max_document_bytes"}
)


@dataclass(frozen=True, slots=True)
class CreatedTenant:
    tenant_id: uuid.UUID
    api_key: str
    tenant: Tenant


def _check_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise InvalidInput("tenant name must be 1 to 200 characters", "name")
    return name


async def create_tenant(db: Database, name: str, **plan: Any) -> CreatedTenant:
    """Create a tenant and its first API key (admin scope). The key is returned once, never stored."""
    unknown = set(plan) - MUTABLE
    if unknown:
        raise InvalidInput(f"unknown tenant fields: {', '.join(sorted(unknown))}")
    tenant = Tenant(name=_check_name(name), **plan)
    key = generate_key()
    async with db.admin_session() as session:
        session.add(tenant)
        await session.flush()
        session.add(
            ApiKey(
                tenant_id=tenant.id,
                name="initial admin key",
                prefix=key.prefix,
                key_hash=key.digest,
                scopes=[Scope.ADMIN.value],
            )
        )
    return CreatedTenant(tenant_id=tenant.id, api_key=key.plaintext, tenant=tenant)


async def list_tenants(db: Database, limit: int, offset: int) -> list[Tenant]:
    async with db.admin_session() as session:
        rows = await session.execute(
            select(Tenant).order_by(col(Tenant.created_at), col(Tenant.id)).limit(limit).offset(offset)
        )
        return list(rows.scalars())


async def get_tenant(db: Database, tenant_id: uuid.UUID) -> Tenant:
    async with db.admin_session() as session:
        tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("no such tenant")
    return tenant


async def update_tenant(db: Database, tenant_id: uuid.UUID, changes: dict[str, Any]) -> Tenant:
    """Apply a superadmin's changes; suspending a tenant locks out its keys and users on their next request."""
    unknown = set(changes) - MUTABLE
    if unknown:
        raise InvalidInput(f"unknown tenant fields: {', '.join(sorted(unknown))}")
    cleared = sorted(k for k, v in changes.items() if v is None and k not in NULLABLE)
    if cleared:
        raise InvalidInput(f"these fields cannot be null: {', '.join(cleared)}")
    if "name" in changes:
        changes["name"] = _check_name(changes["name"])
    async with db.admin_session() as session:
        tenant = await session.get(Tenant, tenant_id, with_for_update=True)
        if tenant is None:
            raise NotFound("no such tenant")
        for field, value in changes.items():
            setattr(tenant, field, value)
        session.add(tenant)
    return tenant


async def set_cache_policy(
    db: Database, tenant_id: uuid.UUID, enabled: bool | None = None, semantic_threshold: float | None = None
) -> None:
    """Switch a tenant's answer cache, or raise its semantic threshold (the global one is a floor)."""
    values: dict[str, object] = {}
    if enabled is not None:
        values["cache_enabled"] = enabled
    if semantic_threshold is not None:
        if not 0.8 <= semantic_threshold <= 1.0:
            raise InvalidInput("semantic threshold must be between 0.8 and 1.0")
        values["semantic_cache_threshold"] = semantic_threshold
    if not values:
        return
    async with db.admin_session() as session:
        result = await session.execute(update(Tenant).where(col(Tenant.id) == tenant_id).values(**values))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound("no such tenant")


OPERATOR = uuid.UUID(int=0)  # the principal id of whoever runs the CLI on the server (logged as `operator`)


async def operator_context(db: Database, settings: Settings, tenant_id: uuid.UUID) -> TenantContext:
    """A tenant scope for the operator's own commands (the CLI, on the server): every scope, the tenant's
    plan. NotFound when there is no such tenant."""
    plan = plan_for(await get_tenant(db, tenant_id), settings)
    principal = Principal(kind="operator", id=OPERATOR, tenant_id=tenant_id, scopes=frozenset(Scope), plan=plan)
    return TenantContext(tenant_id=tenant_id, principal=principal, plan=plan)
