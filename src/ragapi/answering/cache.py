"""The answer cache's policy: which answers may be served again, to whom, and when they are stored.

    partition: tenant, the knowledge bases searched (ids, versions), the asker's reader view (who it is,
               its groups, the tenant's access version: `ragapi.core.access`), everything else that
               changes an answer (`AnswerCache.fingerprint`)
    lookup:    the exact entry under the question's key, then the partition's nearest semantic matches
               (REST, SSE and LangServe begin it before admission: `prefetch`, so that admission's one
               statement also runs the semantic search)
    hit:       the stored answer, `cached` "exact" or "semantic"; a semantic hit is also kept under its
               own exact key, for as long as the answer it matched
    store:     a finished answer with citations, off the response path

The knowledge-base versions are the ones admission read before anything ran: an answer computed while a
document changed is stored under the old version and can never be served for the new one. A knowledge
base's settings are part of its version (changing them bumps it).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.embeddings import Embeddings

from ragapi.answering.answer import Answer
from ragapi.answering.exact_cache import ExactCache, exact_key, partition_key
from ragapi.answering.question import Question
from ragapi.answering.semantic_cache import SemanticCache, SemanticSearch
from ragapi.core.metrics import CACHE_LOOKUPS, TIME_TO_FIRST_TOKEN
from ragapi.core.settings import Settings
from ragapi.core.tracing import stage
from ragapi.retrieval.hybrid import EmbeddedQuery, embed_query
from ragapi.retrieval.knowledge_bases import KnowledgeBase

log = logging.getLogger(__name__)

VERSIONS_KEPT = 10_000  # (tenant, knowledge bases named) whose versions a process remembers, for prefetching
MATCHED_AT = "matched_at"  # on an exact entry that remembers a semantic hit: the similarity it matched at


ScopeKey = tuple[tuple[str, str, int], ...]  # per knowledge base searched: id, created, version


@dataclass(frozen=True, slots=True)
class CacheScope:
    """What admission read about the tenant for the cache: the knowledge bases the question searches
    (whose versions partition the cache), the ones it named that are not there, and its cache policy."""

    kbs: tuple[KnowledgeBase, ...]
    enabled: bool
    semantic_threshold: float | None  # the tenant's own, used where stricter than the service's
    missing: tuple[str, ...] = ()

    @property
    def kb_version(self) -> int:
        """The sum of their versions: it grows whenever one of them changes."""
        return sum(kb.version for kb in self.kbs)

    @property
    def kb_ids(self) -> tuple[uuid.UUID, ...]:
        return tuple(kb.id for kb in self.kbs)

    @property
    def key(self) -> ScopeKey:
        """What the searched contents are: a knowledge base deleted and made again (the default) starts
        its versions anew, so its creation time is part of it."""
        return tuple((str(kb.id), kb.created_at.isoformat() if kb.created_at else "", kb.version) for kb in self.kbs)

    def threshold(self, service: float) -> float:
        return max(service, self.semantic_threshold or 0.0)

    @classmethod
    def parse(cls, scope: Mapping[str, Any]) -> CacheScope:
        """As the database's `cache_scope` function returns it (migration 0016)."""
        named = scope["knowledge_bases"]
        return cls(
            tuple(_unique(KnowledgeBase.of(kb) for kb in named["found"])),
            bool(scope["cache_enabled"]),
            scope["semantic_cache_threshold"],
            tuple(named["missing"]),
        )


def _unique(kbs: Iterable[KnowledgeBase]) -> list[KnowledgeBase]:
    """Each knowledge base once (a question may name one by its id and by its name)."""
    unique: dict[uuid.UUID, KnowledgeBase] = {}
    for kb in kbs:
        unique.setdefault(kb.id, kb)
    return list(unique.values())


