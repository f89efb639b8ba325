"""Reranking: none by default; Cohere Rerank v2 verified against its documented wire format."""

from __future__ import annotations

import uuid

import pytest

from ragapi.core.errors import UpstreamError
from ragapi.retrieval.chunks import Hit
from ragapi.retrieval.rerank import CohereReranker, NoReranker, build_reranker
from tests.conftest import make_settings
from tests.wire import Reply, wire_server


def hits(*texts: str) -> list[Hit]:
    return [Hit(uuid.uuid4(), uuid.uuid4(), t, t, {}, 0.5) for t in texts]


async def test_default_is_no_reranker(tmp_path) -> None:  # type: ignore[no-untyped-def]
    reranker = build_reranker(make_settings(tmp_path))
    assert isinstance(reranker, NoReranker)
    assert [h.text for h in await reranker.rerank("q", hits("a", "b", "c"), 2)] == ["a", "b"]


async def test_cohere_rerank_on_the_wire(tmp_path) -> None:  # type: ignore[no-untyped-def]
    body = {
        "id": "rr-1",
        "results": [{"index": 2, "relevance_score": 0.97}, {"index": 0, "relevance_score": 0.41}],
        "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
    }
    with wire_server(lambda r: Reply(body=body)) as server:
        settings = make_settings(tmp_path, cohere_api_key="co-test", cohere_base_url=server.url)
        reranker = build_reranker(settings)
        assert isinstance(reranker, CohereReranker)
        ranked = await reranker.rerank("which is best", hits("alpha", "beta", "gamma"), 2)
    assert [(h.text, h.score) for h in ranked] == [("gamma", 0.97), ("alpha", 0.41)]
    (request,) = server.requests
    assert request.path == "/v2/rerank"
    assert request.headers["authorization"] == "Bearer co-test"
    assert request.body["query"] == "which is best"
    assert request.body["documents"] == ["alpha", "beta", "gamma"]
    assert request.body["model"] == "rerank-v3.5" and request.body["top_n"] == 2


async def test_cohere_failure_is_an_upstream_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with wire_server(lambda r: Reply(status=500, body={"message": "internal"})) as server:
        settings = make_settings(tmp_path, cohere_api_key="co-test", cohere_base_url=server.url)
        with pytest.raises(UpstreamError):
            await build_reranker(settings).rerank("q", hits("a"), 1)


def test_fastembed_reranker_needs_a_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="RERANKER_MODEL"):
        build_reranker(make_settings(tmp_path, reranker="fastembed"))
