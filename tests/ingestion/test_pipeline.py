"""The pipeline against real PostgreSQL: de-duplication, atomic replacement, partial failure, deletion."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from api.state import AppState
from chains.index import get_knowledge_base
from ingestion.pipeline import IngestItem, IngestPipeline, delete_document
from tests.conftest import TenantHandle, make_settings


async def kb_counts(state: AppState, tenant: TenantHandle) -> tuple[int, int, int]:
    async with state.db.tenant_session(tenant.tenant_id) as session:
        kb = await get_knowledge_base(session, tenant.tenant_id)
        terms = (await session.execute(text("SELECT count(*) FROM sparse_terms"))).scalar_one()
        chunks = (await session.execute(text("SELECT count(*) FROM chunks"))).scalar_one()
    assert kb is not None
    assert kb.chunk_count == chunks  # statistics always agree with the rows
    return kb.chunk_count, terms, kb.version


async def test_same_bytes_twice_creates_nothing_new(app_state: AppState, tenant: TenantHandle) -> None:
    item = IngestItem(b"Quarterly report: revenue rose.", "q.txt")
    first = await app_state.pipeline.run(tenant.tenant_id, [item])
    before = await kb_counts(app_state, tenant)
    second = await app_state.pipeline.run(
        tenant.tenant_id, [item, IngestItem(b"Quarterly report: revenue rose.", "copy.txt")]
    )
    assert [r.status for r in second.results] == ["duplicate", "duplicate"]
    assert {r.document_id for r in second.results} == {first.results[0].document_id}
    assert await kb_counts(app_state, tenant) == before


async def test_replace_by_external_id_swaps_versions(app_state: AppState, tenant: TenantHandle) -> None:
    run = app_state.pipeline.run
    v1 = await run(tenant.tenant_id, [IngestItem(b"Office closes at 5pm.", "h.txt", external_id="hours")])
    same = await run(tenant.tenant_id, [IngestItem(b"Office closes at 5pm.", "h.txt", external_id="hours")])
    v2 = await run(tenant.tenant_id, [IngestItem(b"Office closes at 6pm on Fridays.", "h.txt", external_id="hours")])
    assert [v1.results[0].status, same.results[0].status, v2.results[0].status] == ["created", "unchanged", "replaced"]
    async with app_state.db.tenant_session(tenant.tenant_id) as session:
        rows = (
            await session.execute(text("SELECT d.id, c.text FROM documents d JOIN chunks c ON c.document_id = d.id"))
        ).all()
    assert [(r.id, r.text) for r in rows] == [(v2.results[0].document_id, "Office closes at 6pm on Fridays.")]


async def test_readers_never_see_both_or_neither_version(app_state: AppState, tenant: TenantHandle) -> None:
    await app_state.pipeline.run(tenant.tenant_id, [IngestItem(b"version 0 " * 50, "v.txt", external_id="doc")])
    done = asyncio.Event()
    seen: list[int] = []

    async def reader() -> None:
        while not done.is_set():
            async with app_state.db.tenant_session(tenant.tenant_id) as session:
                seen.append(
                    (
                        await session.execute(
                            text(
                                "SELECT count(DISTINCT d.id) FROM documents d JOIN chunks c ON c.document_id = d.id "
                                "WHERE d.external_id = 'doc'"
                            )
                        )
                    ).scalar_one()
                )

    async def writer() -> None:
        for version in range(1, 6):
            await app_state.pipeline.run(
                tenant.tenant_id, [IngestItem(f"version {version} ".encode() * 50, "v.txt", external_id="doc")]
            )
        done.set()

    await asyncio.gather(reader(), reader(), writer())
    assert len(seen) > 10
    assert set(seen) == {1}


async def test_one_bad_file_does_not_lose_the_others(app_state: AppState, tenant: TenantHandle) -> None:
    report = await app_state.pipeline.run(
        tenant.tenant_id,
        [
            IngestItem(b"Good one.", "a.txt"),
            IngestItem(b"", "empty.txt"),
            IngestItem(b"x", "x.exe"),
            IngestItem(b"Good two.", "b.md"),
        ],
    )
    assert report.status == "partially_failed"
    assert [r.status for r in report.results] == ["created", "failed", "failed", "created"]
    assert [r.error["status"] for r in report.results if r.error] == [422, 415]


async def test_document_over_the_character_limit_fails_alone(app_state: AppState, tenant: TenantHandle) -> None:
    pipeline = IngestPipeline(
        app_state.db, app_state.embeddings, make_settings(app_state.settings.data_dir, max_document_chars=100)
    )
    report = await pipeline.run(tenant.tenant_id, [IngestItem(b"a" * 101, "big.txt"), IngestItem(b"small", "s.txt")])
    assert [(r.status, r.error and r.error["status"]) for r in report.results] == [("failed", 413), ("created", None)]


async def test_delete_removes_chunks_and_statistics(app_state: AppState, tenant: TenantHandle) -> None:
    report = await app_state.pipeline.run(
        tenant.tenant_id,
        [IngestItem(b"Alpha beta gamma.", "alpha.txt"), IngestItem(b"Gamma delta epsilon.", "delta.txt")],
    )
    a, b = (r.document_id for r in report.results)
    assert a is not None and b is not None
    assert (await kb_counts(app_state, tenant))[:2] == (2, 5)
    assert await delete_document(app_state.db, tenant.tenant_id, a)
    assert (await kb_counts(app_state, tenant))[:2] == (1, 3)  # gamma's df drops to 1, alpha and beta vanish
    assert not await delete_document(app_state.db, tenant.tenant_id, a)
    assert await delete_document(app_state.db, tenant.tenant_id, b)
    assert (await kb_counts(app_state, tenant))[:2] == (0, 0)
