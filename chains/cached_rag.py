"""The answer cache as a stream around the RAG chain (inside the logged stream that REST and SSE read
directly and LangServe and the CLI as the one `rag` runnable, see analytics.query_log), so every surface
shares it.

    lookup: tenant scope → partition (tenant, KB version, parameters) → exact key → semantic match
            (REST and SSE start it before admission, whose statement then runs the semantic search: `prefetch`)
    hit:    replay the stored answer as one chunk (citations and the whole answer) with `cached`;
            a semantic hit is also kept under its own exact key, for as long as the answer it matched
    miss:   run the chain, pass every chunk through, store the finished answer off the response path

The knowledge-base version is read before the chain runs: an answer computed while a document changed
is stored under the old version and can never be served for the new one.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.utils import AddableDict
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from chains.answer_cache import ExactCache, exact_key, partition_key
from chains.embeddings import embedding_identity
from chains.generate import PROMPT_VERSION
from chains.index import KB_COLUMNS, KnowledgeBase
from chains.rag import EMBEDDED_QUERY_KEY, KNOWLEDGE_BASE_KEY, RagChain, configured, tenant_from_config
from chains.retriever import EmbeddedQuery, embed_query
from chains.semantic_cache import SemanticCache, search_parameters
from core.metrics import CACHE_LOOKUPS, TIME_TO_FIRST_TOKEN
from core.tracing import stage

log = logging.getLogger(__name__)


CACHE_SCOPE_KEY = "cache_scope"  # configurable key: a CacheScope the caller read in its own transaction
CACHE_LOOKUP_KEY = "cache_lookup"  # configurable key: a Prefetched lookup the caller finished in that statement
VERSIONS_KEPT = 10_000  # tenants whose knowledge-base version a process remembers, for prefetching


@dataclass(frozen=True, slots=True)
class CacheScope:
    """What the cache needs to know about a tenant before a lookup, and the knowledge base it was read
    with (its version partitions the cache; on a miss, retrieval searches that same one)."""

    kb: KnowledgeBase | None
    enabled: bool
    semantic_threshold: float | None  # the tenant's own, used where stricter than the service's

    @property
    def kb_version(self) -> int:
        return self.kb.version if self.kb is not None else 0

    def threshold(self, service: float) -> float:
        return max(service, self.semantic_threshold or 0.0)


_SCOPE = text("SELECT cache_scope(:t)")


async def read_cache_scope(session: AsyncSession, tenant_id: uuid.UUID) -> CacheScope:
    """Inside a tenant transaction, for callers that were not admitted (admission reads it with the quota
    charge: tenants.quotas.charge_query)."""
    return parse_cache_scope((await session.execute(_SCOPE, {"t": tenant_id})).scalar_one())


def parse_cache_scope(scope: dict[str, Any]) -> CacheScope:
    """The tenant's scope as the database's `cache_scope` function returns it (migration 0010)."""
    kb = scope["knowledge_base"]
    return CacheScope(
        KnowledgeBase(*(kb[c] for c in KB_COLUMNS)) if kb is not None else None,
        bool(scope["cache_enabled"]),
        scope["semantic_cache_threshold"],
    )


def cache_scope_from_config(config: RunnableConfig | None) -> CacheScope | None:
    scope = configured(config, CACHE_SCOPE_KEY)
    return scope if isinstance(scope, CacheScope) else None


@dataclass(frozen=True, slots=True)
class Prefetched:
    """The first half of a lookup, done before admission so that admission's one statement can also run
    the semantic search (a round trip less for every semantic hit and every miss). The key is built with
    the knowledge-base version this process saw last; the chain uses the lookup only if admission read
    that same version."""

    key: str
    partition: str
    kb_version: int
    exact: dict[str, Any] | None
    embedded: EmbeddedQuery | None  # the question's embedding, when there was no exact entry
    ms: float
    nearest: list[dict[str, Any]] | None = None  # the partition's nearest entries admission found; None: not searched

    def search(self) -> dict[str, Any] | None:
        """The semantic search for admission's statement, when one is needed."""
        if self.embedded is None:
            return None
        return search_parameters(self.kb_version, self.partition, self.embedded.vector)


def prefetched_from_config(config: RunnableConfig | None) -> Prefetched | None:
    lookup = configured(config, CACHE_LOOKUP_KEY)
    return lookup if isinstance(lookup, Prefetched) else None


