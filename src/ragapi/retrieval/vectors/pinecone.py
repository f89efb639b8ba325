"""Pinecone as the vector index: one dense index (cosine) and one sparse index (dotproduct, BM25
weights), one namespace per tenant, record ids `<document id>#<chunk number>`.

Dense and sparse candidates are fetched separately and fused exactly as on pgvector. Metadata carries
only what filters need (`document_id` and the user's scalar metadata within Pinecone's limits). Calls go
through the official SDK in a worker thread, in batches, retried with exponential backoff on 429 and
5xx. Pinecone is eventually consistent: a freshly upserted vector can take a moment to be searchable,
while deletions of old versions are invisible at once because every match is joined to visible chunks.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import Any, TypeVar

from ragapi.core.database import Database
from ragapi.core.errors import UpstreamError
from ragapi.core.metrics import PROVIDER_ERRORS
from ragapi.retrieval.chunks import Candidate, Hit, read_record_hits, sparse_query_weights
from ragapi.retrieval.filters import Scalar
from ragapi.retrieval.knowledge_bases import KnowledgeBase
from ragapi.retrieval.vectors.base import VectorRecord

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_METADATA_VALUE_CHARS = 512
RETRYABLE = {429, 500, 502, 503, 504}


def pinecone_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Pinecone accepts strings, numbers, booleans and lists of strings; keep what filters can use."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) <= MAX_METADATA_VALUE_CHARS):
            out[key] = value
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            out[key] = value[:64]
    return out


def pinecone_filter(filters: dict[str, Scalar | list[Scalar]], kb: KnowledgeBase) -> dict[str, Any]:
    """Our filter language (validated) in Pinecone's: equality → $eq, lists → $in, all ANDed, within the
    knowledge base. Records written before tenants had several knowledge bases carry no knowledge-base id:
    they can only be the default's."""
    own: dict[str, Any] = {"knowledge_base_id": {"$eq": str(kb.id)}}
    if kb.is_default:
        own = {"$or": [own, {"knowledge_base_id": {"$exists": False}}]}
    clauses = [own] + [
        {key: {"$in": list(value)} if isinstance(value, list) else {"$eq": value}} for key, value in filters.items()
    ]
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class PineconeIndex:
    name = "pinecone"

    def __init__(
        self,
        db: Database,
        api_key: str,
        dense_host: str,
        sparse_host: str,
        batch_size: int = 100,
        max_retries: int = 5,
        backoff_s: float = 0.5,
    ) -> None:
        from pinecone import Pinecone

        client = Pinecone(api_key=api_key)
        self.db = db
        self.dense = client.Index(host=dense_host)
        self.sparse = client.Index(host=sparse_host)
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.backoff_s = backoff_s

    def _call(self, operation: str, fn: Callable[[], T]) -> T:
        from pinecone.errors.exceptions import ApiError

        for attempt in range(self.max_retries + 1):
            try:
                return fn()
            except ApiError as exc:
                PROVIDER_ERRORS.labels("pinecone").inc()
                if exc.status_code not in RETRYABLE or attempt == self.max_retries:
                    raise UpstreamError(f"pinecone {operation} failed with status {exc.status_code}") from exc
            except Exception as exc:  # connection errors from urllib3
                PROVIDER_ERRORS.labels("pinecone").inc()
                if attempt == self.max_retries:
                    raise UpstreamError(f"pinecone {operation} failed: {type(exc).__name__}") from exc
            delay = self.backoff_s * 2**attempt * (0.5 + random.random())  # noqa: S311 - jitter, not security
            log.warning("pinecone %s retry %d in %.2fs", operation, attempt + 1, delay)
            time.sleep(delay)
        raise AssertionError("unreachable")

    async def _run(self, operation: str, fn: Callable[[], T]) -> T:
        return await asyncio.to_thread(self._call, operation, fn)

    async def upsert(self, tenant_id: uuid.UUID, records: Sequence[VectorRecord]) -> None:
        namespace = str(tenant_id)
        for start in range(0, len(records), self.batch_size):
            batch = records[start : start + self.batch_size]
            dense = [{"id": r.id, "values": list(r.dense), "metadata": pinecone_metadata(r.metadata)} for r in batch]
            sparse = [
                {
                    "id": r.id,
                    "sparse_values": {"indices": sorted(r.sparse), "values": [r.sparse[i] for i in sorted(r.sparse)]},
                    "metadata": pinecone_metadata(r.metadata),
                }
                for r in batch
                if r.sparse
            ]
            await self._run("upsert", partial(self.dense.upsert, vectors=dense, namespace=namespace))
            if sparse:
                await self._run("upsert", partial(self.sparse.upsert, vectors=sparse, namespace=namespace))

    async def delete(self, tenant_id: uuid.UUID, ids: Sequence[str]) -> None:
        namespace = str(tenant_id)
        for start in range(0, len(ids), 1000):
            batch = list(ids[start : start + 1000])
            await self._run("delete", partial(self.dense.delete, ids=batch, namespace=namespace))
            await self._run("delete", partial(self.sparse.delete, ids=batch, namespace=namespace))

    async def replace_metadata(self, tenant_id: uuid.UUID, records: Sequence[VectorRecord]) -> None:
        """Pinecone's update only sets fields, it cannot remove one: re-upsert each record with its
        stored dense values (fetched) and its sparse weights (from PostgreSQL), so nothing is re-embedded."""
        dense = await self.fetch_dense(tenant_id, [r.id for r in records])
        missing = [r.id for r in records if r.id not in dense]
        if missing:
            raise UpstreamError(f"pinecone has no vectors for {len(missing)} chunks of this document")
        await self.upsert(tenant_id, [replace(r, dense=dense[r.id]) for r in records])

    async def drop_tenant(self, tenant_id: uuid.UUID) -> None:
        namespace = str(tenant_id)
        await self._run("delete", lambda: self.dense.delete(delete_all=True, namespace=namespace))
        await self._run("delete", lambda: self.sparse.delete(delete_all=True, namespace=namespace))

    async def fetch_dense(self, tenant_id: uuid.UUID, ids: Sequence[str]) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for start in range(0, len(ids), self.batch_size):
            batch = list(ids[start : start + self.batch_size])
            found = await self._run("fetch", partial(self.dense.fetch, ids=batch, namespace=str(tenant_id)))
            out.update({rid: list(v.values) for rid, v in found.vectors.items()})
        return out

    async def dense_candidates(
        self,
        tenant_id: uuid.UUID,
        kb: KnowledgeBase,
        vector: Sequence[float],
        k: int,
        filters: dict[str, Scalar | list[Scalar]],
    ) -> list[Candidate]:
        response = await self._run(
            "query",
            lambda: self.dense.query(
                vector=list(vector), top_k=k, namespace=str(tenant_id), filter=pinecone_filter(filters, kb)
            ),
        )
        return [Candidate(m.id, float(m.score)) for m in response.matches]

    async def sparse_candidates(
        self,
        tenant_id: uuid.UUID,
        kb: KnowledgeBase,
        terms: Any,
        k: int,
        filters: dict[str, Scalar | list[Scalar]],
    ) -> list[Candidate]:
        async with self.db.tenant_session(tenant_id) as session:
            weights = await sparse_query_weights(session, tenant_id, kb, terms)
        if not weights:
            return []
        indices = sorted(weights)
        response = await self._run(
            "query",
            lambda: self.sparse.query(
                sparse_vector={"indices": indices, "values": [weights[i] for i in indices]},
                top_k=k,
                namespace=str(tenant_id),
                filter=pinecone_filter(filters, kb),
            ),
        )
        return [Candidate(m.id, float(m.score)) for m in response.matches if m.score > 0]

    async def hits(
        self, tenant_id: uuid.UUID, ranked: Sequence[Candidate], filters: dict[str, Scalar | list[Scalar]]
    ) -> list[Hit]:
        async with self.db.tenant_session(tenant_id) as session:
            return await read_record_hits(session, tenant_id, ranked, filters)
