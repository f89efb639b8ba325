"""Where chunk vectors live, behind one interface the retriever, ingestion and deletion use.

PostgreSQL stays the system of record for tenants, documents, chunk text and metadata, and the BM25
statistics; a vector index holds the dense and sparse vectors. Each knowledge base records its backend
(`knowledge_bases.vector_backend`), so tenants can be moved one at a time (`ragapi vectors migrate`).

Write protocol for external indexes: new vectors are upserted *before* the PostgreSQL transaction that
makes their chunks visible commits, and old vectors are deleted *after* it. Search results are always
joined back to visible chunk rows, so at no moment can a reader see both versions of a document, or none.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ragapi.core.errors import UpstreamError
from ragapi.retrieval.chunks import Candidate, Hit
from ragapi.retrieval.filters import Scalar
from ragapi.retrieval.knowledge_bases import KnowledgeBase


@dataclass(frozen=True, slots=True)
class VectorRecord:
    id: str  # record_id(document_id, ord)
    dense: Sequence[float]
    sparse: dict[int, float]
    metadata: dict[str, Any]


def record_metadata(
    document: dict[str, Any], chunk: dict[str, Any], source: str | None, document_id: uuid.UUID, kb_id: uuid.UUID
) -> dict[str, Any]:
    """What an external index filters on for one chunk: the same view as `retrieval.filters` has in
    PostgreSQL (its document's metadata, its own, the file name), the owning document and its knowledge
    base (last, so no metadata key can claim another)."""
    return {
        **document,
        **chunk,
        **({"source": source} if source else {}),
        "document_id": str(document_id),
        "knowledge_base_id": str(kb_id),
    }


class VectorIndex(Protocol):
    name: str

    async def upsert(self, tenant_id: uuid.UUID, records: Sequence[VectorRecord]) -> None: ...

    async def delete(self, tenant_id: uuid.UUID, ids: Sequence[str]) -> None: ...

    async def replace_metadata(self, tenant_id: uuid.UUID, records: Sequence[VectorRecord]) -> None:
        """New metadata for existing records, keeping their vectors (`dense` may be left empty)."""

    async def drop_tenant(self, tenant_id: uuid.UUID) -> None: ...

    async def dense_candidates(
        self,
        tenant_id: uuid.UUID,
        kb: KnowledgeBase,
        vector: Sequence[float],
        k: int,
        filters: dict[str, Scalar | list[Scalar]],
    ) -> list[Candidate]: ...

    async def sparse_candidates(
        self,
        tenant_id: uuid.UUID,
        kb: KnowledgeBase,
        terms: Any,
        k: int,
        filters: dict[str, Scalar | list[Scalar]],
    ) -> list[Candidate]: ...

    async def hits(
        self, tenant_id: uuid.UUID, ranked: Sequence[Candidate], filters: dict[str, Scalar | list[Scalar]]
    ) -> list[Hit]:
        """The visible chunks of `ranked`, in its order with its scores; fewer when some are gone."""


def index_for(indexes: dict[str, VectorIndex], kb: KnowledgeBase) -> VectorIndex:
    """The index holding this knowledge base's vectors."""
    index = indexes.get(kb.vector_backend)
    if index is None:
        raise UpstreamError(f"this knowledge base keeps its vectors in {kb.vector_backend}, which is not configured")
    return index