class CachedRag:
    def __init__(
        self, rag: RagChain, exact: ExactCache, semantic: SemanticCache | None, embeddings: Embeddings
    ) -> None:
        self.rag = rag
        self.exact = exact
        self.semantic = semantic
        self.embeddings = embeddings
        self.settings = rag.settings
        self._pending: set[asyncio.Task[None]] = set()
        self._versions: dict[uuid.UUID, int] = {}  # knowledge-base version last seen, per tenant

    def parameters(self, top_k: int, filters: dict[str, Any]) -> dict[str, Any]:
        """Everything besides the query that changes an answer."""
        s = self.settings
        return {
            "top_k": top_k,
            "filters": filters,
            "answerer": [self.rag.answerer.mode, self.rag.answerer.model, PROMPT_VERSION, s.extractive_sentences],
            "reranker": getattr(self.rag.reranker, "name", "none"),
            "embedding": embedding_identity(self.embeddings)[0],
            "retrieval": [s.fusion.value, s.fusion_dense_weight, s.rrf_k, s.retrieval_candidates, s.bm25_k1, s.bm25_b],
            "chunking": [s.chunk_size_tokens, s.chunk_overlap_tokens],
        }

    def _keys(
        self, tenant_id: uuid.UUID, kb_version: int, query: str, top_k: int, filters: dict[str, Any]
    ) -> tuple[str, str]:
        partition = partition_key(tenant_id, kb_version, self.parameters(top_k, filters))
        return partition, exact_key(partition, query)

    def _semantic_on(self) -> bool:
        return self.semantic is not None and self.settings.semantic_cache_enabled

    def _remember_version(self, tenant_id: uuid.UUID, kb_version: int) -> None:
        if len(self._versions) >= VERSIONS_KEPT and tenant_id not in self._versions:
            self._versions.clear()
        self._versions[tenant_id] = kb_version

    async def prefetch(self, tenant_id: uuid.UUID, data: Any) -> Prefetched | None:
        """Look up the exact entry and, without one, embed the question, before admission (REST and SSE).
        None when the request skips the cache, or before this process has seen the tenant's version.
        Invalid input is refused here, before admission charges for it."""
        started = time.perf_counter()
        payload = data.model_dump() if isinstance(data, BaseModel) else data
        query, top_k, filters = self.rag.parse_input(payload)
        kb_version = self._versions.get(tenant_id)
        if kb_version is None or not self._caching(payload):
            return None
        partition, key = self._keys(tenant_id, kb_version, query, top_k, filters)
        exact = await self.exact.get(key)
        embedded = await embed_query(self.embeddings, query) if exact is None and self._semantic_on() else None
        return Prefetched(key, partition, kb_version, exact, embedded, (time.perf_counter() - started) * 1000)

    def _caching(self, payload: Any) -> bool:
        opted_out = isinstance(payload, dict) and payload.get("cache") is False
        return self.settings.cache_enabled and not opted_out

    async def tenant_scope(self, tenant_id: uuid.UUID) -> CacheScope:
        async with self.rag.db.tenant_session(tenant_id) as session:
            return await read_cache_scope(session, tenant_id)

    async def stream(self, data: Any, config: RunnableConfig) -> AsyncIterator[AddableDict]:
        inner = self.rag.runnable()
        payload = data.model_dump() if isinstance(data, BaseModel) else data
        tenant_id = tenant_from_config(config)
        query, top_k, filters = self.rag.parse_input(payload)
        if not self._caching(payload):
            async for chunk in inner.astream(payload, config):
                yield chunk
            return

        started = time.perf_counter()
        scope = cache_scope_from_config(config) or await self.tenant_scope(tenant_id)
        kb_version, threshold = scope.kb_version, scope.threshold(self.settings.semantic_cache_threshold)
        self._remember_version(tenant_id, kb_version)
        prefetched = prefetched_from_config(config)
        embedded = prefetched.embedded if prefetched is not None else None  # the question's; any version
        if not scope.enabled:  # the tenant's cache is off: retrieval still uses what is known already
            async for chunk in inner.astream(payload, known_to_retrieval(config, scope, embedded)):
                yield chunk
            return
        ready = prefetched if prefetched is not None and prefetched.kb_version == kb_version else None  # else it moved
        if ready is not None:  # the same input, so the same keys
            partition, key = ready.partition, ready.key
        else:
            partition, key = self._keys(tenant_id, kb_version, query, top_k, filters)
        kind = "exact"
        semantic_on = self._semantic_on()
        with stage("cache", tenant=tenant_id, kb_version=kb_version) as lookup:
            hit = ready.exact if ready is not None else await self.exact.get(key)
            if hit is not None and not still_matches(hit, semantic_on, threshold):
                hit = None  # a remembered semantic match the tenant's (or service's) policy no longer allows
            CACHE_LOOKUPS.labels("exact", "hit" if hit else "miss").inc()
            if hit is None and self.semantic is not None and semantic_on:
                embedded = embedded or await embed_query(self.embeddings, query)
                if ready is not None and ready.nearest is not None:  # admission's statement searched
                    found = self.semantic.match(query, ready.nearest, threshold)
                else:
                    found = await self.semantic.lookup(tenant_id, partition, query, embedded.vector, threshold)
                CACHE_LOOKUPS.labels("semantic", "hit" if found else "miss").inc()
                if found is not None:
                    hit, kind = found.response, "semantic"
                    # the same question again is then an exact hit here, with no embedding: in a process
                    # that did not store the answer (another worker or replica) every repeat was semantic
                    remembered = {**hit, MATCHED_AT: found.similarity}
                    self._background(self.exact.set(key, remembered, max(1, int(found.expires_in_s))))
            lookup.set(cache=kind if hit is not None else "miss")
        if hit is not None:
            spent = {"embed": embedded.ms} if embedded is not None else {}
            before = prefetched.ms if prefetched is not None else 0.0  # the lookup's part done before admission
            async for chunk in replay(hit, kind, started, spent, before):
                yield chunk
            return

        merged = AddableDict()
        async for chunk in inner.astream(payload, known_to_retrieval(config, scope, embedded)):
            merged = merged + chunk
            yield chunk
        if merged.get("citations"):  # nothing found is not worth remembering: documents may arrive
            entry = {k: merged[k] for k in ("citations", "mode", "model", "answer")}
            vector = embedded.vector if embedded is not None else None
            self._background(self._store(tenant_id, kb_version, partition, key, query, vector, entry))

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        """Cache writes run off the response path; `drain` waits for them."""
        task = asyncio.create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _store(
        self,
        tenant_id: uuid.UUID,
        kb_version: int,
        partition: str,
        key: str,
        query: str,
        vector: list[float] | None,
        entry: dict[str, Any],
    ) -> None:
        try:
            await self.exact.set(key, entry, self.settings.cache_ttl_s)
            if self.semantic is not None and self.settings.semantic_cache_enabled:
                if vector is None:
                    vector = await self.embeddings.aembed_query(query)
                await self.semantic.store(tenant_id, kb_version, partition, query, vector, entry)
        except Exception:  # storing is best effort: the answer was already delivered
            log.warning("storing a cached answer failed", exc_info=True)

    async def drain(self) -> None:
        """Wait for answers still being stored (shutdown, tests)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


def known_to_retrieval(config: RunnableConfig, scope: CacheScope, embedded: EmbeddedQuery | None) -> RunnableConfig:
    """The chain's config with what the lookup already has: the knowledge base admission read (retrieval
    searches that version and opens no transaction to read it), and the question's embedding if any."""
    known = {KNOWLEDGE_BASE_KEY: scope.kb} | ({EMBEDDED_QUERY_KEY: embedded} if embedded is not None else {})
    return {**config, "configurable": {**(config.get("configurable") or {}), **known}}


