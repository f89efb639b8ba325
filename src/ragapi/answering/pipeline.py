"""Answering a question that no cached answer serves: retrieve (dense + BM25, fused, over the knowledge
bases admission found) → rerank → generate (prompt → LLM, or quoted sentences, always cited), streamed as
answer events.

The first knowledge base a question names decides what is a knowledge base's own setting: its `top_k`
default, its fusion weight, reranking on or off, and the answer mode."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.embeddings import Embeddings

from ragapi.answering.answer import Answer, AnswerEvent, Citation, Finished, Sources, Token, Usage
from ragapi.answering.question import Question
from ragapi.core.metrics import TIME_TO_FIRST_TOKEN
from ragapi.core.settings import Settings
from ragapi.core.tracing import in_span, stage
from ragapi.embedding import embedding_identity
from ragapi.generation.answerers import PROMPT_VERSION, Answerer, estimate_tokens
from ragapi.generation.answerers import Usage as GenerationUsage
from ragapi.generation.extractive import EXTRACTIVE_SELECTION
from ragapi.retrieval.chunks import Hit
from ragapi.retrieval.hybrid import EmbeddedQuery, HybridSearch
from ragapi.retrieval.knowledge_bases import KnowledgeBase, KnowledgeBaseSettings
from ragapi.retrieval.rerank import NoReranker, Reranker


@dataclass(frozen=True, slots=True)
class Retrieved:
    hits: list[Hit]  # ranked, the best first
    timings_ms: dict[str, float]  # embed (when it embedded the question), retrieve, rerank


class RagPipeline:
    def __init__(
        self,
        search: HybridSearch,
        reranker: Reranker,
        answerer: Answerer,
        embeddings: Embeddings,
        settings: Settings,
        extractive: Answerer | None = None,
    ) -> None:
        """`answerer`: the service's; `extractive`: for knowledge bases whose answer mode is extractive
        when the service's is an LLM."""
        self.search = search
        self.reranker = reranker
        self.answerer = answerer
        self.extractive = extractive or answerer
        self.embeddings = embeddings
        self.settings = settings

    def fingerprint(self) -> dict[str, Any]:
        """Everything besides the question that changes an answer (it partitions the answer cache)."""
        s = self.settings
        return {
            "answerer": [
                self.answerer.mode,
                self.answerer.model,
                self.extractive.mode,
                PROMPT_VERSION,
                EXTRACTIVE_SELECTION,
                s.extractive_sentences,
                s.extractive_margin,
                s.extractive_candidates,
            ],
            "reranker": getattr(self.reranker, "name", "none"),
            "embedding": embedding_identity(self.embeddings)[0],
            "retrieval": [s.fusion.value, s.fusion_dense_weight, s.rrf_k, s.retrieval_candidates, s.bm25_k1, s.bm25_b],
            "chunking": [s.chunk_size_tokens, s.chunk_overlap_tokens],
        }

    async def retrieve(
        self,
        tenant_id: uuid.UUID,
        question: Question,
        kbs: Sequence[KnowledgeBase] | None,
        embedded: EmbeddedQuery | None,
    ) -> Retrieved:
        """The question's sources, ranked: searched over `kbs` as admission read them (None: the tenant's
        default, read now) and reranked; `embedded`: the question's embedding if the cache lookup made one."""
        own = kbs[0].settings if kbs else KnowledgeBaseSettings()
        top_k = question.top_k or own.top_k or self.settings.default_top_k
        reranker = NoReranker() if own.rerank is False else self.reranker
        reranking = not isinstance(reranker, NoReranker)
        depth = max(top_k, self.settings.rerank_candidates) if reranking else top_k
        with stage(
            "retrieve", tenant=tenant_id, top_k=top_k, depth=depth, filters=bool(question.filters), kbs=len(kbs or ())
        ) as retrieval:
            searched = await self.search.search(
                tenant_id, question.text, depth, question.filters, kbs, embedded, dense_weight=own.fusion_dense_weight
            )
            retrieval.set(hits=len(searched.hits))
        timings = {"retrieve": retrieval.ms}
        embed_ms = embedded.ms if embedded is not None else searched.embed_ms
        if embed_ms is not None:
            timings["embed"] = embed_ms
        with stage("rerank", reranker=getattr(reranker, "name", "none"), candidates=len(searched.hits)) as ranking:
            hits = await reranker.rerank(question.text, searched.hits, top_k)
            ranking.set(hits=len(hits))
        timings["rerank"] = ranking.ms
        return Retrieved(hits, timings)

    async def run(
        self,
        tenant_id: uuid.UUID,
        question: Question,
        kbs: Sequence[KnowledgeBase] | None,
        embedded: EmbeddedQuery | None,
    ) -> AsyncIterator[AnswerEvent]:
        """`retrieve`, then the answer written from the sources (by the first knowledge base's answer mode)."""
        started = time.perf_counter()
        own = kbs[0].settings if kbs else KnowledgeBaseSettings()
        answerer = self.extractive if own.answer_mode == "extractive" else self.answerer
        retrieved = await self.retrieve(tenant_id, question, kbs, embedded)
        hits, timings = retrieved.hits, retrieved.timings_ms
        query_id = uuid.uuid4()
        citations = [Citation.of(n, hit) for n, hit in enumerate(hits, start=1)]
        yield Sources(query_id, citations, answerer.mode, answerer.model)
        generated = GenerationUsage()
        pieces: list[str] = []
        with stage(
            "generate", streaming=True, mode=answerer.mode, model=answerer.model, sources=len(hits)
        ) as generation:
            async for piece in in_span(generation.span, answerer.astream(question.text, hits, generated)):
                if not pieces:
                    TIME_TO_FIRST_TOKEN.labels("none").observe(time.perf_counter() - started)
                pieces.append(piece)
                yield Token(piece)
            generation.set(prompt_tokens=generated.prompt_tokens, completion_tokens=generated.completion_tokens)
        timings["generate"] = generation.ms
        timings["total"] = round((time.perf_counter() - started) * 1000, 2)
        yield Finished(
            Answer(
                query_id=query_id,
                answer="".join(pieces),
                mode=answerer.mode,
                model=answerer.model,
                citations=citations,
                cached=False,
                timings_ms=timings,
                usage=self.usage(question.text, generated),
            )
        )

    def usage(self, query: str, generated: GenerationUsage) -> Usage:
        count = getattr(self.embeddings, "count_tokens", None)
        return Usage(
            prompt_tokens=generated.prompt_tokens,
            completion_tokens=generated.completion_tokens,
            embedding_tokens=count(query) if count is not None else estimate_tokens(query),
            estimated=generated.estimated or count is None,
        )
