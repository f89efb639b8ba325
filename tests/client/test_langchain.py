"""`RagApiRetriever` inside LangChain chains against `ragapi serve`: sync, async and batched, scoped to the
key's tenant."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

from ragapi.client import Client
from ragapi.client.langchain import RagApiRetriever
from tests.conftest import Served

pytestmark = pytest.mark.slow

PROMPT = ChatPromptTemplate.from_messages([("system", "Answer from:\n{context}"), ("human", "{question}")])


def joined(documents: list[Document]) -> str:
    return "\n".join(f"[{d.metadata['n']}] {d.page_content}" for d in documents)


async def test_the_retriever_feeds_a_chain(served: Served) -> None:
    tenant = served.tenant("sdk-langchain")
    with Client(served.url, api_key=tenant.api_key) as rag:
        rag.ingest_documents(
            [
                {"text": "The Helios cluster runs Kubernetes 1.31 in three zones.", "metadata": {"team": "infra"}},
                {"text": "Expense reports are due on the fifth of each month.", "metadata": {"team": "finance"}},
            ]
        )
    retriever = RagApiRetriever(base_url=served.url, api_key=tenant.api_key, top_k=1)
    chain = (
        {"context": retriever | RunnableLambda(joined), "question": RunnablePassthrough()}
        | PROMPT
        | RunnableLambda(lambda prompt: prompt.to_string())
    )
    prompt = chain.invoke("Which Kubernetes version does Helios run?")
    assert "[1] The Helios cluster runs Kubernetes 1.31 in three zones." in prompt
    assert "Expense" not in prompt  # top_k=1

    later = await chain.ainvoke("When are expense reports due?")
    assert "[1] Expense reports are due on the fifth of each month." in later

    (docs,) = retriever.batch(["Helios"])
    assert docs[0].page_content.startswith("The Helios cluster") and docs[0].metadata["n"] == 1
    assert docs[0].metadata["title"] and docs[0].id == docs[0].metadata["chunk_id"]
    filtered = RagApiRetriever(base_url=served.url, api_key=tenant.api_key, filters={"team": "finance"})
    assert [d.page_content[:7] for d in await filtered.ainvoke("Helios cluster")] == ["Expense"]

    stranger = RagApiRetriever(base_url=served.url, api_key=served.tenant("sdk-langchain-other").api_key)
    assert stranger.invoke("Which Kubernetes version does Helios run?") == []
    assert await stranger.ainvoke("expense reports") == []
