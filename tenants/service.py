"""Tenant provisioning and API-key authentication."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select

from core.database import Database
from core.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from tenants.context import Scope, TenantContext
from tenants.keys import generate_key, hash_key, looks_like_key
from tenants.models import ApiKey, Tenant

# last_used_at is written at most this often per key, so authentication stays read-mostly.
LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class CreatedTenant:
    tenant_id: uuid.UUID
    api_key: str


async def create_tenant(db: Database, name: str) -> CreatedTenant:
    """Create a tenant and its first API key (admin scope). The key is returned once, never stored."""
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise InvalidInput("tenant name must be 1 to 200 characters")
    tenant = Tenant(name=name)
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
    return CreatedTenant(tenant_id=tenant.id, api_key=key.plaintext)


async def create_api_key(db: Database, tenant_id: uuid.UUID, name: str, scopes: list[Scope]) -> str:
    key = generate_key()
    async with db.admin_session() as session:
        session.add(
            ApiKey(
                tenant_id=tenant_id,
                name=name,
                prefix=key.prefix,
                key_hash=key.digest,
                scopes=[s.value for s in scopes],
            )
        )
    return key.plaintext


async def revoke_api_key(db: Database, key_id: uuid.UUID) -> None:
    async with db.admin_session() as session:
        await session.execute(update(ApiKey).where(col(ApiKey.id) == key_id).values(revoked_at=datetime.now(UTC)))


async def authenticate(db: Database, raw_key: str) -> TenantContext:
    """Resolve an API key to its tenant scope; every failure looks the same to the caller."""
    if not looks_like_key(raw_key):
        raise Unauthenticated("invalid API key")
    now = datetime.now(UTC)
    async with db.admin_session() as session:
        row = (
            await session.execute(
                select(ApiKey, Tenant.status)
                .join(Tenant, col(Tenant.id) == col(ApiKey.tenant_id))
                .where(col(ApiKey.key_hash) == hash_key(raw_key))
            )
        ).first()
        if row is None:
            raise Unauthenticated("invalid API key")
        key, tenant_status = row
        if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
            raise Unauthenticated("invalid API key")
        if tenant_status != "active":
            raise Forbidden("tenant is suspended")
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
            await session.execute(update(ApiKey).where(col(ApiKey.id) == key.id).values(last_used_at=now))
    return TenantContext(tenant_id=key.tenant_id, key_id=key.id, scopes=frozenset(Scope(s) for s in key.scopes))


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