MATCHED_AT = "matched_at"  # on an exact entry that remembers a semantic hit: the similarity it matched at


def still_matches(entry: dict[str, Any], semantic_on: bool, threshold: float) -> bool:
    """An exact entry stored from a semantic hit is served only while the policy that allowed the match
    still does: semantic caching on, and the match at least as similar as the threshold now in force."""
    matched_at = entry.get(MATCHED_AT)
    return matched_at is None or (semantic_on and matched_at >= threshold)


async def replay(
    entry: dict[str, Any], kind: str, started: float, spent: dict[str, float], before_ms: float = 0.0
) -> AsyncIterator[AddableDict]:
    """The whole response as one chunk. LangChain awaits each chunk of a runnable's stream in a task of
    its own, two turns of the event loop per chunk, and under load each turn waits behind every other
    request's ready work: three chunks cost an exact hit ~5 ms at P95, while a client gains nothing from
    the original token boundaries (the SSE route still sends `sources`, `token`, `done`)."""
    TIME_TO_FIRST_TOKEN.labels(kind).observe(time.perf_counter() - started)
    elapsed = round((time.perf_counter() - started) * 1000 + before_ms, 2)
    yield AddableDict(
        query_id=str(uuid.uuid4()),
        citations=entry["citations"],
        mode=entry["mode"],
        model=entry["model"],
        answer=entry["answer"],
        cached=kind,
        timings_ms={"cache": elapsed, **spent, "total": elapsed},
    )
