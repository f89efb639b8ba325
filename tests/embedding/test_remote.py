"""Embedding APIs, against loopback servers speaking their documented wire formats."""

from __future__ import annotations

import base64

import numpy as np

from ragapi.embedding import build_embeddings, embedding_identity
from tests.conftest import make_settings
from tests.wire import Recorded, Reply, wire_server


def test_openai_embeddings_on_the_wire(tmp_path) -> None:  # type: ignore[no-untyped-def]
    def respond(request: Recorded) -> Reply:
        vectors = [[float(i), 0.5, -1.0] for i, _ in enumerate(request.body["input"])]
        encoded = request.body.get("encoding_format") == "base64"
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": base64.b64encode(np.asarray(v, dtype=np.float32).tobytes()).decode() if encoded else v,
            }
            for i, v in enumerate(vectors)
        ]
        usage = {"prompt_tokens": 4, "total_tokens": 4}
        return Reply(body={"object": "list", "data": data, "model": request.body["model"], "usage": usage})

    with wire_server(respond) as server:
        settings = make_settings(
            tmp_path, embedding_provider="openai", openai_api_key="sk-e", openai_base_url=server.url + "/v1"
        )
        embeddings = build_embeddings(settings)
        vectors = embeddings.embed_documents(["first text", "second text"])
        assert embedding_identity(embeddings) == ("text-embedding-3-small", 3)
        assert embedding_identity(embeddings) == ("text-embedding-3-small", 3)  # asked once
    assert vectors == [[0.0, 0.5, -1.0], [1.0, 0.5, -1.0]]
    request = server.requests[0]
    assert request.path == "/v1/embeddings" and request.headers["authorization"] == "Bearer sk-e"
    assert request.body["input"] == ["first text", "second text"] and request.body["model"] == "text-embedding-3-small"
    assert [r.body["input"] for r in server.requests[1:]] == [["dimension probe"]]


async def test_cohere_embeddings_on_the_wire(tmp_path) -> None:  # type: ignore[no-untyped-def]
    def respond(request: Recorded) -> Reply:
        vectors = [[float(i), 0.25] for i, _ in enumerate(request.body["texts"])]
        body = {
            "id": "emb-1",
            "response_type": "embeddings_by_type",
            "embeddings": {"float": vectors},
            "texts": request.body["texts"],
            "meta": {"api_version": {"version": "1"}, "billed_units": {"input_tokens": 4}},
        }
        return Reply(body=body)

    with wire_server(respond) as server:
        settings = make_settings(
            tmp_path, embedding_provider="cohere", cohere_api_key="co-e", cohere_base_url=server.url
        )
        embeddings = build_embeddings(settings)
        documents = embeddings.embed_documents(["first text", "second text"])
        query = await embeddings.aembed_query("a question")
        assert embedding_identity(embeddings) == ("embed-english-v3.0", 2)
    assert documents == [[0.0, 0.25], [1.0, 0.25]] and query == [0.0, 0.25]
    first, second = server.requests[:2]
    assert first.headers["authorization"] == "Bearer co-e" and first.path.endswith("/embed")
    assert first.body["texts"] == ["first text", "second text"] and first.body["model"] == "embed-english-v3.0"
    assert (first.body["input_type"], second.body["input_type"]) == ("search_document", "search_query")
