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
from pydantic import ConfigDict, Field

from chains.embeddings import embedder_for, embedding_identity
from chains.filters import validate_filters
from chains.fusion import convex_fusion, reciprocal_rank_fusion
from chains.index import Candidate, Hit, KnowledgeBase, get_knowledge_base
from chains.sparse import term_counts
from chains.vector_index import PgVectorIndex, VectorIndex, index_for
from core.database import Database
from core.errors import InvalidInput
from core.settings import Fusion, Settings
from core.tracing import stage


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


class HybridRetriever(BaseRetriever):
    """Dense and sparse candidates from the tenant's own chunks, fused, top `k` returned.

    The tenant is a constructor argument taken from the verified credential; nothing in the query input
    can change it. Each side runs in its own tenant session so the two searches overlap in time.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    db: Database
    embeddings: Embeddings
    settings: Settings
    tenant_id: uuid.UUID
    k: int = 5
    filters: dict[str, Any] = {}
    indexes: dict[str, Any] | None = None  # backend name -> VectorIndex; default: pgvector only
    timings: dict[str, float] = Field(default_factory=dict)  # milliseconds of the last search, by stage

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        raise NotImplementedError("HybridRetriever is async-only; use ainvoke")

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,  # noqa: ARG002
    ) -> list[Document]:
        return [hit_to_document(h) for h in await self.search(query)]

    async def search(
        self,
        query: str,
        candidates: int | None = None,
        embedded: EmbeddedQuery | None = None,
        kb: KnowledgeBase | None = None,
    ) -> list[Hit]:
        """`embedded`: the query already embedded with the configured model (the semantic cache's lookup
        did), so a miss embeds once, not twice. `kb`: the knowledge base as the caller read it (the
        cache's scope), so a miss does not open a transaction to read it again."""
        if not query.strip():
            raise InvalidInput("query must not be empty")
        filters = validate_filters(self.filters)
        depth = max(candidates or self.settings.retrieval_candidates, self.k)
        if embedded is not None:
            query_vector, self.timings["embed"] = embedded.vector, embedded.ms
            kb = kb or await self._knowledge_base()
        else:  # the query embedding (a thread) overlaps with the knowledge-base lookup
            embedding = asyncio.ensure_future(self._timed_embed(query))
            try:
                kb = kb or await self._knowledge_base()
                query_vector = await embedding
            finally:
                embedding.cancel()
        if kb is None or kb.chunk_count == 0:
            return []
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
        index = self._index(kb)
        terms = term_counts(query)
        dense, sparse = await asyncio.gather(
            self._side(
                "retrieve_dense", kb, depth, index.dense_candidates(self.tenant_id, kb, query_vector, depth, filters)
            ),
            self._side(
                "retrieve_sparse", kb, depth, index.sparse_candidates(self.tenant_id, kb, terms, depth, filters)
            ),
        )
        with stage("fuse", method=self.settings.fusion.value, candidates=len(dense) + len(sparse)):
            if self.settings.fusion is Fusion.RRF:
                fused = reciprocal_rank_fusion([dense, sparse], k=self.settings.rrf_k)
            else:
                fused = convex_fusion(dense, sparse, self.settings.fusion_dense_weight)
        with stage("read_chunks", backend=kb.vector_backend) as reading:
            hits: list[Hit] = []
            read = 0
            while len(hits) < self.k and read < len(fused):  # again only if some were deleted since the search
                batch = fused[read : read + self.k - len(hits)]
                hits += await index.hits(self.tenant_id, batch, filters)
                read += len(batch)
            reading.set(hits=len(hits))
        return hits

    async def _side(
        self, name: str, kb: KnowledgeBase, depth: int, search: Awaitable[list[Candidate]]
    ) -> list[Candidate]:
        with stage(name, backend=kb.vector_backend, depth=depth) as side:
            candidates = await search
            side.set(hits=len(candidates))
        return candidates

    async def _knowledge_base(self) -> KnowledgeBase | None:
        async with self.db.tenant_session(self.tenant_id) as session:
            return await get_knowledge_base(session, self.tenant_id)

    async def _timed_embed(self, query: str) -> list[float]:
        embedded = await embed_query(self.embeddings, query)
        self.timings["embed"] = embedded.ms
        return embedded.vector

    def _index(self, kb: KnowledgeBase) -> VectorIndex:
        return index_for(self.indexes or {"pgvector": PgVectorIndex(self.db, self.settings.hnsw_ef_search)}, kb)
