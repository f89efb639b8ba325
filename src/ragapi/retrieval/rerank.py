"""Rerankers behind one small interface: Cohere Rerank, a local fastembed cross-encoder, or none."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, Protocol

from ragapi.core.errors import UpstreamError
from ragapi.core.metrics import PROVIDER_ERRORS
from ragapi.core.settings import Reranker as RerankerKind
from ragapi.core.settings import Settings
from ragapi.retrieval.chunks import Hit


class Reranker(Protocol):
    name: str

    async def rerank(self, query: str, hits: list[Hit], top_n: int) -> list[Hit]: ...


class NoReranker:
    """Keeps the fused order; the default offline."""

    name = "none"

    async def rerank(self, query: str, hits: list[Hit], top_n: int) -> list[Hit]:  # noqa: ARG002
        return hits[:top_n]


class CohereReranker:
    """Cohere Rerank through langchain-cohere; the relevance score replaces the fused score."""

    def __init__(self, api_key: str, model: str, base_url: str | None = None) -> None:
        from langchain_cohere import CohereRerank

        self.name = f"cohere:{model}"
        self._client: Any = CohereRerank(cohere_api_key=api_key, model=model, base_url=base_url)  # type: ignore[arg-type]

    async def rerank(self, query: str, hits: list[Hit], top_n: int) -> list[Hit]:
        if not hits:
            return []
        try:
            ranked = await asyncio.to_thread(
                self._client.rerank, [h.text for h in hits], query, top_n=min(top_n, len(hits))
            )
        except Exception as exc:  # cohere.core.ApiError, httpx errors
            PROVIDER_ERRORS.labels("cohere").inc()
            raise UpstreamError(f"reranker failed: {type(exc).__name__}") from exc
        return [replace(hits[r["index"]], score=float(r["relevance_score"])) for r in ranked]


class FastEmbedReranker:
    """A local cross-encoder (e.g. Xenova/ms-marco-MiniLM-L-6-v2) run by fastembed on ONNX."""

    def __init__(self, model: str, model_path: str | None = None, threads: int = 0) -> None:
        try:
            from fastembed.rerank.cross_encoder import TextCrossEncoder
        except ImportError as exc:  # optional extra
            raise RuntimeError("RERANKER=fastembed needs the 'fastembed' extra: uv sync --extra fastembed") from exc
        self.name = f"fastembed:{model}"
        kwargs: dict[str, Any] = {"threads": threads or None}
        if model_path:
            kwargs["specific_model_path"] = model_path
        self._encoder = TextCrossEncoder(model_name=model, **kwargs)

    async def rerank(self, query: str, hits: list[Hit], top_n: int) -> list[Hit]:
        if not hits:
            return []
        scores = await asyncio.to_thread(lambda: list(self._encoder.rerank(query, [h.text for h in hits])))
        order = sorted(range(len(hits)), key=lambda i: scores[i], reverse=True)[:top_n]
        return [replace(hits[i], score=float(scores[i])) for i in order]


def build_reranker(settings: Settings) -> Reranker:
    kind = settings.effective_reranker
    if kind is RerankerKind.COHERE:
        if settings.cohere_api_key is None:
            raise ValueError("RERANKER=cohere needs COHERE_API_KEY")
        return CohereReranker(
            settings.cohere_api_key.get_secret_value(), settings.cohere_rerank_model, settings.cohere_base_url
        )
    if kind is RerankerKind.FASTEMBED:
        if not settings.reranker_model:
            raise ValueError("RERANKER=fastembed needs RERANKER_MODEL")
        path = str(settings.embedding_model_path) if settings.embedding_model_path else None
        return FastEmbedReranker(settings.reranker_model, path, settings.embedding_threads)
    return NoReranker()
