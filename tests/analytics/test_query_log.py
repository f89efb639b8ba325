"""The query-log writer: batched, bounded, purged by age except where feedback makes rows eval data."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text

from ragapi.analytics.pricing import cost_usd
from ragapi.analytics.query_log import DROPPED, QueryLogWriter, purge
from ragapi.core.database import Database
from ragapi.core.settings import Settings
from tests.api.helpers import ingest_texts
from tests.conftest import MakeTenant, TenantHandle


def record(tenant_id: uuid.UUID, created: datetime) -> dict:  # type: ignore[type-arg]
    return {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "principal_kind": "key",
        "principal_id": uuid.uuid4(),
        "surface": "rest",
        "created_at": created,
        "status": "ok",
        "cache": "none",
        "chunk_ids": [],
        "cited_chunk_ids": [],
    }


async def count(db: Database, tenant_id: uuid.UUID) -> int:
    async with db.admin_session() as session:
        return int(
            (
                await session.execute(text("SELECT count(*) FROM query_log WHERE tenant_id = :t"), {"t": tenant_id})
            ).scalar_one()
        )


async def test_a_full_queue_drops_and_counts_instead_of_growing(
    db: Database, settings: Settings, tenant: TenantHandle
) -> None:
    small = settings.model_copy(update={"query_log_queue_max": 100})
    writer = QueryLogWriter(db, small)
    before = DROPPED._value.get()
    now = datetime.now(UTC)
    for _ in range(130):
        writer.submit(record(tenant.tenant_id, now))
    assert DROPPED._value.get() - before == 30
    await writer.flush()
    assert await count(db, tenant.tenant_id) == 100


async def test_a_record_the_database_refuses_is_lost_alone(
    db: Database, settings: Settings, make_tenant: MakeTenant
) -> None:
    """One tenant's unstorable record (a NUL in its text, an id already logged) costs no other record,
    whether the batch is written by the writer's loop or by the final flush at shutdown."""
    first, second = await make_tenant(), await make_tenant()
    now = datetime.now(UTC)
    for finish in ("flush", "stop"):
        writer = QueryLogWriter(db, settings)
        good = [record(t.tenant_id, now) for t in (first, second, first, second)]
        refused = [{**record(second.tenant_id, now), "query": "a\x00b"}, {**good[0]}]  # NUL; a duplicate id
        for row in [*good[:2], *refused, *good[2:]]:
            writer.submit(row)
        before = DROPPED._value.get()
        await (writer.flush() if finish == "flush" else writer.stop())
        assert DROPPED._value.get() - before == 2, finish
        async with db.admin_session() as session:
            ids = set(
                (
                    await session.execute(
                        text("SELECT id FROM query_log WHERE id = ANY(:ids)"), {"ids": [r["id"] for r in good]}
                    )
                ).scalars()
            )
        assert ids == {r["id"] for r in good}, finish


async def test_retention_keeps_rows_with_feedback(
    client: httpx.AsyncClient, db: Database, settings: Settings, tenant: TenantHandle
) -> None:
    writer = QueryLogWriter(db, settings)
    old = datetime.now(UTC) - timedelta(days=settings.query_log_retention_days + 1)
    rows = [record(tenant.tenant_id, old) for _ in range(3)] + [record(tenant.tenant_id, datetime.now(UTC))]
    for row in rows:
        writer.submit(row)
    await writer.flush()
    async with db.admin_session() as session:
        await session.execute(
            text(
                "INSERT INTO feedback (id, tenant_id, query_id, principal_kind, principal_id, score) "
                "VALUES (:id, :t, :q, 'key', :p, 1)"
            ),
            {"id": uuid.uuid4(), "t": tenant.tenant_id, "q": rows[0]["id"], "p": uuid.uuid4()},
        )
    assert await purge(db, settings.query_log_retention_days) >= 2
    async with db.admin_session() as session:
        left = set(
            (
                await session.execute(text("SELECT id FROM query_log WHERE tenant_id = :t"), {"t": tenant.tenant_id})
            ).scalars()
        )
    assert left == {rows[0]["id"], rows[3]["id"]}
    await ingest_texts(client, tenant, "unrelated")  # the service keeps working alongside


def test_cost_uses_the_price_table() -> None:
    prices = {"gpt-4o": {"prompt": 2.5, "completion": 10.0}, "text-embedding-3-small": {"embedding": 0.02}}
    assert cost_usd(prices, "gpt-4o", 1_000_000, 100_000, "text-embedding-3-small", 50) == 2.5 + 1.0 + 0.000001
    assert cost_usd(prices, "extractive", 0, 0, "all-MiniLM-L6-v2-int8", 12) == 0.0
