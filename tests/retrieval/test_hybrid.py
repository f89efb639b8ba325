"""Hybrid retrieval against the real index: tenant filter, k results, metadata filters, LangChain contract."""

from __future__ import annotations

import pytest

from ragapi.api.state import AppState
from ragapi.core.errors import InvalidInput
from ragapi.ingestion.documents import delete_document
from ragapi.ingestion.pipeline import IngestItem
from ragapi.retrieval.hybrid import HybridRetriever
from ragapi.retrieval.vectors.pgvector import PgVectorIndex
from tests.conftest import TenantHandle

TOPICS = ["volcanoes", "jazz music", "tax law", "sourdough baking", "satellite orbits", "honey bees"]


def retriever(state: AppState, tenant: TenantHandle, k: int = 5, **kw: object) -> HybridRetriever:
    return HybridRetriever(
        db=state.db, embeddings=state.embeddings, settings=state.settings, tenant_id=tenant.tenant_id, k=k, **kw
    )


async def test_small_tenant_gets_k_results_beside_a_large_one(app_state: AppState, make_tenant) -> None:  # type: ignore[no-untyped-def]
    small, large = await make_tenant(), await make_tenant()
    await app_state.pipeline.run(
        small.tenant_id, [IngestItem(f"Notes number {i} about {TOPICS[i]}.".encode(), f"s{i}.txt") for i in range(6)]
    )
    await app_state.pipeline.run(
        large.tenant_id,
        [IngestItem(f"Large tenant record {i} on {TOPICS[i % 6]} and more.".encode(), f"l{i}.txt") for i in range(300)],
    )
    docs = await retriever(app_state, small, k=5).ainvoke("volcanoes")
    assert len(docs) == 5
    assert all("Notes number" in d.page_content for d in docs)
    assert "volcanoes" in docs[0].page_content
    assert {"chunk_id", "document_id", "title", "score"} <= set(docs[0].metadata)


async def test_keyword_only_match_is_found_by_the_sparse_side(app_state: AppState, tenant: TenantHandle) -> None:
    await app_state.pipeline.run(
        tenant.tenant_id,
        [
            IngestItem(b"The error code XJ-4471 means the disk controller failed.", "a.txt"),
            IngestItem(b"Our cafeteria serves lunch from noon until two.", "b.txt"),
            IngestItem(b"Disk failures are rare in modern data centres.", "c.txt"),
        ],
    )
    docs = await retriever(app_state, tenant, k=1).ainvoke("what is XJ-4471")
    assert "XJ-4471" in docs[0].page_content


async def test_metadata_filters(app_state: AppState, tenant: TenantHandle) -> None:
    await app_state.pipeline.run(
        tenant.tenant_id,
        [
            IngestItem(b"Holiday policy for the Berlin office.", "de.txt", metadata={"region": "eu", "year": 2025}),
            IngestItem(b"Holiday policy for the Austin office.", "us.txt", metadata={"region": "us", "year": 2025}),
            IngestItem(b"Holiday policy for the Tokyo office.", "jp.txt", metadata={"region": "apac", "year": 2024}),
        ],
    )
    eu = await retriever(app_state, tenant, filters={"region": "eu"}).ainvoke("holiday policy")
    assert [d.metadata["region"] for d in eu] == ["eu"]
    two = await retriever(app_state, tenant, filters={"region": ["eu", "apac"]}).ainvoke("holiday policy")
    assert {d.metadata["region"] for d in two} == {"eu", "apac"}
    by_year = await retriever(app_state, tenant, filters={"year": 2024}).ainvoke("holiday policy")
    assert [d.metadata["region"] for d in by_year] == ["apac"]
    doc_id = eu[0].metadata["document_id"]
    by_doc = await retriever(app_state, tenant, filters={"document_id": doc_id}).ainvoke("office")
    assert [d.metadata["document_id"] for d in by_doc] == [doc_id]


@pytest.mark.parametrize(
    "filters",
    [{"bad key!": 1}, {"k": []}, {"k": {"$gt": 1}}, {"document_id": "not-a-uuid"}, {f"k{i}": 1 for i in range(17)}],
)
async def test_invalid_filters_are_refused(app_state: AppState, tenant: TenantHandle, filters: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidInput):
        await retriever(app_state, tenant, filters=filters).ainvoke("x")


async def test_empty_knowledge_base_returns_nothing(app_state: AppState, tenant: TenantHandle) -> None:
    assert await retriever(app_state, tenant).ainvoke("anything") == []
    with pytest.raises(InvalidInput):
        await retriever(app_state, tenant).search("   ")


def test_sync_use_is_refused_clearly(app_state: AppState, tenant: TenantHandle) -> None:
    with pytest.raises(NotImplementedError, match="async"):
        retriever(app_state, tenant).invoke("x")


async def test_chunks_deleted_between_search_and_read_are_replaced(app_state: AppState, tenant: TenantHandle) -> None:
    """Searches return ids and scores; only the fused top k are read. A document deleted in between drops
    out, and the next candidates fill its place, so the caller still gets k results."""
    report = await app_state.pipeline.run(
        tenant.tenant_id, [IngestItem(f"Field notes {i} about {TOPICS[i]}.".encode(), f"n{i}.txt") for i in range(6)]
    )
    deleted: list[str] = []

    class DeletingIndex(PgVectorIndex):
        async def hits(self, tenant_id, ranked, filters):  # type: ignore[no-untyped-def]
            if not deleted:  # the top document disappears after the search, before its chunk is read
                (top,) = await super().hits(tenant_id, ranked[:1], filters)
                await delete_document(app_state.db, tenant_id, top.document_id)
                deleted.append(str(top.document_id))
            return await super().hits(tenant_id, ranked, filters)

    index = DeletingIndex(app_state.db, app_state.settings.hnsw_ef_search)
    docs = await retriever(app_state, tenant, k=3, indexes={"pgvector": index}).ainvoke("volcanoes")
    assert len(docs) == 3 and len(deleted) == 1
    assert deleted[0] not in {d.metadata["document_id"] for d in docs}
    assert {d.metadata["document_id"] for d in docs} <= {str(r.document_id) for r in report.results}
