"""Re-embedding after an embedding-model change: the old vectors serve until the new ones are complete,
documents arriving meanwhile are included, and the switch is one commit. The new model is a real
`OpenAIEmbeddings` client against a loopback server speaking the documented `/v1/embeddings` format."""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import threading
from collections.abc import Iterator

import pytest
from langchain_openai import OpenAIEmbeddings
from pydantic import SecretStr
from sqlalchemy import text

from ragapi.api.state import AppState
from ragapi.core.errors import InvalidInput
from ragapi.ingestion.pipeline import IngestItem, IngestPipeline
from ragapi.ingestion.reembed import reembed
from ragapi.retrieval import knowledge_bases
from ragapi.retrieval.hybrid import HybridRetriever
from tests.conftest import TenantHandle
from tests.wire import Recorded, Reply, WireServer, wire_server

DIM = 64


def bag_of_words(text_: str) -> list[float]:
    """A deterministic stand-in for a remote model: hashed word counts, unit length."""
    vector = [0.0] * DIM
    for word in re.findall(r"[a-z]+", text_.lower()):
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIM] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


@pytest.fixture
def new_model() -> Iterator[tuple[OpenAIEmbeddings, WireServer, threading.Event]]:
    """The second batch of two documents waits until the test lets it go, so the test can act mid-run."""
    release = threading.Event()
    batches = []

    def respond(request: Recorded) -> Reply:
        if len(request.body["input"]) == 2:
            batches.append(request)
            if len(batches) == 2:
                release.wait(30)
        data = [
            {"object": "embedding", "index": i, "embedding": bag_of_words(t)}
            for i, t in enumerate(request.body["input"])
        ]
        return Reply(body={"object": "list", "data": data, "model": "text-embedding-3-small", "usage": {}})

    with wire_server(respond) as server:
        embeddings = OpenAIEmbeddings(
            model="text-embedding-3-small",
            api_key=SecretStr("sk-test"),
            base_url=server.url + "/v1",
            check_embedding_ctx_length=False,
        )
        yield embeddings, server, release
        release.set()


def retriever(state: AppState, tenant: TenantHandle, embeddings: OpenAIEmbeddings | None = None) -> HybridRetriever:
    return HybridRetriever(
        db=state.db,
        embeddings=embeddings or state.embeddings,
        settings=state.settings,
        tenant_id=tenant.tenant_id,
        k=3,
        indexes=state.indexes,
    )


async def test_old_vectors_serve_until_the_switch(
    app_state: AppState, tenant: TenantHandle, new_model: tuple[OpenAIEmbeddings, WireServer, threading.Event]
) -> None:
    embeddings, server, release = new_model
    facts = [
        "The boiler room is in the basement behind the laundry.",
        "Parking permits are issued by the front desk on Mondays.",
        "The cafeteria serves lunch from noon until two.",
        "Visitors sign in at the security gate with photo identification.",
    ]
    await app_state.pipeline.run(tenant.tenant_id, [IngestItem(f.encode(), f"f{n}.txt") for n, f in enumerate(facts)])
    # The service now runs with the new model; this knowledge base has not been re-embedded yet.
    upgraded = IngestPipeline(app_state.db, embeddings, app_state.settings, app_state.indexes)
    hits = await retriever(app_state, tenant, embeddings).search("where is the boiler room")
    assert hits[0].text.startswith("The boiler room"), "served with its own (old) model"

    run = asyncio.create_task(reembed(app_state.db, embeddings, tenant.tenant_id, batch=2))
    while sum(len(r.body["input"]) == 2 for r in server.requests) < 2:  # noqa: ASYNC110 - a server thread
        await asyncio.sleep(0.01)  # the first batch is stored, the second is in flight
    late = await upgraded.run(tenant.tenant_id, [IngestItem(b"The library closes at nine on weekdays.", "late.txt")])
    assert late.status == "succeeded", "ingestion goes on during a re-embed"
    hits = await retriever(app_state, tenant, embeddings).search("parking permits front desk")
    assert hits[0].text.startswith("Parking permits")
    async with app_state.db.tenant_session(tenant.tenant_id) as session:
        kb = await knowledge_bases.get(session, tenant.tenant_id)
    assert kb is not None and kb.embedding_model == "all-MiniLM-L6-v2-int8" and kb.embedding_dim == 384
    release.set()
    report = await run

    assert (report.previous_model, report.model, report.dim, report.chunks) == (
        "all-MiniLM-L6-v2-int8",
        "text-embedding-3-small",
        DIM,
        5,
    )
    async with app_state.db.tenant_session(tenant.tenant_id) as session:
        after = await knowledge_bases.get(session, tenant.tenant_id)
        rows = (
            await session.execute(
                text("SELECT embedding_model, embedding_dim, embedding_next IS NULL AS cleared FROM chunks")
            )
        ).all()
    assert after is not None and (after.embedding_model, after.embedding_dim) == ("text-embedding-3-small", DIM)
    assert after.version > kb.version, "cached answers of the old model are not served"
    assert {(r.embedding_model, r.embedding_dim, r.cleared) for r in rows} == {("text-embedding-3-small", DIM, True)}
    assert len(rows) == 5
    hits = await retriever(app_state, tenant, embeddings).search("library closes weekdays")
    assert hits[0].text.startswith("The library closes")
    # A process that cannot embed with the new model says so instead of mixing vector spaces.
    with pytest.raises(InvalidInput, match="re-embed"):
        await retriever(app_state, tenant).search("library")
    again = await reembed(app_state.db, embeddings, tenant.tenant_id)
    assert again.chunks == 0


async def test_only_pgvector_knowledge_bases_are_re_embedded(
    app_state: AppState, tenant: TenantHandle, new_model: tuple[OpenAIEmbeddings, WireServer, threading.Event]
) -> None:
    embeddings, _, _ = new_model
    with pytest.raises(Exception, match="no such knowledge base"):
        await reembed(app_state.db, embeddings, tenant.tenant_id)
    await app_state.pipeline.run(tenant.tenant_id, [IngestItem(b"Some fact.", "f.txt")])
    async with app_state.db.admin_session() as session:
        await session.execute(
            text("UPDATE knowledge_bases SET vector_backend = 'pinecone' WHERE tenant_id = :t"), {"t": tenant.tenant_id}
        )
    with pytest.raises(InvalidInput, match="vectors migrate"):
        await reembed(app_state.db, embeddings, tenant.tenant_id)
