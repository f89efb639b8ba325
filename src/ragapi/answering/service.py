"""The answering service: the one path every surface's questions take.

    admit(request)     the cache lookup begun (exact entry, else the question's embedding), then one
                       statement: the knowledge bases named found among the caller's, the quota
                       charged, the cache policy read, the semantic search run    → Admission
    search(request)    retrieval alone: admitted (knowledge bases, quota), searched, reranked, logged
                                                                                 → Searched (passages)
    answer(admission)  the cached answer, or retrieval → rerank → generation, streamed as events and
                       stored for next time; the query logged and measured once it ends
                                                                                 → Sources, Token…, Finished

REST, SSE, LangServe and the CLI only turn their input into an `AnswerRequest` and the events into their
own format (`ragapi.api.routes.query`, `ragapi.api.langserve`, `ragapi.api.cli`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

from ragapi.analytics.query_log import QueryLogWriter
from ragapi.answering.admission import Admission, AdmissionStore, default_refs
from ragapi.answering.answer import Answer, AnswerEvent, Finished, Passage, Searched, Usage
from ragapi.answering.cache import AnswerCache
from ragapi.answering.log import observe, query_record, search_record
from ragapi.answering.pipeline import RagPipeline
from ragapi.answering.question import AnswerRequest, Condensing, Question
from ragapi.core import request_context, tracing
from ragapi.core.settings import Settings
from ragapi.generation.answerers import Usage as GenerationUsage
from ragapi.tenants.context import TenantContext


class AnswerService:
    def __init__(
        self,
        admissions: AdmissionStore,
        cache: AnswerCache,
        pipeline: RagPipeline,
        query_log: QueryLogWriter | None,
        settings: Settings,
        embedding_model: str,
    ) -> None:
        self.admissions = admissions
        self.cache = cache
        self.pipeline = pipeline
        self.query_log = query_log
        self.settings = settings
        self.embedding_model = embedding_model  # priced in the query log

    async def admit(self, request: AnswerRequest, queries: int = 1) -> Admission:
        """Charge `queries` (0 for one input of a batch that was charged as a whole) or raise
        QuotaExceeded, charging nothing."""
        tenant = request.tenant
        lookup = await self.cache.prefetch(tenant.tenant_id, request.question, tenant.view.fingerprint)
        with request_context.timed("admission"):
            search = lookup.search() if lookup is not None else None
            admitted = await self.admissions.admit(tenant, queries, search, request.question.knowledge_bases)
        return Admission(request, admitted.scope, lookup, admitted.nearest)

    async def charge(self, tenant: TenantContext, questions: Sequence[Question]) -> None:
        """Charge a batch of questions as a whole, or raise QuotaExceeded (NotFound when one names a
        knowledge base that is not the caller's) charging nothing, before any of them runs; each is
        then admitted with `queries=0`."""
        named = {ref for q in questions for ref in q.knowledge_bases or ()}
        if any(q.knowledge_bases is None for q in questions):
            named.update(default_refs(tenant) or ())
        await self.admissions.admit(tenant, len(questions), None, knowledge_bases=tuple(sorted(named)))

    async def search(self, request: AnswerRequest) -> Searched:
        """The question's sources without an answer (for agents that read them themselves): admitted as a
        question is (the knowledge bases named found among the caller's, one query charged), searched and
        reranked as for an answer, and logged as a question is (its passages as the sources, under the
        query id it returns); not cached (the cache keeps answers)."""
        tenant, question = request.tenant, request.question
        with request_context.timed("admission"):
            admitted = await self.admissions.admit(tenant, 1, None, question.knowledge_bases)
        started, clock = datetime.now(UTC), time.perf_counter()
        found: Searched | None = None
        error: BaseException | None = None
        try:
            retrieved = await self.pipeline.retrieve(tenant.tenant_id, question, admitted.scope.kbs, None)
            found = Searched(
                query_id=uuid.uuid4(),
                passages=[Passage.found(n, hit) for n, hit in enumerate(retrieved.hits, start=1)],
                timings_ms={**retrieved.timings_ms, "total": round((time.perf_counter() - clock) * 1000, 2)},
                usage=self.pipeline.usage(question.text, GenerationUsage()),
            )
            return found
        except BaseException as exc:
            error = exc
            raise
        finally:
            if not isinstance(error, asyncio.CancelledError):  # a client that gave up is not logged
                record = search_record(
                    request, admitted.scope.kb_ids, self.settings, self.embedding_model, started, found, error
                )
                observe(record, time.perf_counter() - clock)
                if self.query_log is not None:
                    self.query_log.submit(record)

    async def ask(self, request: AnswerRequest) -> Answer:
        """Admit and answer at once: the whole answer."""
        return await final(self.answer(await self.admit(request)))

    async def answer(self, admission: Admission) -> AsyncIterator[AnswerEvent]:
        """The answer's events, inside the query's root span; logged and measured once when they end (a
        stream the client gave up on is neither)."""
        request = admission.request
        started, clock = datetime.now(UTC), time.perf_counter()
        answer: Answer | None = None
        error: BaseException | None = None
        attributes = {"tenant": str(request.tenant.tenant_id), "surface": request.surface.value}
        with tracing.root_stage("rag.query", attributes) as span:
            try:
                async for event in tracing.in_span(span, self._events(admission)):
                    if isinstance(event, Finished):
                        if request.condensing is not None:  # added after the cache kept the answer: a later
                            # hit is charged only its own question's condensing
                            event = Finished(with_condensing(event.answer, request.condensing))
                        answer = event.answer
                    yield event
            except BaseException as exc:
                error = exc
                raise
            finally:
                if not isinstance(error, asyncio.CancelledError | GeneratorExit):
                    record = query_record(
                        request, admission.scope.kb_ids, self.settings, self.embedding_model, started, answer, error
                    )
                    observe(record, time.perf_counter() - clock)
                    span.set_attributes(
                        {
                            "cache": record["cache"],
                            "status": record["status"],
                            "sources": record["sources"],
                            "prompt_tokens": record["prompt_tokens"],
                            "completion_tokens": record["completion_tokens"],
                            "cost_usd": record["cost_usd"],
                        }
                    )
                    if self.query_log is not None:
                        self.query_log.submit(record)

    async def _events(self, admission: Admission) -> AsyncIterator[AnswerEvent]:
        request, scope = admission.request, admission.scope
        tenant_id, question = request.tenant.tenant_id, request.question
        embedded = admission.lookup.embedded if admission.lookup is not None else None
        if not (self.cache.serves(question) and scope.enabled):
            async for event in self.pipeline.run(tenant_id, question, scope.kbs, embedded):
                yield event
            return
        found = await self.cache.find(
            tenant_id,
            question,
            scope,
            admission.lookup,
            admission.nearest,
            time.perf_counter(),
            request.tenant.view.fingerprint,
        )
        if found.answer is not None:
            yield Finished(found.answer)
            return
        async for event in self.pipeline.run(tenant_id, question, scope.kbs, found.embedded):
            if isinstance(event, Finished):
                self.cache.keep(tenant_id, scope, found, question, event.answer)
            yield event


def with_condensing(answer: Answer, spent: Condensing) -> Answer:
    """The answer with the tokens condensing its follow-up question cost in its usage (a cache hit's usage
    is then those tokens alone)."""
    usage = answer.usage or Usage()
    return answer.model_copy(
        update={
            "usage": Usage(
                prompt_tokens=usage.prompt_tokens + spent.prompt_tokens,
                completion_tokens=usage.completion_tokens + spent.completion_tokens,
                embedding_tokens=usage.embedding_tokens,
                estimated=usage.estimated or spent.estimated,
            )
        }
    )


async def final(events: AsyncIterator[AnswerEvent]) -> Answer:
    """The answer an event stream ends with."""
    answer: Answer | None = None
    async for event in events:
        if isinstance(event, Finished):
            answer = event.answer
    if answer is None:
        raise RuntimeError("an answer stream ended without its answer")
    return answer