@dataclass(frozen=True, slots=True)
class Lookup:
    """The first half of a lookup, done before admission so that admission's statement can run the
    semantic search too. Its key is built with the knowledge-base versions this process saw last for
    the knowledge bases named; it counts only if admission read those same versions."""

    key: str
    partition: str
    scope: ScopeKey
    kb_version: int
    exact: dict[str, Any] | None
    embedded: EmbeddedQuery | None  # the question's embedding, when there was no exact entry
    ms: float

    def search(self) -> SemanticSearch | None:
        """The semantic search for admission's statement, when one is needed."""
        if self.embedded is None:
            return None
        return SemanticSearch(self.kb_version, self.partition, self.embedded.vector)


@dataclass(frozen=True, slots=True)
class Found:
    """A lookup's outcome: the answer to serve (None on a miss), and what a miss stores under."""

    answer: Answer | None
    partition: str
    key: str
    embedded: EmbeddedQuery | None


class AnswerCache:
    def __init__(
        self,
        exact: ExactCache,
        semantic: SemanticCache | None,
        embeddings: Embeddings,
        settings: Settings,
        fingerprint: Mapping[str, Any],
    ) -> None:
        self.exact = exact
        self._semantic = semantic
        self.embeddings = embeddings
        self.settings = settings
        self.fingerprint = dict(fingerprint)  # everything besides the question that changes an answer
        self._pending: set[asyncio.Task[None]] = set()
        # the knowledge bases' versions last seen, per tenant and knowledge bases named
        self._versions: dict[tuple[uuid.UUID, tuple[str, ...] | None], tuple[ScopeKey, int]] = {}

    @property
    def semantic(self) -> SemanticCache | None:
        """The semantic cache, while SEMANTIC_CACHE_ENABLED."""
        return self._semantic if self.settings.semantic_cache_enabled else None

    def serves(self, question: Question) -> bool:
        return self.settings.cache_enabled and question.use_cache

    def keys(self, tenant_id: uuid.UUID, scope: ScopeKey, question: Question, view: str) -> tuple[str, str]:
        """`view`: the asker's reader view (`ReaderView.fingerprint`): an answer is served only to those
        who read the same documents."""
        parameters = {**self.fingerprint, "top_k": question.top_k, "filters": question.filters, "view": view}
        partition = partition_key(tenant_id, scope, parameters)
        return partition, exact_key(partition, question.text)

    async def prefetch(self, tenant_id: uuid.UUID, question: Question, view: str) -> Lookup | None:
        """Look up the exact entry and, without one, embed the question, before admission. None when the
        question skips the cache, or before this process has seen the versions of what it names."""
        seen = self._versions.get((tenant_id, question.knowledge_bases))
        if seen is None or not self.serves(question):
            return None
        scope, kb_version = seen
        started = time.perf_counter()
        partition, key = self.keys(tenant_id, scope, question, view)
        exact = await self.exact.get(key)
        embedded = await embed_query(self.embeddings, question.text) if exact is None and self.semantic else None
        return Lookup(key, partition, scope, kb_version, exact, embedded, (time.perf_counter() - started) * 1000)

    async def find(
        self,
        tenant_id: uuid.UUID,
        question: Question,
        scope: CacheScope,
        lookup: Lookup | None,
        nearest: list[dict[str, Any]] | None,
        started: float,
        view: str,
    ) -> Found:
        """The lookup's second half, under the versions admission read: `lookup` counts if it was made
        with those, and `nearest` are the semantic matches admission's statement found for it."""
        kb_version, threshold = scope.kb_version, scope.threshold(self.settings.semantic_cache_threshold)
        self._remember_version(tenant_id, question.knowledge_bases, scope)
        embedded = lookup.embedded if lookup is not None else None  # the question's; any version
        ready = lookup if lookup is not None and lookup.scope == scope.key else None  # else it moved
        partition, key = (ready.partition, ready.key) if ready else self.keys(tenant_id, scope.key, question, view)
        kind, semantic = "exact", self.semantic
        with stage("cache", tenant=tenant_id, kb_version=kb_version) as cache:
            entry = ready.exact if ready is not None else await self.exact.get(key)
            if entry is not None and not still_matches(entry, semantic is not None, threshold):
                entry = None  # a remembered semantic match the tenant's (or service's) policy no longer allows
            CACHE_LOOKUPS.labels("exact", "hit" if entry else "miss").inc()
            if entry is None and semantic is not None:
                embedded = embedded or await embed_query(self.embeddings, question.text)
                if ready is not None and nearest is not None:  # admission's statement searched
                    match = semantic.match(question.text, nearest, threshold)
                else:
                    match = await semantic.lookup(tenant_id, partition, question.text, embedded.vector, threshold)
                CACHE_LOOKUPS.labels("semantic", "hit" if match else "miss").inc()
                if match is not None:
                    entry, kind = match.response, "semantic"
                    # the same question again is then an exact hit here, with no embedding: in a process
                    # that did not store the answer (another worker or replica) every repeat was semantic
                    remembered = {**entry, MATCHED_AT: match.similarity}
                    self._background(self.exact.set(key, remembered, max(1, int(match.expires_in_s))))
            cache.set(cache=kind if entry is not None else "miss")
        if entry is None:
            return Found(None, partition, key, embedded)
        spent = {"embed": embedded.ms} if embedded is not None else {}
        before = lookup.ms if lookup is not None else 0.0  # the part of the lookup done before admission
        return Found(served(entry, kind, started, spent, before), partition, key, embedded)

    def keep(
        self,
        tenant_id: uuid.UUID,
        scope: CacheScope,
        found: Found,
        question: Question,
        answer: Answer,
    ) -> None:
        """Store a finished answer off the response path; one without sources is not worth keeping
        (documents may arrive)."""
        if answer.citations:
            entry = answer.model_dump(mode="json", include={"citations", "mode", "model", "answer"})
            vector = found.embedded.vector if found.embedded is not None else None
            self._background(self._store(tenant_id, scope, found, question.text, vector, entry))

    async def _store(
        self,
        tenant_id: uuid.UUID,
        scope: CacheScope,
        found: Found,
        query: str,
        vector: list[float] | None,
        entry: dict[str, Any],
    ) -> None:
        try:
            await self.exact.set(found.key, entry, self.settings.cache_ttl_s)
            semantic = self.semantic
            if semantic is not None:
                if vector is None:
                    vector = await self.embeddings.aembed_query(query)
                await semantic.store(tenant_id, scope.kb_ids, scope.kb_version, found.partition, query, vector, entry)
        except Exception:  # storing is best effort: the answer was already delivered
            log.warning("storing a cached answer failed", exc_info=True)

    def _remember_version(self, tenant_id: uuid.UUID, named: tuple[str, ...] | None, scope: CacheScope) -> None:
        if len(self._versions) >= VERSIONS_KEPT and (tenant_id, named) not in self._versions:
            self._versions.clear()
        self._versions[(tenant_id, named)] = (scope.key, scope.kb_version)

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        """Cache writes run off the response path; `drain` waits for them."""
        task = asyncio.create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait for answers still being stored (shutdown, tests)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        await self.exact.close()


def still_matches(entry: dict[str, Any], semantic_on: bool, threshold: float) -> bool:
    """An exact entry stored from a semantic hit is served only while the policy that allowed the match
    still does: semantic caching on, and the match at least as similar as the threshold now in force."""
    matched_at = entry.get(MATCHED_AT)
    return matched_at is None or (semantic_on and matched_at >= threshold)


def served(entry: dict[str, Any], kind: str, started: float, spent: dict[str, float], before_ms: float) -> Answer:
    """A stored answer as served now: a new query id, `cached`, and the time the lookup took."""
    TIME_TO_FIRST_TOKEN.labels(kind).observe(time.perf_counter() - started)
    elapsed = round((time.perf_counter() - started) * 1000 + before_ms, 2)
    return Answer(
        query_id=uuid.uuid4(),
        answer=entry["answer"],
        mode=entry["mode"],
        model=entry["model"],
        citations=entry["citations"],
        cached="semantic" if kind == "semantic" else "exact",
        timings_ms={"cache": elapsed, **spent, "total": elapsed},
    )
