"""pgvector: the vectors live in the chunk rows themselves, written and deleted by the ingesting
transaction, searched with the chunk store's own statements."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from ragapi.core.database import Database
from ragapi.retrieval.chunks import (
    Candidate,
    Hit,
    dense_search,
    dense_search_settings,
    read_hits,
    sparse_search,
)
from ragapi.retrieval.filters import Scalar
from ragapi.retrieval.knowledge_bases import KnowledgeBase
from ragapi.retrieval.vectors.base import VectorRecord


class PgVectorIndex:
    """Vectors in the chunk rows themselves: written and deleted by the ingest transaction."""

    name = "pgvector"

    def __init__(self, db: Database, ef_search: int, bm25_budget: int = 0) -> None:
        self.db = db
        self.ef_search = ef_search
        self.bm25_budget = bm25_budget  # 0: BM25 by an exact scan

    async def upsert(self, tenant_id: uuid.UUID, records: Sequence[VectorRecord]) -> None:  # noqa: ARG002
        return None  # the chunk rows carry the vectors

    async def delete(self, tenant_id: uuid.UUID, ids: Sequence[str]) -> None:  # noqa: ARG002
        return None  # deleting the chunk rows deleted the vectors

    async def replace_metadata(self, tenant_id: uuid.UUID, records: Sequence[VectorRecord]) -> None:  # noqa: ARG002
        return None  # filters read the chunk rows' metadata

    async def drop_tenant(self, tenant_id: uuid.UUID) -> None:  # noqa: ARG002
        return None

    async def dense_candidates(
        self,
        tenant_id: uuid.UUID,
        kb: KnowledgeBase,
        vector: Sequence[float],
        k: int,
        filters: dict[str, Scalar | list[Scalar]],
    ) -> list[Candidate]:
        async with self.db.tenant_session(tenant_id, local=dense_search_settings(self.ef_search, k)) as session:
            return await dense_search(session, tenant_id, kb, vector, k, filters)

    async def sparse_candidates(
        self,
        tenant_id: uuid.UUID,
        kb: KnowledgeBase,
        terms: Any,
        k: int,
        filters: dict[str, Scalar | list[Scalar]],
    ) -> list[Candidate]:
        async with self.db.tenant_session(tenant_id) as session:
            return await sparse_search(session, tenant_id, kb, terms, k, filters, self.bm25_budget)

    async def hits(
        self, tenant_id: uuid.UUID, ranked: Sequence[Candidate], filters: dict[str, Scalar | list[Scalar]]
    ) -> list[Hit]:
        async with self.db.tenant_session(tenant_id) as session:
            return await read_hits(session, tenant_id, ranked, filters)
