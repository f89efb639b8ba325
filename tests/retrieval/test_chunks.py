"""The dense index under a tenant filter, on its own embedded server with enough rows that PostgreSQL
plans an HNSW scan: pgvector's iterative scan must still return k rows of the right tenant."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from ragapi.core.database import Database, start_embedded_postgres
from ragapi.core.migrate import upgrade
from ragapi.retrieval.chunks import dense_search, dense_search_settings, ensure_dense_index
from ragapi.retrieval.knowledge_bases import KnowledgeBase
from tests.conftest import make_settings

ROWS_PER_TENANT = 3000
DIM = 384


@pytest.fixture(scope="module")
async def crowded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Database, list[uuid.UUID]]]:
    data_dir = tmp_path_factory.mktemp("crowded")
    url = start_embedded_postgres(data_dir / "pgdata")
    upgrade(url, "ragapi_app")
    db = Database.connect(make_settings(data_dir), url)
    tenants = [uuid.uuid4(), uuid.uuid4()]
    async with db.admin_session() as session:
        await ensure_dense_index(session, DIM)
        for tenant in tenants:
            document = uuid.uuid4()
            await session.execute(text("INSERT INTO tenants (id, name) VALUES (:t, 'crowded')"), {"t": tenant})
            await session.execute(
                text(
                    "INSERT INTO knowledge_bases (id, tenant_id, name, embedding_model, embedding_dim) "
                    "VALUES (:t, :t, 'default', 'm', 384)"
                ),
                {"t": tenant},
            )
            await session.execute(
                text(
                    "INSERT INTO documents (id, tenant_id, knowledge_base_id, title, content_type, content_hash, "
                    "chunk_count, size_bytes) VALUES (:d, :t, :t, 'synthetic', 'text/plain', :h, :n, 0)"
                ),
                {"d": document, "t": tenant, "h": document.hex, "n": ROWS_PER_TENANT},
            )
            # random unit-ish vectors generated in SQL: one subquery per row (correlated on g)
            await session.execute(
                text(
                    "INSERT INTO chunks (id, tenant_id, knowledge_base_id, document_id, ord, text, title, "
                    "embedding_model, embedding_dim, embedding, sparse, token_count) "
                    "SELECT gen_random_uuid(), :t, :t, :d, g, 'row ' || g, 'synthetic', 'm', 384, "
                    "(SELECT array_agg(random() - 0.5) FROM generate_series(1, 384) AS d WHERE g IS NOT NULL)::vector, "
                    "'{}/1000000000'::sparsevec, 1 FROM generate_series(1, :n) AS g"
                ),
                {"t": tenant, "d": document, "n": ROWS_PER_TENANT},
            )
        await session.execute(text("ANALYZE chunks"))
    yield db, tenants
    await db.dispose()


def default_kb(tenant: uuid.UUID) -> KnowledgeBase:
    return KnowledgeBase(
        id=tenant,
        tenant_id=tenant,
        name="default",
        embedding_model="m",
        embedding_dim=DIM,
        chunk_count=ROWS_PER_TENANT,
        token_count=ROWS_PER_TENANT,
        version=1,
    )


async def test_hnsw_is_planned_and_returns_k_rows_of_the_tenant(crowded: tuple[Database, list[uuid.UUID]]) -> None:
    db, (a, b) = crowded
    query = [0.01 * ((i % 7) - 3) for i in range(DIM)]
    # at this size the planner may still prefer an exact sort; take that option away so the HNSW path runs
    local = dense_search_settings(40, 150) | {"enable_sort": "off", "enable_seqscan": "off"}
    async with db.tenant_session(a, local=local) as session:
        hits = await dense_search(session, a, default_kb(a), query, 150, {})
        plan = (
            await session.execute(
                text(
                    f"EXPLAIN SELECT id FROM chunks c WHERE c.tenant_id = :t AND c.embedding_dim = {DIM} "
                    f"AND c.embedding_model = 'm' ORDER BY c.embedding::vector({DIM}) <=> CAST(:q AS vector({DIM})) "
                    "LIMIT 150"
                ),
                {"t": a, "q": "[" + ",".join(map(str, query)) + "]"},
            )
        ).scalars()
        chunk_tenants = (
            await session.execute(
                text("SELECT DISTINCT tenant_id FROM chunks WHERE id = ANY(:ids)"), {"ids": [h.key for h in hits]}
            )
        ).scalars()
        assert "chunks_embedding_hnsw_384" in "\n".join(plan)
        assert len(hits) == 150  # the same scan without iterative scans stops short (next test)
        assert list(chunk_tenants) == [a]
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


async def test_without_iterative_scan_the_filter_starves_the_result(crowded: tuple[Database, list[uuid.UUID]]) -> None:
    """The control experiment: the same search with iterative scans off returns fewer than k rows."""
    db, (a, _) = crowded
    query = [0.01 * ((i % 7) - 3) for i in range(DIM)]
    async with db.tenant_session(a) as session:
        await session.execute(
            text("SELECT set_config('enable_sort', 'off', true), set_config('enable_seqscan', 'off', true)")
        )
        await session.execute(text("SELECT set_config('hnsw.ef_search', '150', true)"))  # as dense_search sets it
        rows = (
            await session.execute(
                text(
                    f"SELECT id FROM chunks c WHERE c.tenant_id = :t AND c.embedding_dim = {DIM} AND c.embedding_model = 'm' "
                    f"ORDER BY c.embedding::vector({DIM}) <=> CAST(:q AS vector({DIM})) LIMIT 150"
                ),
                {"t": a, "q": "[" + ",".join(map(str, query)) + "]"},
            )
        ).all()
    assert len(rows) < 150


async def test_workers_starting_together_all_get_the_dense_index(crowded: tuple[Database, list[uuid.UUID]]) -> None:
    """Every API worker ensures the index at start-up; on a fresh database they used to race on the
    catalog and the loser's worker exited (seen starting two workers)."""
    db, _ = crowded

    async def ensure(dim: int) -> None:
        async with db.admin_session() as session:
            await ensure_dense_index(session, dim)

    for dim in (17, 18, 19):
        await asyncio.gather(*(ensure(dim) for _ in range(6)))
    async with db.admin_session() as session:
        names = (
            (
                await session.execute(
                    text("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'chunks_embedding_hnsw_1_'")
                )
            )
            .scalars()
            .all()
        )
    assert sorted(names) == ["chunks_embedding_hnsw_17", "chunks_embedding_hnsw_18", "chunks_embedding_hnsw_19"]
