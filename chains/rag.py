"""The RAG chain as LCEL runnables: retrieve (dense + BM25, fused) → rerank → answer (prompt → LLM, cited).

The chain streams partial response objects (`AddableDict`s) that add up to the full answer:

    {query_id, citations, mode, model, answer: ""}   sources are known
    {answer: "..."}                                    one per generated piece
    {cached: false, timings_ms: {...}, usage: {...}}    the end (usage: tokens of this answer)

So `ainvoke` returns the merged `/v1/query` response and `astream` feeds SSE and LangServe streaming.
The tenant comes only from `config["configurable"]["tenant_id"]`, which the API sets from the verified
credential; the chain refuses to run without it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.runnables import Runnable, RunnableConfig, RunnableGenerator, RunnableLambda
from langchain_core.runnables.utils import AddableDict
from pydantic import BaseModel

from chains.filters import validate_filters
from chains.generate import Answerer, Usage, estimate_tokens
from chains.index import Hit
from chains.rerank import NoReranker, Reranker
from chains.retriever import HybridRetriever
from core.database import Database
from core.errors import InvalidInput, Unauthenticated
from core.metrics import TIME_TO_FIRST_TOKEN
from core.settings import Settings
from core.tracing import in_span, stage

TENANT_KEY = "tenant_id"
EMBEDDED_QUERY_KEY = "embedded_query"  # an EmbeddedQuery with the service's model, when a caller already made it
KNOWLEDGE_BASE_KEY = "knowledge_base"  # the tenant's KnowledgeBase, when a caller already read it
SNIPPET_CHARS = 300


def citation(n: int, hit: Hit) -> dict[str, Any]:
    out = {
        "n": n,
        "document_id": str(hit.document_id),
        "chunk_id": str(hit.chunk_id),
        "title": hit.title,
        "snippet": hit.text[:SNIPPET_CHARS],
        "score": round(hit.score, 6),
    }
    if "page" in hit.metadata:
        out["page"] = hit.metadata["page"]
    return out


def configured(config: RunnableConfig | None, key: str) -> Any:
    return ((config or {}).get("configurable") or {}).get(key)


def tenant_from_config(config: RunnableConfig | None) -> uuid.UUID:
    value = configured(config, TENANT_KEY)
    if not value:
        raise Unauthenticated("the RAG chain runs only inside a tenant scope")
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


@dataclass
class RagChain:
    db: Database
    embeddings: Embeddings
    reranker: Reranker
    answerer: Answerer
    settings: Settings
    indexes: dict[str, Any] | None = None  # backend name -> VectorIndex

    def parse_input(self, data: Any) -> tuple[str, int, dict[str, Any]]:
        if isinstance(data, BaseModel):
            data = data.model_dump()
        if isinstance(data, str):
            data = {"query": data}
        if not isinstance(data, dict):
            raise InvalidInput("input must be an object with a 'query'")
        query = str(data.get("query") or "").strip()
        if not query:
            raise InvalidInput("query must not be empty")
        if len(query) > self.settings.max_query_chars:
            raise InvalidInput(f"query is longer than {self.settings.max_query_chars} characters")
        top_k = data.get("top_k") or self.settings.default_top_k
        if not isinstance(top_k, int) or not 1 <= top_k <= self.settings.max_top_k:
            raise InvalidInput(f"top_k must be an integer from 1 to {self.settings.max_top_k}")
        return query, top_k, validate_filters(data.get("filters"))

    async def retrieve(self, data: Any, config: RunnableConfig) -> dict[str, Any]:
        tenant_id = tenant_from_config(config)
        query, top_k, filters = self.parse_input(data)
        reranking = not isinstance(self.reranker, NoReranker)
        depth = max(top_k, self.settings.rerank_candidates) if reranking else top_k
        started = time.perf_counter()
        retriever = HybridRetriever(
            db=self.db,
            embeddings=self.embeddings,
            settings=self.settings,
            tenant_id=tenant_id,
            k=depth,
            filters=filters,
            indexes=self.indexes,
        )
        with stage("retrieve", tenant=tenant_id, top_k=top_k, depth=depth, filters=bool(filters)) as retrieval:
            hits = await retriever.search(
                query, embedded=configured(config, EMBEDDED_QUERY_KEY), kb=configured(config, KNOWLEDGE_BASE_KEY)
            )
            retrieval.set(hits=len(hits))
        timings = {"retrieve": retrieval.ms}
        if "embed" in retriever.timings:
            timings["embed"] = retriever.timings["embed"]
        return {
            "query_id": str(uuid.uuid4()),
            "query": query,
            "top_k": top_k,
            "hits": hits,
            "started": started,
            "timings_ms": timings,
        }

    async def rerank(self, state: dict[str, Any]) -> dict[str, Any]:
        with stage("rerank", reranker=getattr(self.reranker, "name", "none"), candidates=len(state["hits"])) as ranking:
            hits = await self.reranker.rerank(state["query"], state["hits"], state["top_k"])
            ranking.set(hits=len(hits))
        timings = {**state["timings_ms"], "rerank": ranking.ms}
        return {**state, "hits": hits, "timings_ms": timings}

    async def answer(self, states: AsyncIterator[dict[str, Any]]) -> AsyncIterator[AddableDict]:
        async for state in states:
            hits: list[Hit] = state["hits"]
            yield AddableDict(
                query_id=state["query_id"],
                citations=[citation(n, h) for n, h in enumerate(hits, start=1)],
                mode=self.answerer.mode,
                model=self.answerer.model,
                answer="",
            )
            usage = Usage()
            first = True
            with stage(
                "generate", streaming=True, mode=self.answerer.mode, model=self.answerer.model, sources=len(hits)
            ) as generation:
                async for piece in in_span(generation.span, self.answerer.astream(state["query"], hits, usage)):
                    if first:
                        TIME_TO_FIRST_TOKEN.labels("none").observe(time.perf_counter() - state["started"])
                        first = False
                    yield AddableDict(answer=piece)
                generation.set(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens)
            timings = dict(state["timings_ms"])
            timings["generate"] = generation.ms
            timings["total"] = round((time.perf_counter() - state["started"]) * 1000, 2)
            yield AddableDict(cached=False, timings_ms=timings, usage=self.usage(state["query"], usage))

    def usage(self, query: str, usage: Usage) -> dict[str, Any]:
        count = getattr(self.embeddings, "count_tokens", None)
        embedding_tokens = count(query) if count is not None else estimate_tokens(query)
        return {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "embedding_tokens": embedding_tokens,
            "estimated": usage.estimated or count is None,
        }

    def runnable(self) -> Runnable[Any, Any]:
        return self._runnable

    @cached_property
    def _runnable(self) -> Runnable[Any, Any]:
        return rag_runnable(lambda: self)


def rag_runnable(resolve: Callable[[], RagChain]) -> Runnable[Any, Any]:
    """The chain, resolving its components at call time (LangServe routes exist before start-up ends)."""

    async def retrieve(data: Any, config: RunnableConfig) -> dict[str, Any]:
        return await resolve().retrieve(data, config)

    async def rerank(state: dict[str, Any]) -> dict[str, Any]:
        return await resolve().rerank(state)

    async def answer(states: AsyncIterator[dict[str, Any]]) -> AsyncIterator[AddableDict]:
        async for chunk in resolve().answer(states):
            yield chunk

    chain = (
        RunnableLambda(retrieve, name="retrieve")
        | RunnableLambda(rerank, name="rerank")
        | RunnableGenerator(answer, name="answer")
    )
    return chain.with_config(run_name="rag")
