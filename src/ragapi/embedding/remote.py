"""Embedding APIs: OpenAI's and Cohere's (or a server speaking either's API), built from settings.

Their LangChain clients name their model but not the length of its vectors, which depends on the model
(and, behind a compatible server, on that server): `RemoteEmbeddings` asks once, when first needed, so
building one makes no request.
"""

from __future__ import annotations

from functools import cached_property

from langchain_core.embeddings import Embeddings

from ragapi.core.settings import Settings
from ragapi.embedding.embedder import Embedder


class RemoteEmbeddings(Embedder):
    """A LangChain client of an embedding API, with its model's identity."""

    def __init__(self, client: Embeddings, model_name: str) -> None:
        self.client = client
        self._model_name = model_name

    @property
    def model_name(self) -> str:
        return self._model_name

    @cached_property
    def dimension(self) -> int:  # one request, once per embedder
        return len(self.client.embed_query("dimension probe"))

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.client.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.client.embed_query(text)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await self.client.aembed_documents(texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await self.client.aembed_query(text)


def openai_embeddings(settings: Settings) -> RemoteEmbeddings:
    """EMBEDDING_PROVIDER=openai: EMBEDDING_MODEL (text-embedding-3-small) at OPENAI_BASE_URL."""
    from langchain_openai import OpenAIEmbeddings

    if settings.openai_api_key is None:
        raise ValueError("EMBEDDING_PROVIDER=openai needs OPENAI_API_KEY")
    model = settings.embedding_model or "text-embedding-3-small"
    client = OpenAIEmbeddings(
        model=model,
        openai_api_key=settings.openai_api_key,
        openai_api_base=settings.openai_base_url,
        # tiktoken would fetch its vocabulary from the internet; chunks are already token-bounded
        check_embedding_ctx_length=False,
    )
    return RemoteEmbeddings(client, model)


def cohere_embeddings(settings: Settings) -> RemoteEmbeddings:
    """EMBEDDING_PROVIDER=cohere: EMBEDDING_MODEL (embed-english-v3.0) at COHERE_BASE_URL."""
    from langchain_cohere import CohereEmbeddings

    if settings.cohere_api_key is None:
        raise ValueError("EMBEDDING_PROVIDER=cohere needs COHERE_API_KEY")
    model = settings.embedding_model or "embed-english-v3.0"
    client = CohereEmbeddings(  # type: ignore[call-arg]
        model=model,
        # the key itself: the client's validator takes str() of a SecretStr, which is its mask
        cohere_api_key=settings.cohere_api_key.get_secret_value(),
        base_url=settings.cohere_base_url,
    )
    return RemoteEmbeddings(client, model)
