"""Re-embed a tenant's knowledge base with the service's current embedding model.

The old vectors keep serving queries (with the old model) until the new ones are complete: new vectors
are written beside them (`chunks.embedding_next`) in batches, without the writer lock, and documents
ingested meanwhile are picked up by the next pass. The last pass runs under the tenant's writer lock
and ends with one commit that swaps every chunk and the knowledge base to the new model, bumping its
version so no answer cached under the old model is served.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from langchain_core.embeddings import Embeddings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ragapi.core.database import Database
from ragapi.core.errors import InvalidInput, NotFound, UpstreamError
from ragapi.core.metrics import PROVIDER_ERRORS
from ragapi.embedding import embedding_identity
from ragapi.ingestion.chunk_store import lock_index
from ragapi.retrieval import knowledge_bases
from ragapi.retrieval.chunks import ensure_dense_index, vector_literal


@dataclass(frozen=True, slots=True)
class ReembedReport:
    previous_model: str
    model: str
    dim: int
    chunks: int  # chunks embedded, the ones ingested during the run included


_PENDING = (
    "SELECT id, title, text FROM chunks WHERE tenant_id = :t AND knowledge_base_id = :k "
    "AND (embedding_next IS NULL OR embedding_next_model IS DISTINCT FROM :m) ORDER BY id LIMIT :n"
)


async def reembed(
    db: Database,
    embeddings: Embeddings,
    tenant_id: uuid.UUID,
    batch: int = 256,
    progress: Callable[[int, int], None] | None = None,
    kb_id: uuid.UUID | None = None,
) -> ReembedReport:
    """Re-embed knowledge base `kb_id` (None: the tenant's default) with `embeddings`; `progress(done,
    total)` after each batch (total grows if documents arrive meanwhile). Idempotent: an interrupted run
    resumes from the chunks it has not embedded."""
    model, dim = await asyncio.to_thread(embedding_identity, embeddings)
    kb_id = kb_id or tenant_id
    async with db.tenant_session(tenant_id) as session:
        kb = await knowledge_bases.get(session, kb_id)
        if kb is None or kb.status != "active":
            raise NotFound("no such knowledge base")
        if kb.vector_backend != "pgvector":
            raise InvalidInput(
                f"re-embedding runs on pgvector; move this knowledge base first (ragapi vectors migrate "
                f"--tenant {tenant_id} pgvector)"
            )
        previous = kb.embedding_model
        if (kb.embedding_model, kb.embedding_dim) == (model, dim):
            return ReembedReport(previous, model, dim, 0)
        await session.execute(
            text("UPDATE knowledge_bases SET reembedding_to = :m WHERE id = :k"), {"m": model, "k": kb_id}
        )
    async with db.admin_session() as session:
        await ensure_dense_index(session, dim)

    done = 0
    while True:  # passes without the lock: queries and ingestion go on
        async with db.tenant_session(tenant_id) as session:
            embedded = await _embed_pending(session, embeddings, tenant_id, kb_id, model, batch)
        done += embedded
        if progress:
            progress(done, done + await _pending_count(db, tenant_id, kb_id, model))
        if embedded == 0:
            break
    async with db.tenant_session(tenant_id) as session:  # the last pass and the swap, under the lock
        await lock_index(session, kb_id)
        while embedded := await _embed_pending(session, embeddings, tenant_id, kb_id, model, batch):
            done += embedded
        await session.execute(
            text(
                "UPDATE chunks SET embedding = embedding_next, embedding_model = :m, embedding_dim = :d, "
                "embedding_next = NULL, embedding_next_model = NULL WHERE tenant_id = :t AND knowledge_base_id = :k"
            ),
            {"m": model, "d": dim, "t": tenant_id, "k": kb_id},
        )
        await session.execute(
            text(
                "UPDATE knowledge_bases SET embedding_model = :m, embedding_dim = :d, reembedding_to = NULL, "
                "version = version + 1, updated_at = now() WHERE id = :k"
            ),
            {"m": model, "d": dim, "k": kb_id},
        )
    if progress:
        progress(done, done)
    return ReembedReport(previous, model, dim, done)


async def _embed_pending(
    session: AsyncSession, embeddings: Embeddings, tenant_id: uuid.UUID, kb_id: uuid.UUID, model: str, batch: int
) -> int:
    rows = (await session.execute(text(_PENDING), {"t": tenant_id, "k": kb_id, "m": model, "n": batch})).all()
    if not rows:
        return 0
    texts = [f"{r.title}\n\n{r.text}" for r in rows]  # what the pipeline embeds
    try:
        vectors = await asyncio.to_thread(embeddings.embed_documents, texts)
    except Exception as exc:  # provider errors: the run stops, and resumes where it was when started again
        PROVIDER_ERRORS.labels("embeddings").inc()
        raise UpstreamError(f"embedding provider failed: {type(exc).__name__}") from exc
    await session.execute(
        text(
            "UPDATE chunks SET embedding_next = CAST(:v AS vector), embedding_next_model = :m "
            "WHERE tenant_id = :t AND id = :id"
        ),
        [{"v": vector_literal(v), "m": model, "t": tenant_id, "id": r.id} for r, v in zip(rows, vectors, strict=True)],
    )
    return len(rows)


async def _pending_count(db: Database, tenant_id: uuid.UUID, kb_id: uuid.UUID, model: str) -> int:
    async with db.tenant_session(tenant_id) as session:
        return int(
            (
                await session.execute(
                    text(
                        "SELECT count(*) FROM chunks WHERE tenant_id = :t AND knowledge_base_id = :k "
                        "AND (embedding_next IS NULL OR embedding_next_model IS DISTINCT FROM :m)"
                    ),
                    {"t": tenant_id, "k": kb_id, "m": model},
                )
            ).scalar_one()
        )
