"""Hybrid retrieval (dense + BM25, fused) over a tenant's knowledge bases, and as a LangChain retriever."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Sequence
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
from ragapi.retrieval import knowledge_bases
from ragapi.retrieval.bm25 import term_counts
from ragapi.retrieval.chunks import Candidate, CandidateKey, Hit
from ragapi.retrieval.filters import Filters, validate_filters
from ragapi.retrieval.fusion import convex_fusion, reciprocal_rank_fusion
from ragapi.retrieval.knowledge_bases import KnowledgeBase
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
    """Dense and sparse candidates from the chunks of one tenant's knowledge bases, fused into one
    ranking, the top `k` read. Each side of each knowledge base runs in its own tenant session, so the
    searches overlap in time."""

    def __init__(
        self, db: Database, embeddings: Embeddings, settings: Settings, indexes: dict[str, VectorIndex] | None = None
    ) -> None:
        self.db = db
        self.embeddings = embeddings
        self.settings = settings
        self.indexes = indexes or {
            "pgvector": PgVectorIndex(db, settings.hnsw_ef_search, settings.bm25_candidate_budget)
        }

    async def search(
        self,
        tenant_id: uuid.UUID,
        query: str,
        k: int,
        filters: Filters,
        kbs: Sequence[KnowledgeBase] | None = None,
        embedded: EmbeddedQuery | None = None,
        candidates: int | None = None,
        dense_weight: float | None = None,
    ) -> Searched:
        """`kbs`: the knowledge bases to search as the caller read them (admission did), so no
        transaction reads them again; None: the tenant's default. `embedded`: the query already
        embedded with the configured model (the semantic cache's lookup did), so a miss embeds once, not
        twice. `filters` are validated (`validate_filters`); `dense_weight`: convex fusion's, when the
        knowledge base has its own."""
        depth = max(candidates or self.settings.retrieval_candidates, k)
        embed_ms: float | None = None
        if embedded is not None:
            query_vector = embedded.vector
            kbs = kbs if kbs is not None else await self._default(tenant_id)
        else:  # the query embedding (a thread) overlaps with the knowledge-base lookup
            embedding = asyncio.ensure_future(embed_query(self.embeddings, query))
            try:
                kbs = kbs if kbs is not None else await self._default(tenant_id)
                made = await embedding
            finally:
                embedding.cancel()
            query_vector, embed_ms = made.vector, made.ms
        kbs = [kb for kb in kbs if kb.chunk_count]
        if not kbs:
            return Searched([], embed_ms)
        vectors = {embedding_identity(self.embeddings): query_vector}
        terms = term_counts(query)
        sides = []
        for kb in kbs:
            vector = await self._vector_for(kb, query, vectors)
            index = index_for(self.indexes, kb)
            sides.append(
                _side("retrieve_dense", kb, depth, index.dense_candidates(tenant_id, kb, vector, depth, filters))
            )
            sides.append(
                _side("retrieve_sparse", kb, depth, index.sparse_candidates(tenant_id, kb, terms, depth, filters))
            )
        found = await asyncio.gather(*sides)
        # one ranking per side across knowledge bases: cosine similarities and BM25 scores compare as they are
        dense = _merged(found[0::2], depth)
        sparse = _merged(found[1::2], depth)
        with stage("fuse", method=self.settings.fusion.value, candidates=len(dense) + len(sparse)):
            if self.settings.fusion is Fusion.RRF:
                fused = reciprocal_rank_fusion([dense, sparse], k=self.settings.rrf_k)
            else:
                weight = dense_weight if dense_weight is not None else self.settings.fusion_dense_weight
                fused = convex_fusion(dense, sparse, weight)
        owners: dict[CandidateKey, VectorIndex] = {}  # which index found each candidate, to read it from
        for kb, dense_side, sparse_side in zip(kbs, found[0::2], found[1::2], strict=True):
            for c in (*dense_side, *sparse_side):
                owners[c.key] = index_for(self.indexes, kb)
        with stage("read_chunks", backend=",".join(sorted({kb.vector_backend for kb in kbs}))) as reading:
            hits: list[Hit] = []
            read = 0
            while len(hits) < k and read < len(fused):  # again only if some were deleted since the search
                batch = fused[read : read + k - len(hits)]
                hits += await _read(tenant_id, batch, owners, filters)
                read += len(batch)
            reading.set(hits=len(hits))
        return Searched(hits, embed_ms)

    async def _vector_for(
        self, kb: KnowledgeBase, query: str, vectors: dict[tuple[str, int], list[float]]
    ) -> list[float]:
        """The query embedded with the knowledge base's own model (the service's, unless it was created
        with the bundled one or not re-embedded since the service's model changed)."""
        identity = (kb.embedding_model, kb.embedding_dim)
        if identity not in vectors:
            own = embedder_for(kb.embedding_model, self.embeddings, self.settings)
            if own is None:
                raise InvalidInput(
                    f"knowledge base {kb.name!r} is indexed with {kb.embedding_model}, which this service cannot "
                    "embed queries with; re-embed it (ragapi reembed)"
                )
            vectors[identity] = await own.aembed_query(query)
        return vectors[identity]

    async def _default(self, tenant_id: uuid.UUID) -> list[KnowledgeBase]:
        async with self.db.tenant_session(tenant_id) as session:
            kb = await knowledge_bases.get(session, tenant_id)
        return [kb] if kb is not None and kb.status == "active" else []


def _merged(sides: Sequence[list[Candidate]], depth: int) -> list[Candidate]:
    if len(sides) == 1:
        return sides[0]
    return sorted((c for side in sides for c in side), key=lambda c: c.score, reverse=True)[:depth]


async def _read(
    tenant_id: uuid.UUID, batch: list[Candidate], owners: dict[CandidateKey, VectorIndex], filters: Filters
) -> list[Hit]:
    """The visible chunks of `batch`, in its order, each read from the index that found it."""
    by_index: dict[int, tuple[VectorIndex, list[Candidate]]] = {}
    for c in batch:
        index = owners[c.key]
        by_index.setdefault(id(index), (index, []))[1].append(c)
    if len(by_index) == 1:
        index, only = next(iter(by_index.values()))
        return await index.hits(tenant_id, only, filters)
    read = [hit for index, part in by_index.values() for hit in await index.hits(tenant_id, part, filters)]
    return sorted(read, key=lambda h: h.score, reverse=True)


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
