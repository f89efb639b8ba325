"""The embedders a process uses, chosen by settings: for queries (`build_embeddings`), for ingestion
(`ingestion_embeddings`), and for a knowledge base indexed with an earlier model (`embedder_for`)."""

from __future__ import annotations

from typing import Any

from langchain_core.embeddings import Embeddings

from ragapi.core.settings import EmbeddingProvider, Settings
from ragapi.embedding.bundled import OnnxMiniLMEmbeddings
from ragapi.embedding.embedder import Embedder, embedding_identity
from ragapi.embedding.fastembed import FastEmbedEmbeddings
from ragapi.embedding.priority import LowPriorityEmbeddings
from ragapi.embedding.remote import cohere_embeddings, openai_embeddings
from ragapi.minilm import ONNX_MODEL_NAME


def build_embeddings(settings: Settings) -> Embedder:
    provider = settings.embedding_provider
    if provider is EmbeddingProvider.ONNX:
        if settings.embedding_model not in ("", ONNX_MODEL_NAME):
            raise ValueError(f"the onnx provider only ships {ONNX_MODEL_NAME}; use EMBEDDING_PROVIDER=fastembed")
        return OnnxMiniLMEmbeddings(**_bundled_query_options(settings))
    if provider is EmbeddingProvider.FASTEMBED:
        return FastEmbedEmbeddings(
            settings.embedding_model or "BAAI/bge-small-en-v1.5",
            str(settings.embedding_model_path) if settings.embedding_model_path else None,
            settings.embedding_threads,
            settings.embedding_batch_size,
        )
    if provider is EmbeddingProvider.OPENAI:
        return openai_embeddings(settings)
    return cohere_embeddings(settings)


def ingestion_embeddings(settings: Settings, embeddings: Embedder) -> Embedder:
    """What ingestion embeds with: the bundled local model at INGEST_NICE, or the service's own
    embedder (a remote provider costs this machine no CPU worth yielding)."""
    if not isinstance(embeddings, OnnxMiniLMEmbeddings) or settings.ingest_nice == 0:
        return embeddings
    return LowPriorityEmbeddings(
        lambda: OnnxMiniLMEmbeddings(
            threads=settings.embedding_threads,
            batch_size=settings.embedding_batch_size,
            int8_matmul=settings.embedding_int8_matmul,
        ),
        settings.ingest_nice,
    )


_BUNDLED: dict[tuple[tuple[str, Any], ...], OnnxMiniLMEmbeddings] = {}


def embedder_for(model: str, configured: Embeddings, settings: Settings) -> Embeddings | None:
    """The embedder for a knowledge base indexed with `model`: the configured one, or the bundled ONNX
    model (always available offline) for knowledge bases not yet re-embedded after a model change.
    None when this process cannot embed with `model`."""
    if embedding_identity(configured)[0] == model:
        return configured
    if model != ONNX_MODEL_NAME:
        return None
    options = _bundled_query_options(settings)
    key = tuple(sorted(options.items()))
    if key not in _BUNDLED:
        _BUNDLED[key] = OnnxMiniLMEmbeddings(**options)
    return _BUNDLED[key]


def _bundled_query_options(settings: Settings) -> dict[str, Any]:
    """The bundled model as the API embeds queries with it: threads, priority, concurrency, inlining."""
    return {
        "threads": settings.embedding_threads,
        "batch_size": settings.embedding_batch_size,
        "nice": settings.query_embedding_nice,
        "int8_matmul": settings.embedding_int8_matmul,
        "concurrency": settings.query_embedding_concurrency,
        "inline_tokens": settings.query_embedding_inline_tokens,
        "inline_ms": settings.query_embedding_inline_ms,
    }
