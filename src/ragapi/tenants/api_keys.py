"""API keys for machines: created by a tenant admin, scoped, optionally expiring and rate-limited, stored
hashed, revocable with effect on the next request. A key never reaches beyond its tenant and scopes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select

from ragapi.core.database import Database
from ragapi.core.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from ragapi.core.settings import Settings
from ragapi.tenants.context import Principal, Scope, expand
from ragapi.tenants.keys import generate_key, hash_key, looks_like_key
from ragapi.tenants.models import ApiKey
from ragapi.tenants.plans import PLAN_COLUMNS, plan_from_row

# last_used_at is written at most this often per key, so authentication stays read-mostly.
LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: ApiKey
    plaintext: str  # shown once, never stored


async def create_api_key(
    db: Database,
    tenant_id: uuid.UUID,
    name: str,
    scopes: list[Scope],
    *,
    granted_by: frozenset[Scope] | None = None,
    created_by: uuid.UUID | None = None,
    expires_at: datetime | None = None,
    rate_limit_per_minute: int | None = None,
    knowledge_base_ids: frozenset[uuid.UUID] | None = None,
    creator_knowledge_bases: frozenset[uuid.UUID] | None = None,
) -> CreatedKey:
    """Create a key in the caller's tenant; it can hold no scope its creator lacks, nor reach a knowledge
    base its creator cannot (`knowledge_base_ids`: ids of the tenant's, checked by the caller)."""
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise InvalidInput("key name must be 1 to 200 characters")
    if not scopes:
        raise InvalidInput("a key needs at least one scope")
    if granted_by is not None and not expand(frozenset(scopes)) <= expand(granted_by):
        raise Forbidden("a key cannot hold a scope its creator lacks")
    if creator_knowledge_bases is not None and (
        knowledge_base_ids is None or not knowledge_base_ids <= creator_knowledge_bases
    ):
        raise Forbidden("a key cannot reach a knowledge base its creator cannot")
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise InvalidInput("expires_at must be in the future")
    new = generate_key()
    key = ApiKey(
        tenant_id=tenant_id,
        name=name,
        prefix=new.prefix,
        key_hash=new.digest,
        scopes=sorted({s.value for s in scopes}),
        expires_at=expires_at,
        rate_limit_per_minute=rate_limit_per_minute,
        knowledge_base_ids=sorted(knowledge_base_ids) if knowledge_base_ids is not None else None,
        created_by=created_by,
    )
    async with db.tenant_session(tenant_id) as session:
        session.add(key)
    return CreatedKey(key, new.plaintext)


async def list_api_keys(db: Database, tenant_id: uuid.UUID) -> list[ApiKey]:
    async with db.tenant_session(tenant_id) as session:
        rows = await session.execute(
            select(ApiKey).where(col(ApiKey.tenant_id) == tenant_id).order_by(col(ApiKey.created_at), col(ApiKey.id))
        )
        return list(rows.scalars())


async def revoke_api_key(db: Database, tenant_id: uuid.UUID, key_id: uuid.UUID) -> None:
    """Revoke a key of this tenant; another tenant's key id is simply not found."""
    async with db.tenant_session(tenant_id) as session:
        result = await session.execute(
            update(ApiKey)
            .where(col(ApiKey.id) == key_id, col(ApiKey.tenant_id) == tenant_id, col(ApiKey.revoked_at).is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            exists = await session.execute(
                select(ApiKey.id).where(col(ApiKey.id) == key_id, col(ApiKey.tenant_id) == tenant_id)
            )
            if exists.first() is None:
                raise NotFound("no such API key")


# The key and its tenant in one row: what a Principal and its plan need. Plain SQL on the driver
# (`Database.fetch_row`), since every API-key request runs it.
_KEY_LOOKUP = f"""
SELECT k.id, k.tenant_id, k.scopes, k.rate_limit_per_minute AS key_rate_limit, k.expires_at, k.revoked_at,
       k.last_used_at, k.knowledge_base_ids, t.status, t.access_version, {", ".join(f"t.{c}" for c in PLAN_COLUMNS)}
FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
WHERE k.key_hash = $1
"""  # noqa: S608 - fixed column names, no input
_TOUCH = "UPDATE api_keys SET last_used_at = $2 WHERE id = $1"


async def principal_for_api_key(db: Database, settings: Settings, raw_key: str) -> Principal:
    """Resolve a key; unknown, revoked and expired keys look the same to the caller."""
    if not looks_like_key(raw_key):
        raise Unauthenticated("invalid API key")
    now = datetime.now(UTC)
    row = await db.fetch_row(_KEY_LOOKUP, hash_key(raw_key))
    if row is None:
        raise Unauthenticated("invalid API key")
    if row["revoked_at"] is not None or (row["expires_at"] is not None and row["expires_at"] <= now):
        raise Unauthenticated("invalid API key")
    if row["status"] != "active":
        raise Forbidden("tenant is suspended")
    if row["last_used_at"] is None or now - row["last_used_at"] > LAST_USED_RESOLUTION:
        await db.fetch_row(_TOUCH, row["id"], now)
    return Principal(
        kind="key",
        id=row["id"],
        tenant_id=row["tenant_id"],
        scopes=frozenset(Scope(s) for s in row["scopes"]),
        plan=plan_from_row(row, settings),
        rate_limit_per_minute=row["key_rate_limit"],
        knowledge_base_ids=frozenset(row["knowledge_base_ids"]) if row["knowledge_base_ids"] is not None else None,
        access_version=row["access_version"],
    )
