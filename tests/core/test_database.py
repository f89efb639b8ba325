"""Row-level security is the second wall between tenants: it must hold even when a query forgets its
tenant predicate, and the application role must not be able to step around it."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from ragapi.core.database import Database, with_driver
from tests.conftest import TenantHandle


async def _ingest(client, tenant: TenantHandle, body: str) -> None:  # type: ignore[no-untyped-def]
    response = await client.post("/v1/ingest?wait=true", headers=tenant.headers, json={"documents": [{"text": body}]})
    assert response.status_code == 200, response.text


async def test_app_role_owns_nothing_and_cannot_bypass_rls(db: Database) -> None:
    async with db.admin_session() as session:
        role = (
            await session.execute(
                text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :r"), {"r": db.app_role}
            )
        ).one()
        owned = (
            await session.execute(
                text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = :r"),
                {"r": db.app_role},
            )
        ).scalar_one()
        unforced = (
            await session.execute(
                text(
                    "SELECT relname FROM pg_class WHERE relname = ANY(:t) AND NOT (relrowsecurity AND relforcerowsecurity)"
                ),
                {
                    "t": [
                        "tenants",
                        "api_keys",
                        "documents",
                        "chunks",
                        "sparse_terms",
                        "sparse_term_deltas",
                        "ingest_jobs",
                        "knowledge_bases",
                        "semantic_cache",
                    ]
                },
            )
        ).all()
    assert tuple(role) == (False, False)
    assert owned == 0
    assert unforced == []


async def test_unpredicated_query_sees_only_own_tenant(client, db: Database, make_tenant) -> None:  # type: ignore[no-untyped-def]
    a, b = await make_tenant(), await make_tenant()
    await _ingest(client, a, "Alpha tenant private roadmap.")
    await _ingest(client, b, "Beta tenant salary table.")
    async with db.tenant_session(a.tenant_id) as session:
        texts = (await session.execute(text("SELECT text FROM chunks"))).scalars().all()
        tenants = (await session.execute(text("SELECT id FROM tenants"))).scalars().all()
        keys = (await session.execute(text("SELECT tenant_id FROM api_keys"))).scalars().all()
    assert texts == ["Alpha tenant private roadmap."]
    assert tenants == [a.tenant_id]
    assert set(keys) == {a.tenant_id}


async def test_no_tenant_set_means_no_rows(client, db: Database, tenant: TenantHandle) -> None:  # type: ignore[no-untyped-def]
    await _ingest(client, tenant, "Some content that exists.")
    async with db.sessions() as session, session.begin():
        await session.execute(text(f'SET LOCAL ROLE "{db.app_role}"'))
        count = (await session.execute(text("SELECT count(*) FROM chunks"))).scalar_one()
    assert count == 0


async def test_cannot_write_rows_for_another_tenant(db: Database, make_tenant) -> None:  # type: ignore[no-untyped-def]
    a, b = await make_tenant(), await make_tenant()
    with pytest.raises(DBAPIError, match="row-level security"):
        async with db.tenant_session(a.tenant_id) as session:
            await session.execute(
                text(
                    "INSERT INTO documents (id, tenant_id, title, content_type, content_hash, chunk_count, size_bytes) "
                    "VALUES (:id, :t, 'x', 'text/plain', 'h', 0, 0)"
                ),
                {"id": uuid.uuid4(), "t": b.tenant_id},
            )


async def test_app_role_cannot_reset_role_to_owner(db: Database, tenant: TenantHandle) -> None:
    with pytest.raises(DBAPIError):
        async with db.tenant_session(tenant.tenant_id) as session:
            await session.execute(text("SET LOCAL row_security = off"))
            await session.execute(text("SELECT count(*) FROM chunks"))


def test_with_driver_keeps_socket_host() -> None:
    url = "postgresql://postgres:@/postgres?host=/tmp/x"
    converted = make_url(with_driver(url, "asyncpg"))
    assert converted.drivername == "postgresql+asyncpg"
    assert converted.query["host"] == "/tmp/x"


async def test_connections_closed_by_the_server_are_replaced_at_checkout(db: Database, settings) -> None:  # type: ignore[no-untyped-def]
    """A restart, failover or idle timeout closes pooled connections; the next requests must not fail.
    Without a round-trip ping (DB_POOL_PRE_PING=false) the pool notices the closed socket locally."""
    assert settings.db_pool_pre_ping is False
    own = Database.connect(settings, url=db.url)
    try:

        async def backend_pid() -> int:
            async with own.admin_session() as session:
                pid = (await session.execute(text("SELECT pg_backend_pid(), pg_sleep(0.05)"))).scalar_one()
            return int(pid)

        pids = set(await asyncio.gather(*(backend_pid() for _ in range(3))))
        assert len(pids) == 3  # three pooled connections
        async with db.admin_session() as session:
            await session.execute(
                text("SELECT pg_terminate_backend(p) FROM unnest(CAST(:p AS int[])) p"), {"p": list(pids)}
            )
        for _ in range(100):  # until the backends are gone and the loop has read the closed sockets
            async with db.admin_session() as session:
                left = (
                    await session.execute(
                        text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(CAST(:p AS int[]))"),
                        {"p": list(pids)},
                    )
                ).scalar_one()
            if left == 0:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        fresh = set(await asyncio.gather(*(backend_pid() for _ in range(3))))
        assert fresh.isdisjoint(pids)
    finally:
        await own.dispose()


async def test_a_statement_on_the_driver_leaves_its_connection_usable_or_replaced(db: Database, settings) -> None:  # type: ignore[no-untyped-def]
    """`fetch_row` bypasses the session (authentication and admission run on it): a statement the server
    refuses leaves the connection in the pool as it was, and one cut off mid-way (a client that went
    away) must not hand the next request a connection still busy with it."""
    own = Database.connect(settings, url=db.url)
    try:
        pid = (await own.fetch_row("SELECT pg_backend_pid() AS pid"))["pid"]
        with pytest.raises(asyncpg.DivisionByZeroError):
            await own.fetch_row("SELECT 1 / 0")
        assert (await own.fetch_row("SELECT pg_backend_pid() AS pid"))["pid"] == pid  # the same connection

        slow = asyncio.create_task(own.fetch_row("SELECT pg_sleep(5)"))
        await asyncio.sleep(0.2)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        after = await asyncio.wait_for(own.fetch_row("SELECT pg_backend_pid() AS pid, 41 + 1 AS answer"), 2)
        assert after["answer"] == 42 and after["pid"] != pid  # replaced, not reused mid-statement
        assert await own.fetch_row("SELECT 1 WHERE false") is None
    finally:
        await own.dispose()
