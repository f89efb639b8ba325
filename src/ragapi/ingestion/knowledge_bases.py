"""Managing a tenant's knowledge bases: create, list, change, delete; and which one a request means.

Settings are checked against what this service can do when they are set (a knowledge base cannot ask
for a model the service cannot embed with, an LLM that is not configured, or more sources than
MAX_TOP_K), so a question never meets an impossible setting. Changing settings bumps the knowledge
base's version: cached answers made under the old settings are not served again.

Deleting one is a job: the knowledge base is marked `deleting` at once (questions and ingestion no
longer see it, its name is free again), then its documents, chunks, vectors in any backend, BM25
statistics and semantic-cache entries are removed in batches, and finally its row. A deletion
interrupted by a restart is resumed by the next process that serves the API (`resume_deletions`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from typing import Any, NoReturn

from langchain_core.embeddings import Embeddings
from sqlalchemy import text

from ragapi.core import inputs
from ragapi.core.database import Database
from ragapi.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from ragapi.core.settings import Reranker, Settings
from ragapi.embedding import ONNX_MODEL_NAME, embedder_for, embedding_identity
from ragapi.ingestion.chunk_store import bump_knowledge_base
from ragapi.retrieval import knowledge_bases
from ragapi.retrieval.chunks import record_ids
from ragapi.retrieval.knowledge_bases import (
    DEFAULT_NAME,
    MAX_DESCRIPTION_CHARS,
    KnowledgeBase,
    KnowledgeBaseSettings,
    as_id,
    canonical_ref,
    check_name,
)
from ragapi.retrieval.vectors.base import VectorIndex, index_for
from ragapi.tenants.context import TenantContext

log = logging.getLogger(__name__)

NOT_FOUND = "no such knowledge base"
DELETE_BATCH = 200  # documents removed per transaction while deleting a knowledge base


class KnowledgeBaseService:
    def __init__(
        self, db: Database, embeddings: Embeddings, indexes: dict[str, VectorIndex], settings: Settings
    ) -> None:
        self.db = db
        self.embeddings = embeddings  # the service's: a knowledge base's model must be this or the bundled one
        self.indexes = indexes
        self.settings = settings
        self._deletions: dict[uuid.UUID, asyncio.Task[None]] = {}

    # --- which knowledge base a request means ---

    async def resolve(self, tenant: TenantContext, ref: str | None) -> KnowledgeBase | None:
        """The live knowledge base `ref` names (an id or a name) that this caller may use; NotFound
        otherwise, the same for another tenant's, a deleted one and one the caller's key is not allowed.
        None named: `default_ref` decides; None back when that is the default and it does not exist yet."""
        named = canonical_ref(ref) if ref is not None else default_ref(tenant)
        async with self.db.tenant_session(tenant.tenant_id, durable=False) as session:
            kb = await knowledge_bases.find(session, tenant.tenant_id, named)
        if kb is None and ref is None and named == str(tenant.tenant_id):
            return None
        if kb is None or not tenant.may_use(kb.id):
            raise NotFound(NOT_FOUND)
        return kb

    async def target(self, tenant: TenantContext, ref: str | None) -> uuid.UUID:
        """The knowledge base documents go into: `resolve`d, or the default, created on first ingest."""
        kb = await self.resolve(tenant, ref)
        return kb.id if kb is not None else tenant.tenant_id

    async def scope_of(self, tenant: TenantContext, ref: str | None) -> uuid.UUID | None:
        """What a tenant-wide report (analytics, feedback export) covers: the knowledge base `ref` names,
        the one a restricted key means when it names none, or None: the whole tenant."""
        if ref is None and tenant.knowledge_base_ids is None:
            return None
        kb = await self.resolve(tenant, ref)
        return kb.id if kb is not None else tenant.tenant_id

    async def ids(self, tenant: TenantContext, refs: tuple[str, ...]) -> tuple[uuid.UUID, ...]:
        """The ids of the knowledge bases `refs` name (each `resolve`d), in their order, each once."""
        found = [(await self.resolve(tenant, ref) or _absent()).id for ref in refs]
        return tuple(dict.fromkeys(found))

    # --- managing them ---

    async def visible(self, tenant: TenantContext) -> list[KnowledgeBase]:
        """The tenant's knowledge bases this caller may use, being deleted ones included."""
        async with self.db.tenant_session(tenant.tenant_id, durable=False) as session:
            found = await knowledge_bases.list_all(session, tenant.tenant_id)
        return [kb for kb in found if tenant.may_use(kb.id)]

    async def embedding_models(self) -> list[str]:
        """The models a knowledge base may embed with here: the service's, and the bundled one."""
        own = (await asyncio.to_thread(embedding_identity, self.embeddings))[0]
        return list(dict.fromkeys((own, ONNX_MODEL_NAME)))

    async def get(self, tenant: TenantContext, ref: str) -> KnowledgeBase:
        """A live one by id or name, or one being deleted by its id (to follow the deletion)."""
        named = canonical_ref(ref)
        async with self.db.tenant_session(tenant.tenant_id, durable=False) as session:
            kb = await knowledge_bases.find(session, tenant.tenant_id, named)
            kb_id = as_id(named)
            if kb is None and kb_id is not None:
                kb = await knowledge_bases.get(session, kb_id)
        if kb is None or kb.tenant_id != tenant.tenant_id or not tenant.may_use(kb.id):
            raise NotFound(NOT_FOUND)
        return kb

    async def create(
        self, tenant: TenantContext, name: str, description: str, settings: KnowledgeBaseSettings
    ) -> KnowledgeBase:
        if tenant.knowledge_base_ids is not None:
            raise Forbidden("a key restricted to some knowledge bases cannot create one")
        name = check_name(name)
        if name == DEFAULT_NAME:
            raise Conflict(f"the name {DEFAULT_NAME!r} is kept for the tenant's default knowledge base", "name")
        description = _check_description(description)
        settings, model, dim = await self._checked(settings, None)
        kb_id = uuid.uuid4()
        async with self.db.tenant_session(tenant.tenant_id) as session:
            await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:t))"), {"t": f"kb:{tenant.tenant_id}"})
            count = (
                await session.execute(
                    text("SELECT count(*) FROM knowledge_bases WHERE tenant_id = :t"), {"t": tenant.tenant_id}
                )
            ).scalar_one()
            if count >= self.settings.max_knowledge_bases:
                raise Conflict(
                    f"this tenant has {count} knowledge bases, the most it may have (MAX_KNOWLEDGE_BASES); "
                    "delete one first"
                )
            created = await knowledge_bases.insert(
                session,
                tenant.tenant_id,
                kb_id,
                name,
                model,
                dim,
                self.settings.vector_backend.value,
                settings,
                description,
            )
            if not created:
                raise Conflict(f"this tenant already has a knowledge base named {name!r}", "name")
            kb = await knowledge_bases.get(session, kb_id)
        return kb or _absent()

    async def update(self, tenant: TenantContext, ref: str, changes: Mapping[str, Any]) -> KnowledgeBase:
        """`changes`: name, description, and settings (each given setting replaced; null: back to the
        service's). The embedding model can change only while the knowledge base is empty."""
        current = await self.resolve(tenant, ref) or _absent()
        name = check_name(changes["name"]) if changes.get("name") is not None else current.name
        if name == DEFAULT_NAME and not current.is_default:
            raise Conflict(f"the name {DEFAULT_NAME!r} is kept for the tenant's default knowledge base", "name")
        description = (
            _check_description(changes["description"])
            if changes.get("description") is not None
            else current.description
        )
        given = changes.get("settings")
        merged = (
            KnowledgeBaseSettings.parse({**current.settings.stored(), **dict(given)})
            if given is not None
            else current.settings
        )
        settings, model, dim = await self._checked(merged, current)
        async with self.db.tenant_session(tenant.tenant_id) as session:
            locked = await knowledge_bases.get(session, current.id, lock=True)
            if locked is None or locked.status != "active":
                raise NotFound(NOT_FOUND)
            if (model, dim) != (locked.embedding_model, locked.embedding_dim) and locked.chunk_count:
                raise Conflict(
                    "settings.embedding_model: a knowledge base with documents keeps its model; re-embed it "
                    "(ragapi reembed) or create a new knowledge base",
                    "settings.embedding_model",
                )
            clash = await knowledge_bases.find(session, tenant.tenant_id, name)
            if clash is not None and clash.id != current.id:
                raise Conflict(f"this tenant already has a knowledge base named {name!r}", "name")
            await session.execute(
                text(
                    "UPDATE knowledge_bases SET name = :n, description = :d, settings = CAST(:s AS jsonb), "
                    "embedding_model = :m, embedding_dim = :dim WHERE id = :k"
                ),
                {
                    "n": name,
                    "d": description,
                    "s": settings.model_dump_json(exclude_none=True),
                    "m": model,
                    "dim": dim,
                    "k": current.id,
                },
            )
            await bump_knowledge_base(session, current.id)
            kb = await knowledge_bases.get(session, current.id)
        return kb or _absent()

    async def _checked(
        self, settings: KnowledgeBaseSettings, current: KnowledgeBase | None
    ) -> tuple[KnowledgeBaseSettings, str, int]:
        """Settings this service can honour, and the embedding model and dimension they mean."""
        s = self.settings
        size = settings.chunk_size_tokens or s.chunk_size_tokens
        overlap = settings.chunk_overlap_tokens if settings.chunk_overlap_tokens is not None else s.chunk_overlap_tokens
        if overlap >= size:
            raise InvalidInput(
                f"settings.chunk_overlap_tokens: must be smaller than the chunk size ({size})",
                "settings.chunk_overlap_tokens",
            )
        if settings.top_k is not None and settings.top_k > s.max_top_k:
            raise InvalidInput(f"settings.top_k: at most {s.max_top_k} (MAX_TOP_K)", "settings.top_k")
        if settings.answer_mode == "llm" and s.openai_api_key is None:
            raise InvalidInput(
                "settings.answer_mode: llm needs an LLM configured (OPENAI_API_KEY)", "settings.answer_mode"
            )
        if settings.rerank and s.effective_reranker is Reranker.NONE:
            raise InvalidInput("settings.rerank: no reranker is configured (RERANKER)", "settings.rerank")
        wanted = settings.embedding_model or (current.embedding_model if current else None)
        embedder = self.embeddings if wanted is None else embedder_for(wanted, self.embeddings, s)
        if embedder is None:
            own = embedding_identity(self.embeddings)[0]
            raise InvalidInput(
                f"settings.embedding_model: this service embeds with {own} or the bundled model, not {wanted}",
                "settings.embedding_model",
            )
        model, dim = await asyncio.to_thread(embedding_identity, embedder)
        return settings, model, dim

    # --- deleting one ---

    async def delete(self, tenant: TenantContext, ref: str) -> KnowledgeBase:
        """Mark it deleting and start removing its contents; its state, to follow the deletion."""
        current = await self.resolve(tenant, ref) or _absent()
        async with self.db.tenant_session(tenant.tenant_id) as session:
            await session.execute(
                text(
                    "UPDATE knowledge_bases SET status = 'deleting', version = version + 1, deletion = "
                    "jsonb_build_object('documents', (SELECT count(*) FROM documents WHERE knowledge_base_id = :k), "
                    "'requested_at', now()) WHERE id = :k AND status = 'active'"
                ),
                {"k": current.id},
            )
            kb = await knowledge_bases.get(session, current.id)
        self.start_deletion(tenant.tenant_id, current.id)
        return kb or _absent()

    async def documents_left(self, kb: KnowledgeBase) -> int:
        """Documents a knowledge base still has (a deletion's progress)."""
        async with self.db.tenant_session(kb.tenant_id, durable=False) as session:
            return int(
                (
                    await session.execute(
                        text("SELECT count(*) FROM documents WHERE knowledge_base_id = :k"), {"k": kb.id}
                    )
                ).scalar_one()
            )

    def start_deletion(self, tenant_id: uuid.UUID, kb_id: uuid.UUID) -> None:
        if kb_id not in self._deletions:
            task = asyncio.create_task(self._delete(tenant_id, kb_id), name=f"delete-knowledge-base-{kb_id}")
            self._deletions[kb_id] = task
            task.add_done_callback(lambda _: self._deletions.pop(kb_id, None))

    async def resume_deletions(self) -> int:
        """Start the deletions an earlier process left unfinished; how many."""
        async with self.db.admin_session() as session:
            rows = (
                await session.execute(text("SELECT tenant_id, id FROM knowledge_bases WHERE status = 'deleting'"))
            ).all()
        for row in rows:
            self.start_deletion(row.tenant_id, row.id)
        return len(rows)

    async def drain(self) -> None:
        """Wait for the deletions under way (tests, shutdown)."""
        if self._deletions:
            await asyncio.gather(*self._deletions.values(), return_exceptions=True)

    async def _delete(self, tenant_id: uuid.UUID, kb_id: uuid.UUID) -> None:
        try:
            while await self._delete_batch(tenant_id, kb_id):
                pass
            async with self.db.tenant_session(tenant_id) as session:
                await session.execute(text("DELETE FROM sparse_terms WHERE knowledge_base_id = :k"), {"k": kb_id})
                await session.execute(
                    text("DELETE FROM semantic_cache WHERE :k = ANY(knowledge_base_ids)"), {"k": kb_id}
                )
                await session.execute(
                    text("DELETE FROM knowledge_bases WHERE id = :k AND status = 'deleting'"), {"k": kb_id}
                )
        except Exception:  # resumed by the next process that starts
            log.exception("deleting knowledge base %s stopped; it resumes when the service restarts", kb_id)

    async def _delete_batch(self, tenant_id: uuid.UUID, kb_id: uuid.UUID) -> int:
        """Remove up to DELETE_BATCH documents with their chunks and vectors; how many. The BM25
        statistics are not adjusted: they go with the knowledge base."""
        async with self.db.tenant_session(tenant_id) as session:
            kb = await knowledge_bases.get(session, kb_id, lock=True)
            if kb is None:
                return 0
            rows = (
                await session.execute(
                    text(
                        "DELETE FROM documents WHERE id IN (SELECT id FROM documents WHERE knowledge_base_id = :k "
                        "LIMIT :n) RETURNING id, chunk_count"
                    ),
                    {"k": kb_id, "n": DELETE_BATCH},
                )
            ).all()
            if kb.vector_backend != "pgvector" and rows:
                ids = [rid for r in rows for rid in record_ids(r.id, r.chunk_count)]
                await index_for(self.indexes, kb).delete(tenant_id, ids)  # before the rows go: retried if it fails
        return len(rows)


def default_ref(tenant: TenantContext) -> str:
    """The knowledge base meant when a request names none: the tenant's default, or the only one a
    restricted key may use (a key restricted to several must name one)."""
    allowed = tenant.knowledge_base_ids
    if allowed is None or tenant.tenant_id in allowed:
        return str(tenant.tenant_id)
    if len(allowed) == 1:
        return str(next(iter(allowed)))
    raise InvalidInput("knowledge_base: this key may use several knowledge bases; name one")


def _check_description(description: str) -> str:
    inputs.check(description, "description")
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise InvalidInput(f"description is longer than {MAX_DESCRIPTION_CHARS} characters", "description")
    return description


def _absent() -> NoReturn:
    raise NotFound(NOT_FOUND)
