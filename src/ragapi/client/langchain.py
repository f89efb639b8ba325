"""`RagApiRetriever`: the service's search (POST /v1/search) as a LangChain retriever, for chains and agents
in other applications. Each passage is a Document: its whole text, with its citation in the metadata.

    retriever = RagApiRetriever(base_url="http://127.0.0.1:8000", api_key="rag_...", top_k=4)
    chain = {"context": retriever, "question": RunnablePassthrough()} | prompt | llm
"""

from __future__ import annotations

from typing import Any

import httpx
from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr

from ragapi.answering.answer import Passage
from ragapi.client._async import AsyncClient
from ragapi.client._base import RetryPolicy
from ragapi.client._sync import Client


def passage_document(passage: Passage) -> Document:
    return Document(
        page_content=passage.text,
        id=str(passage.chunk_id),
        metadata={
            "n": passage.n,
            "chunk_id": str(passage.chunk_id),
            "document_id": str(passage.document_id),
            "title": passage.title,
            "score": passage.score,
            "page": passage.page,
        },
    )


class RagApiRetriever(BaseRetriever):
    """Passages from a running service: its hybrid search, reranking and knowledge-base settings, scoped to
    the key's tenant and knowledge bases. The URL and key default to RAGAPI_URL and RAGAPI_API_KEY."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    base_url: str | None = None
    api_key: SecretStr | None = None
    token: SecretStr | None = Field(default=None, description="A user's access token, instead of a key")
    knowledge_bases: list[str] | None = Field(default=None, description="Ids or names; none: the default one")
    top_k: int | None = Field(default=None, ge=1, description="None: the knowledge base's own default")
    filters: dict[str, Any] | None = None
    timeout_s: float = 60.0
    retry: RetryPolicy = Field(default_factory=RetryPolicy)

    _client: Client | None = PrivateAttr(default=None)

    def _credentials(self) -> dict[str, Any]:
        return {
            "api_key": self.api_key.get_secret_value() if self.api_key else None,
            "token": self.token.get_secret_value() if self.token else None,
            "timeout": httpx.Timeout(self.timeout_s),
            "retry": self.retry,
        }

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,  # noqa: ARG002 - LangChain passes it
    ) -> list[Document]:
        if self._client is None:
            self._client = Client(self.base_url, **self._credentials())
        found = self._client.search(query, knowledge_bases=self.knowledge_bases, top_k=self.top_k, filters=self.filters)
        return [passage_document(p) for p in found.passages]

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,  # noqa: ARG002 - LangChain passes it
    ) -> list[Document]:
        # A client per call: an httpx.AsyncClient's connections belong to the event loop that opened them.
        async with AsyncClient(self.base_url, **self._credentials()) as client:
            found = await client.search(
                query, knowledge_bases=self.knowledge_bases, top_k=self.top_k, filters=self.filters
            )
        return [passage_document(p) for p in found.passages]
