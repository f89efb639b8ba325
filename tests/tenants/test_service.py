from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from ragapi.core.database import Database
from ragapi.core.errors import Forbidden, InvalidInput, Unauthenticated
from ragapi.core.settings import Settings
from ragapi.tenants.api_keys import create_api_key, principal_for_api_key, revoke_api_key
from ragapi.tenants.context import Principal, Scope
from ragapi.tenants.keys import generate_key, hash_key
from ragapi.tenants.service import create_tenant
from tests.conftest import TenantHandle


@pytest.fixture
def authenticate(db: Database, settings: Settings):  # type: ignore[no-untyped-def]
    async def check(key: str) -> Principal:
        return await principal_for_api_key(db, settings, key)

    return check


def test_keys_are_random_prefixed_and_hashed() -> None:
    a, b = generate_key(), generate_key()
    assert a.plaintext != b.plaintext
    assert a.plaintext.startswith(a.prefix + "_")
    assert a.digest == hash_key(a.plaintext)
    assert a.plaintext not in a.digest


async def test_first_key_is_admin_and_stored_hashed(db: Database, authenticate) -> None:  # type: ignore[no-untyped-def]
    created = await create_tenant(db, "  Acme Corp  ")
    context = await authenticate(created.api_key)
    assert context.tenant_id == created.tenant_id
    assert context.allows(Scope.ADMIN) and context.allows(Scope.INGEST) and context.allows(Scope.QUERY)
    async with db.admin_session() as session:
        stored = (
            await session.execute(text("SELECT key_hash FROM api_keys WHERE tenant_id = :t"), {"t": created.tenant_id})
        ).scalar_one()
        name = (
            await session.execute(text("SELECT name FROM tenants WHERE id = :t"), {"t": created.tenant_id})
        ).scalar_one()
    assert stored == hash_key(created.api_key) and created.api_key not in stored
    assert name == "Acme Corp"


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
async def test_tenant_name_is_validated(db: Database, name: str) -> None:
    with pytest.raises(InvalidInput):
        await create_tenant(db, name)


@pytest.mark.parametrize("key", ["", "nonsense", "rag_deadbeef_" + "A" * 43])
async def test_unknown_keys_are_rejected(authenticate, key: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Unauthenticated):
        await authenticate(key)


async def test_revoked_key_stops_working_on_next_request(db: Database, tenant: TenantHandle, authenticate) -> None:  # type: ignore[no-untyped-def]
    key = (await create_api_key(db, tenant.tenant_id, "ci", [Scope.QUERY])).plaintext
    context = await authenticate(key)
    assert context.allows(Scope.QUERY) and not context.allows(Scope.INGEST)
    await revoke_api_key(db, tenant.tenant_id, context.id)
    with pytest.raises(Unauthenticated):
        await authenticate(key)


async def test_expired_key_is_rejected(db: Database, tenant: TenantHandle, authenticate) -> None:  # type: ignore[no-untyped-def]
    context = await authenticate(tenant.api_key)
    async with db.admin_session() as session:
        await session.execute(
            text("UPDATE api_keys SET expires_at = :e WHERE id = :k"),
            {"e": datetime.now(UTC) - timedelta(seconds=1), "k": context.id},
        )
    with pytest.raises(Unauthenticated):
        await authenticate(tenant.api_key)


async def test_suspended_tenant_is_forbidden(db: Database, tenant: TenantHandle, authenticate) -> None:  # type: ignore[no-untyped-def]
    async with db.admin_session() as session:
        await session.execute(text("UPDATE tenants SET status = 'suspended' WHERE id = :t"), {"t": tenant.tenant_id})
    with pytest.raises(Forbidden):
        await authenticate(tenant.api_key)
