"""One contract every vector backend must pass, run against pgvector (real) and Pinecone (the official
SDK against tests/pinecone_server.py, i.e. verified at the wire level only)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import text

from ragapi.api.state import AppState
from ragapi.core.access import DocumentAccess, ReaderView, reading_as
from ragapi.core.errors import UpstreamError
from ragapi.core.settings import VectorBackend
from ragapi.ingestion.documents import delete_document, update_metadata
from ragapi.ingestion.pipeline import IngestItem, IngestPipeline
from ragapi.ingestion.vector_migration import migrate_vectors
from ragapi.retrieval.hybrid import HybridRetriever
from ragapi.retrieval.knowledge_bases import KnowledgeBase
from ragapi.retrieval.vectors.base import VectorIndex
from ragapi.retrieval.vectors.pinecone import PineconeIndex, pinecone_filter, pinecone_metadata
from tests.conftest import TenantHandle
from tests.pinecone_server import IndexState, pinecone_server


@dataclass
class Backend:
    name: str
    state: AppState
    indexes: dict[str, VectorIndex]
    pipeline: IngestPipeline
    dense: IndexState | None = None
    sparse: IndexState | None = None

    def retriever(self, tenant: TenantHandle, k: int = 5, **filters: object) -> HybridRetriever:
        s = self.state
        return HybridRetriever(
            db=s.db,
            embeddings=s.embeddings,
            settings=s.settings,
            tenant_id=tenant.tenant_id,
            k=k,
            filters=filters,
            indexes=self.indexes,
        )

    async def ingest(self, tenant: TenantHandle, *texts: str, **kw: object) -> list[uuid.UUID]:
        report = await self.pipeline.run(
            tenant.tenant_id, [IngestItem(t.encode(), f"d{n}.txt", **kw) for n, t in enumerate(texts)]
        )  # type: ignore[arg-type]
        assert report.status == "succeeded", report
        return [r.document_id for r in report.results if r.document_id]

    def stored(self, tenant: TenantHandle) -> set[str] | None:
        """Record ids the external index holds for the tenant (None for pgvector)."""
        if self.dense is None:
            return None
        return set(self.dense.namespaces.get(str(tenant.tenant_id), {}))


@pytest.fixture
def pinecone_index(app_state: AppState) -> Iterator[tuple[PineconeIndex, IndexState, IndexState]]:
    with pinecone_server("dense") as (dense_url, dense), pinecone_server("sparse") as (sparse_url, sparse):
        index = PineconeIndex(
            app_state.db, "pc-test", dense_url, sparse_url, batch_size=2, max_retries=3, backoff_s=0.01
        )
        yield index, dense, sparse


@pytest.fixture(params=["pgvector", "pinecone"])
def backend(request: pytest.FixtureRequest, app_state: AppState) -> Iterator[Backend]:
    if request.param == "pgvector":
        yield Backend("pgvector", app_state, app_state.indexes, app_state.pipeline)
        return
    index, dense, sparse = request.getfixturevalue("pinecone_index")
    indexes = {**app_state.indexes, "pinecone": index}
    settings = app_state.settings.model_copy(update={"vector_backend": VectorBackend.PINECONE})
    pipeline = IngestPipeline(app_state.db, app_state.embeddings, settings, indexes)
    yield Backend("pinecone", app_state, indexes, pipeline, dense, sparse)


async def test_upsert_and_query_both_sides(backend: Backend, tenant: TenantHandle) -> None:
    await backend.ingest(tenant, "Volcanoes erupt molten rock.", "The XJ-9 pump needs oil weekly.", "Bees make honey.")
    dense = await backend.retriever(tenant, k=1).ainvoke("lava coming out of a mountain")
    sparse = await backend.retriever(tenant, k=1).ainvoke("XJ-9 oil")
    assert "Volcanoes" in dense[0].page_content and "XJ-9" in sparse[0].page_content
    stored = backend.stored(tenant)
    if stored is not None:
        assert len(stored) == 3 and all("#" in rid for rid in stored)
        assert backend.sparse is not None and len(backend.sparse.namespaces[str(tenant.tenant_id)]) == 3


async def test_k_results(backend: Backend, tenant: TenantHandle) -> None:
    await backend.ingest(tenant, *[f"Report number {i} about quarterly sales." for i in range(12)])
    assert len(await backend.retriever(tenant, k=10).ainvoke("quarterly sales report")) == 10


async def test_filters(backend: Backend, tenant: TenantHandle) -> None:
    (eu,) = await backend.ingest(tenant, "Holiday rules for Berlin.", metadata={"region": "eu"})
    await backend.ingest(tenant, "Holiday rules for Austin.", metadata={"region": "us"})
    await backend.ingest(tenant, "Holiday rules for Tokyo.", metadata={"region": "apac"})
    hits = await backend.retriever(tenant, region="eu").ainvoke("holiday rules")
    assert [d.metadata["region"] for d in hits] == ["eu"]
    hits = await backend.retriever(tenant, region=["us", "apac"]).ainvoke("holiday rules")
    assert {d.metadata["region"] for d in hits} == {"us", "apac"}
    hits = await backend.retriever(tenant, document_id=str(eu)).ainvoke("holiday")
    assert [d.metadata["document_id"] for d in hits] == [str(eu)]


async def test_metadata_update_moves_filters_without_re_embedding(backend: Backend, tenant: TenantHandle) -> None:
    (doc,) = await backend.ingest(tenant, "Travel rules for the Lisbon office.", metadata={"region": "eu", "draft": 1})
    vectors_before = await _vectors(backend, tenant)
    updated = await update_metadata(backend.state.db, backend.indexes, tenant.tenant_id, doc, {"region": "us"})
    assert updated is not None and updated.metadata_ == {"region": "us"}
    assert await backend.retriever(tenant, region="eu").ainvoke("travel rules") == []
    (hit,) = await backend.retriever(tenant, region="us").ainvoke("travel rules")
    assert "draft" not in hit.metadata and hit.metadata["source"] == "d0.txt"  # chunk-level keys stay
    assert await _vectors(backend, tenant) == vectors_before, "vectors are kept, not recomputed"
    if backend.dense is not None and backend.sparse is not None:
        for side in (backend.dense, backend.sparse):
            (record,) = side.namespaces[str(tenant.tenant_id)].values()
            assert record["metadata"]["region"] == "us" and "draft" not in record["metadata"]
    missing = await update_metadata(backend.state.db, backend.indexes, tenant.tenant_id, uuid.uuid4(), {})
    assert missing is None


async def _vectors(backend: Backend, tenant: TenantHandle) -> object:
    if backend.dense is not None:
        return {rid: r["values"] for rid, r in backend.dense.namespaces[str(tenant.tenant_id)].items()}
    async with backend.state.db.tenant_session(tenant.tenant_id) as session:
        return (await session.execute(text("SELECT embedding::text FROM chunks"))).scalars().all()


async def test_delete_by_document(backend: Backend, tenant: TenantHandle) -> None:
    gone, kept = await backend.ingest(tenant, "The vault code is 4471.", "The lobby opens at 8.")
    assert await delete_document(backend.state.db, tenant.tenant_id, gone, backend.indexes)
    hits = await backend.retriever(tenant, k=5).ainvoke("vault code 4471")
    assert {d.metadata["document_id"] for d in hits} == {str(kept)}
    stored = backend.stored(tenant)
    if stored is not None:
        assert stored == {f"{kept}#0"}


async def test_replace(backend: Backend, tenant: TenantHandle) -> None:
    (old,) = await backend.ingest(tenant, "Office closes at 5pm.", external_id="hours")
    (new,) = await backend.ingest(tenant, "Office closes at 7pm on Fridays.", external_id="hours")
    hits = await backend.retriever(tenant, k=5).ainvoke("when does the office close")
    assert [d.page_content for d in hits] == ["Office closes at 7pm on Fridays."]
    stored = backend.stored(tenant)
    if stored is not None:
        assert stored == {f"{new}#0"} and old != new


async def test_tenant_isolation(backend: Backend, make_tenant) -> None:  # type: ignore[no-untyped-def]
    a, b = await make_tenant(), await make_tenant()
    (doc_a,) = await backend.ingest(a, "Alpha's secret formula uses copper.")
    (doc_b,) = await backend.ingest(b, "Beta's secret formula uses zinc.")
    for tenant, own in ((a, doc_a), (b, doc_b)):
        hits = await backend.retriever(tenant, k=5).ainvoke("secret formula copper zinc")
        assert {d.metadata["document_id"] for d in hits} == {str(own)}
        other = doc_b if tenant is a else doc_a
        assert await backend.retriever(tenant, document_id=str(other)).ainvoke("secret formula") == []


async def test_pinecone_retries_throttling_then_gives_up(
    app_state: AppState, pinecone_index, tenant: TenantHandle
) -> None:  # type: ignore[no-untyped-def]
    index, dense, _ = pinecone_index
    dense.fail_next = [429, 503]
    settings = app_state.settings.model_copy(update={"vector_backend": VectorBackend.PINECONE})
    pipeline = IngestPipeline(app_state.db, app_state.embeddings, settings, {**app_state.indexes, "pinecone": index})
    assert (await pipeline.run(tenant.tenant_id, [IngestItem(b"Retried content.", "r.txt")])).status == "succeeded"
    dense.fail_next = [400]
    report = await pipeline.run(tenant.tenant_id, [IngestItem(b"Rejected content.", "x.txt")])
    assert report.results[0].status == "failed" and report.results[0].error["status"] == 502
    async with app_state.db.tenant_session(tenant.tenant_id) as session:  # the failed document left nothing behind
        texts = (await session.execute(text("SELECT text FROM chunks"))).scalars().all()
    assert texts == ["Retried content."]


async def test_migration_to_pinecone_and_back(app_state: AppState, pinecone_index, make_tenant) -> None:  # type: ignore[no-untyped-def]
    index, dense, sparse = pinecone_index
    indexes = {**app_state.indexes, "pinecone": index}
    tenant = await make_tenant()
    await app_state.pipeline.run(
        tenant.tenant_id,
        [IngestItem(b"Moving fact one: the server room is cold.", "a.txt"), IngestItem(b"Fact two: tea.", "b.txt")],
    )
    retriever = Backend("x", app_state, indexes, app_state.pipeline).retriever
    before = [d.page_content for d in await retriever(tenant, k=2).ainvoke("server room temperature")]
    assert await migrate_vectors(app_state.db, indexes, tenant.tenant_id, "pinecone") == 2
    assert len(dense.namespaces[str(tenant.tenant_id)]) == 2 and len(sparse.namespaces[str(tenant.tenant_id)]) == 2
    async with app_state.db.tenant_session(tenant.tenant_id) as session:
        assert (
            await session.execute(text("SELECT count(*) FROM chunks WHERE embedding IS NOT NULL"))
        ).scalar_one() == 0
    assert [d.page_content for d in await retriever(tenant, k=2).ainvoke("server room temperature")] == before
    assert await migrate_vectors(app_state.db, indexes, tenant.tenant_id, "pinecone") == 0
    assert await migrate_vectors(app_state.db, indexes, tenant.tenant_id, "pgvector") == 2
    assert not dense.namespaces.get(str(tenant.tenant_id))  # its records deleted (other knowledge bases' stay)
    assert [d.page_content for d in await retriever(tenant, k=2).ainvoke("server room temperature")] == before


async def test_unconfigured_backend_is_a_clear_error(app_state: AppState, pinecone_index, tenant: TenantHandle) -> None:  # type: ignore[no-untyped-def]
    index, _, _ = pinecone_index
    settings = app_state.settings.model_copy(update={"vector_backend": VectorBackend.PINECONE})
    await IngestPipeline(app_state.db, app_state.embeddings, settings, {**app_state.indexes, "pinecone": index}).run(
        tenant.tenant_id, [IngestItem(b"Stored in pinecone.", "p.txt")]
    )
    with pytest.raises(UpstreamError, match="pinecone"):
        await Backend("x", app_state, app_state.indexes, app_state.pipeline).retriever(tenant).ainvoke("stored")


def test_metadata_and_filter_translation() -> None:
    meta = pinecone_metadata({"a": "x", "n": 3, "ok": True, "tags": ["p", "q"], "nested": {"k": 1}, "long": "z" * 600})
    assert meta == {"a": "x", "n": 3, "ok": True, "tags": ["p", "q"]}
    tenant, other = uuid.uuid4(), uuid.uuid4()
    default = KnowledgeBase(id=tenant, tenant_id=tenant, name="default", embedding_model="m", embedding_dim=3)
    wiki = KnowledgeBase(id=other, tenant_id=tenant, name="wiki", embedding_model="m", embedding_dim=3)
    own = {"knowledge_base_id": {"$eq": str(other)}}
    assert pinecone_filter({}, wiki) == own
    assert pinecone_filter({"lang": "en"}, wiki) == {"$and": [own, {"lang": {"$eq": "en"}}]}
    assert pinecone_filter({"lang": ["en", "de"], "year": 2024}, wiki) == {
        "$and": [own, {"lang": {"$in": ["en", "de"]}}, {"year": {"$eq": 2024}}]
    }
    # records written before knowledge bases carry no id: they can only be the default's
    assert pinecone_filter({}, default) == {
        "$or": [{"knowledge_base_id": {"$eq": str(tenant)}}, {"knowledge_base_id": {"$exists": False}}]
    }


async def test_knowledge_bases_share_an_index_without_seeing_each_other(backend: Backend, tenant: TenantHandle) -> None:
    """Two knowledge bases of one tenant in one backend (one Pinecone namespace per tenant): each search
    sees its own records only, several fuse into one ranking, and deleting one removes its records."""
    from ragapi.ingestion.knowledge_bases import KnowledgeBaseService
    from ragapi.retrieval import knowledge_bases
    from ragapi.retrieval.hybrid import HybridSearch
    from ragapi.retrieval.knowledge_bases import KnowledgeBaseSettings
    from ragapi.tenants.service import operator_context

    state = backend.state
    wiki_id = uuid.uuid4()
    async with state.db.tenant_session(tenant.tenant_id) as session:
        assert await knowledge_bases.insert(
            session,
            tenant.tenant_id,
            wiki_id,
            "wiki",
            "all-MiniLM-L6-v2-int8",
            384,
            backend.name,
            KnowledgeBaseSettings(),
        )
    (mine,) = await backend.ingest(tenant, "Volcanoes erupt molten rock from deep below.")
    report = await backend.pipeline.run(
        tenant.tenant_id, [IngestItem(b"Lava lakes form in volcanic craters.", "w.txt")], kb_id=wiki_id
    )
    (theirs,) = [r.document_id for r in report.results]
    if backend.dense is not None:  # a record written before knowledge bases existed carries no id: the default's
        for record in backend.dense.namespaces[str(tenant.tenant_id)].values():
            if record["metadata"]["document_id"] == str(mine):
                del record["metadata"]["knowledge_base_id"]
    search = HybridSearch(state.db, state.embeddings, state.settings, backend.indexes)
    async with state.db.tenant_session(tenant.tenant_id) as session:
        default = await knowledge_bases.get(session, tenant.tenant_id)
        wiki = await knowledge_bases.get(session, wiki_id)
    assert default is not None and wiki is not None

    async def found(*kbs: knowledge_bases.KnowledgeBase) -> set[uuid.UUID]:
        return {h.document_id for h in (await search.search(tenant.tenant_id, "volcano lava", 5, {}, kbs)).hits}

    assert await found(default) == {mine}
    assert await found(wiki) == {theirs}
    assert await found(default, wiki) == {mine, theirs}

    service = KnowledgeBaseService(state.db, state.embeddings, backend.indexes, state.settings)
    await service.delete(await operator_context(state.db, state.settings, tenant.tenant_id), "wiki")
    await service.drain()
    assert await found(default) == {mine}
    if backend.dense is not None:
        left = {r["metadata"]["document_id"] for r in backend.dense.namespaces[str(tenant.tenant_id)].values()}
        assert left == {str(mine)}


async def test_restricted_documents_are_read_back_through_row_level_security(
    backend: Backend, tenant: TenantHandle
) -> None:
    """An external index knows nothing of access lists: its matches are read back as chunk rows in the
    request's view, so a hidden document's match is dropped there."""
    insider = uuid.uuid4()
    (hidden,) = await backend.ingest(
        tenant, "Copper mine output rose sharply.", access=DocumentAccess.of(users=[insider])
    )
    (shown,) = await backend.ingest(tenant, "Copper prices fell in the spring.")
    question = "copper mine output prices"
    with reading_as(ReaderView.of(uuid.uuid4(), version=1)):
        stranger = await backend.retriever(tenant, k=5).ainvoke(question)
    with reading_as(ReaderView.of(insider, version=1)):
        reader = await backend.retriever(tenant, k=5).ainvoke(question)
    assert {d.metadata["document_id"] for d in stranger} == {str(shown)}
    assert {d.metadata["document_id"] for d in reader} == {str(shown), str(hidden)}
    if backend.stored(tenant) is not None:
        assert len(backend.stored(tenant) or ()) == 2  # the index holds both: the database decides
