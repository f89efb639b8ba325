"""The pipeline against real PostgreSQL: de-duplication, atomic replacement, partial failure, deletion."""

from __future__ import annotations

import asyncio

import pytest
from langchain_openai import OpenAIEmbeddings
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ragapi.api.state import AppState
from ragapi.core.errors import ServiceUnavailable
from ragapi.ingestion.documents import delete_document
from ragapi.ingestion.pipeline import TRANSIENT_STATUSES, IngestItem, IngestPipeline, _database_failure
from ragapi.retrieval import knowledge_bases
from tests.conftest import TenantHandle, make_settings
from tests.ingestion.poison import poison
from tests.wire import Recorded, Reply, wire_server

_TERMS = text(
    "SELECT count(*) FROM (SELECT term FROM (SELECT term, df FROM sparse_terms UNION ALL "
    "SELECT u.term, u.n FROM sparse_term_deltas, unnest(terms, dfs) AS u(term, n)) s "
    "GROUP BY term HAVING sum(df) > 0) t"
)


async def kb_counts(state: AppState, tenant: TenantHandle) -> tuple[int, int, int]:
    async with state.db.tenant_session(tenant.tenant_id) as session:
        kb = await knowledge_bases.get(session, tenant.tenant_id)
        # terms held by any chunk: the statistics with the changes not folded in yet, as queries read them
        terms = (await session.execute(_TERMS)).scalar_one()
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


async def test_poison_items_fail_alone_and_their_siblings_are_indexed(
    app_state: AppState, tenant: TenantHandle
) -> None:
    cases = poison()
    items = [IngestItem(b"First sibling: the greenhouse opens at nine.", "first.txt")]
    items += [item for item, *_ in cases]
    items += [IngestItem(b"# Last sibling\n\nThe greenhouse closes at five.", "last.md")]
    report = await app_state.pipeline.run(tenant.tenant_id, items)
    assert report.status == "partially_failed"
    got = [(r.status, r.error and r.error["status"], r.removed_characters) for r in report.results]
    assert got == [("created", None, 0), *((s, e, n) for _, s, e, n in cases), ("created", None, 0)]
    async with app_state.db.tenant_session(tenant.tenant_id) as session:
        texts = (await session.execute(text("SELECT text FROM chunks"))).scalars().all()
    assert any("quinces" in t for t in texts) and any("blossom" in t for t in texts)
    assert not any("\x00" in t for t in texts)


async def test_a_value_the_database_refuses_rolls_back_that_document_only(
    app_state: AppState, tenant: TenantHandle
) -> None:
    """PostgreSQL refuses a NUL in text: that document's savepoint rolls back, the others commit."""
    report = await app_state.pipeline.run(
        tenant.tenant_id,
        [
            IngestItem(b"Kept one: the vault opens at dawn.", "one.txt"),
            IngestItem(b"Refused: its external id holds a NUL.", "nul-id.txt", external_id="id\x00"),
            IngestItem(b"Kept two: the vault closes at dusk.", "two.txt"),
        ],
    )
    kept, refused, also_kept = report.results
    assert (kept.status, also_kept.status, refused.status) == ("created", "created", "failed")
    assert refused.error is not None and (refused.error["status"], refused.error["title"]) == (500, "Internal error")
    assert refused.error["detail"].startswith("writing failed unexpectedly (") and "0x00" not in refused.error["detail"]
    async with app_state.db.tenant_session(tenant.tenant_id) as session:
        sources = (await session.execute(text("SELECT source FROM documents ORDER BY source"))).scalars().all()
    assert sources == ["one.txt", "two.txt"]
    assert (await kb_counts(app_state, tenant))[0] == 2


def _embedding_reply(request: Recorded) -> Reply:
    if any("POISON" in text for text in request.body["input"]):  # as a provider refuses an input it cannot take
        return Reply(400, {"error": {"message": "invalid input", "type": "invalid_request_error"}})
    data = [{"object": "embedding", "index": i, "embedding": [0.1] * 384} for i, _ in enumerate(request.body["input"])]
    return Reply(body={"object": "list", "data": data, "model": "text-embedding-3-small", "usage": {}})


async def test_a_text_the_embedding_provider_refuses_fails_alone(app_state: AppState, tenant: TenantHandle) -> None:
    with wire_server(_embedding_reply) as server:
        embeddings = OpenAIEmbeddings(
            model="text-embedding-3-small",
            api_key=SecretStr("sk-test"),
            base_url=server.url + "/v1",
            max_retries=0,
            check_embedding_ctx_length=False,
        )
        pipeline = IngestPipeline(app_state.db, embeddings, app_state.settings, app_state.indexes)
        report = await pipeline.run(
            tenant.tenant_id,
            [
                IngestItem(b"Fine text one.", "a.txt"),
                IngestItem(b"POISON text.", "p.txt"),
                IngestItem(b"Fine two.", "b.txt"),
            ],
        )
    assert [r.status for r in report.results] == ["created", "failed", "created"]
    error = report.results[1].error
    assert error is not None and error["status"] == 422 and "HTTP 400" in error["detail"]
    sizes = [len(r.body["input"]) for r in server.requests if r.body["input"] != ["dimension probe"]]
    assert sizes == [3, 1, 1, 1]  # the batch, then each document alone


async def test_a_transient_database_error_is_retried_and_a_refused_value_is_final(
    app_state: AppState, tenant: TenantHandle
) -> None:
    """A lock that cannot be had now (SQLSTATE 55P03, like deadlocks and timeouts) is worth another try:
    503, which the worker retries with backoff; a value PostgreSQL refuses (a NUL) is not."""
    query = text("SELECT 1 FROM tenants WHERE id = :t FOR UPDATE NOWAIT")
    async with app_state.db.admin_session() as holder:
        await holder.execute(query, {"t": tenant.tenant_id})
        with pytest.raises(DBAPIError) as locked:
            async with app_state.db.admin_session() as other:
                await other.execute(query, {"t": tenant.tenant_id})
    with pytest.raises(DBAPIError) as refused:
        async with app_state.db.admin_session() as session:
            await session.execute(text("SELECT CAST(:v AS text)"), {"v": "a\x00b"})
    retried = _database_failure(locked.value)
    assert isinstance(retried, ServiceUnavailable) and retried.status in TRANSIENT_STATUSES
    assert _database_failure(refused.value) is refused.value
