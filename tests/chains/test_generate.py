"""Answer generation: the extractive fallback, and ChatOpenAI against the OpenAI wire format."""

from __future__ import annotations

import uuid

import pytest

from chains.generate import NO_ANSWER, ExtractiveAnswerer, OpenAIAnswerer, build_answerer, split_sentences
from chains.index import Hit
from core.errors import UpstreamError
from tests.conftest import make_settings
from tests.wire import Recorded, Reply, openai_stream, wire_server


def hit(text: str, title: str = "Doc") -> Hit:
    return Hit(uuid.uuid4(), uuid.uuid4(), text, title, {}, 1.0)


async def collect(answerer, query: str, hits: list[Hit]) -> str:  # type: ignore[no-untyped-def]
    return "".join([piece async for piece in answerer.astream(query, hits)])


def test_sentence_splitting() -> None:
    assert split_sentences("First one. Second one! Third?\nFourth line") == [
        "First one.",
        "Second one!",
        "Third?",
        "Fourth line",
    ]


async def test_extractive_answer_quotes_the_best_sentences_with_citations() -> None:
    hits = [
        hit("The office opens at 9am. Parking is free for staff."),
        hit("Refunds are processed within 5 business days. Contact billing for help."),
    ]
    answer = await collect(ExtractiveAnswerer(max_sentences=1), "how long do refunds take to be processed", hits)
    assert answer == "Refunds are processed within 5 business days. [2]"


async def test_extractive_answer_without_sources_says_so() -> None:
    assert await collect(ExtractiveAnswerer(), "anything", []) == NO_ANSWER


async def test_extractive_answer_falls_back_to_the_top_source() -> None:
    answer = await collect(ExtractiveAnswerer(), "zzz", [hit("Only sentence here. Another.")])
    assert answer == "Only sentence here. [1]"


async def test_openai_streaming_on_the_wire(tmp_path) -> None:  # type: ignore[no-untyped-def]
    def respond(request: Recorded) -> Reply:
        return Reply(sse=openai_stream(["Refunds take ", "5 days ", "[1]."]))

    with wire_server(respond) as server:
        settings = make_settings(
            tmp_path, openai_api_key="sk-test", openai_base_url=server.url + "/v1", openai_model="gpt-4o-mini"
        )
        answerer = build_answerer(settings)
        assert isinstance(answerer, OpenAIAnswerer)
        answer = await collect(answerer, "How long do refunds take?", [hit("Refunds take 5 days.", "Billing FAQ")])
    assert answer == "Refunds take 5 days [1]."
    (request,) = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.body["model"] == "gpt-4o-mini"
    assert request.body["stream"] is True
    system, user = request.body["messages"]
    assert system["role"] == "system" and "only" in system["content"] and "[1]" in system["content"]
    assert "[1] Billing FAQ\nRefunds take 5 days." in user["content"]
    assert user["content"].endswith("Question: How long do refunds take?")


async def test_openai_errors_become_upstream_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    error = {
        "error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}
    }
    with wire_server(lambda r: Reply(status=401, body=error)) as server:
        settings = make_settings(tmp_path, openai_api_key="sk-bad", openai_base_url=server.url + "/v1")
        with pytest.raises(UpstreamError, match="AuthenticationError"):
            await collect(build_answerer(settings), "q", [hit("text")])
