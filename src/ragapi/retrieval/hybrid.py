"""Hybrid retrieval (dense + BM25, fused) as a LangChain retriever bound to one tenant."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from ragapi.core.database import Database
from ragapi.core.errors import InvalidInput
from ragapi.core.settings import Fusion, Settings
from ragapi.core.tracing import stage
from ragapi.embedding import embedder_for, embedding_identity
from ragapi.retrieval.bm25 import term_counts
from ragapi.retrieval.chunks import Candidate, Hit, KnowledgeBase, get_knowledge_base
from ragapi.retrieval.filters import Filters, validate_filters
from ragapi.retrieval.fusion import convex_fusion, reciprocal_rank_fusion
from ragapi.retrieval.vectors.base import VectorIndex, index_for
from ragapi.retrieval.vectors.pgvector import PgVectorIndex


@dataclass(frozen=True, slots=True)
class EmbeddedQuery:
    vector: list[float]
    ms: float  # how long embedding it took (reported in timings_ms and the query log)


async def embed_query(embeddings: Embeddings, query: str) -> EmbeddedQuery:
    with stage("embed", model=embedding_identity(embeddings)[0]) as embedding:
        vector = await embeddings.aembed_query(query)
    return EmbeddedQuery(vector, embedding.ms)


def hit_to_document(hit: Hit) -> Document:
    return Document(
        page_content=hit.text,
        id=str(hit.chunk_id),
        metadata={
            **hit.metadata,
            "chunk_id": str(hit.chunk_id),
            "document_id": str(hit.document_id),
            "title": hit.title,
            "score": hit.score,
        },
    )


@dataclass(frozen=True, slots=True)
class Searched:
    hits: list[Hit]
    embed_ms: float | None  # the query's embedding, when the search made it


class HybridSearch:
    """Dense and sparse candidates from one tenant's own chunks, fused, the top `k` read. Each side runs
    in its own tenant session, so the two searches overlap in time."""

    def __init__(
        self, db: Database, embeddings: Embeddings, settings: Settings, indexes: dict[str, VectorIndex] | None = None
    ) -> None:
        self.db = db
        self.embeddings = embeddings
        self.settings = settings
        self.indexes = indexes or {"pgvector": PgVectorIndex(db, settings.hnsw_ef_search)}

    async def search(
        self,
        tenant_id: uuid.UUID,
        query: str,
        k: int,
        filters: Filters,
        kb: KnowledgeBase | None = None,
        embedded: EmbeddedQuery | None = None,
        candidates: int | None = None,
    ) -> Searched:
        """`kb`: the knowledge base as the caller read it (admission did), so no transaction reads it again;
        `embedded`: the query already embedded with the configured model (the semantic cache's lookup
        did), so a miss embeds once, not twice. `filters` are validated (`validate_filters`)."""
        depth = max(candidates or self.settings.retrieval_candidates, k)
        embed_ms: float | None = None
        if embedded is not None:
            query_vector = embedded.vector
            kb = kb or await self._knowledge_base(tenant_id)
        else:  # the query embedding (a thread) overlaps with the knowledge-base lookup
            embedding = asyncio.ensure_future(embed_query(self.embeddings, query))
            try:
                kb = kb or await self._knowledge_base(tenant_id)
                made = await embedding
            finally:
                embedding.cancel()
            query_vector, embed_ms = made.vector, made.ms
        if kb is None or kb.chunk_count == 0:
            return Searched([], embed_ms)
        model, dim = embedding_identity(self.embeddings)
        if (kb.embedding_model, kb.embedding_dim) != (model, dim):
            # Not re-embedded since the service's model changed: it keeps serving with its own model.
            own = embedder_for(kb.embedding_model, self.embeddings, self.settings)
            if own is None:
                raise InvalidInput(
                    f"this knowledge base is indexed with {kb.embedding_model}, but queries are embedded with "
                    f"{model}; re-embed it (ragapi reembed)"
                )
            query_vector = await own.aembed_query(query)
        index = index_for(self.indexes, kb)
        terms = term_counts(query)
        dense, sparse = await asyncio.gather(
            _side("retrieve_dense", kb, depth, index.dense_candidates(tenant_id, kb, query_vector, depth, filters)),
            _side("retrieve_sparse", kb, depth, index.sparse_candidates(tenant_id, kb, terms, depth, filters)),
        )
        with stage("fuse", method=self.settings.fusion.value, candidates=len(dense) + len(sparse)):
            if self.settings.fusion is Fusion.RRF:
                fused = reciprocal_rank_fusion([dense, sparse], k=self.settings.rrf_k)
            else:
                fused = convex_fusion(dense, sparse, self.settings.fusion_dense_weight)
        with stage("read_chunks", backend=kb.vector_backend) as reading:
            hits: list[Hit] = []
            read = 0
            while len(hits) < k and read < len(fused):  # again only if some were deleted since the search
                batch = fused[read : read + k - len(hits)]
                hits += await index.hits(tenant_id, batch, filters)
                read += len(batch)
            reading.set(hits=len(hits))
        return Searched(hits, embed_ms)

    async def _knowledge_base(self, tenant_id: uuid.UUID) -> KnowledgeBase | None:
        async with self.db.tenant_session(tenant_id) as session:
            return await get_knowledge_base(session, tenant_id)


async def _side(name: str, kb: KnowledgeBase, depth: int, search: Awaitable[list[Candidate]]) -> list[Candidate]:
    with stage(name, backend=kb.vector_backend, depth=depth) as side:
        candidates = await search
        side.set(hits=len(candidates))
    return candidates


class HybridRetriever(BaseRetriever):
    """`HybridSearch` as a LangChain retriever bound to one tenant, for LangChain applications.

    The tenant is a constructor argument taken from the verified credential; nothing in the query input
    can change it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    db: Database
    embeddings: Embeddings
    settings: Settings
    tenant_id: uuid.UUID
    k: int = 5
    filters: dict[str, Any] = {}
    indexes: dict[str, Any] | None = None  # backend name -> VectorIndex; default: pgvector only

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        raise NotImplementedError("HybridRetriever is async-only; use ainvoke")

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,  # noqa: ARG002
    ) -> list[Document]:
        return [hit_to_document(h) for h in await self.search(query)]

    async def search(self, query: str, candidates: int | None = None) -> list[Hit]:
        if not query.strip():
            raise InvalidInput("query must not be empty")
        search = HybridSearch(self.db, self.embeddings, self.settings, self.indexes)
        filters = validate_filters(self.filters)
        return (await search.search(self.tenant_id, query, self.k, filters, candidates=candidates)).hits
