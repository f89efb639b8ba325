"""Answer generation: the extractive fallback, and the OpenAI client against the Chat Completions wire format."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest

from ragapi.core.errors import UpstreamError
from ragapi.generation.answerers import (
    NO_ANSWER,
    SYSTEM_PROMPT,
    ExtractiveAnswerer,
    OpenAIAnswerer,
    Usage,
    build_answerer,
    split_sentences,
    sse_data,
)
from ragapi.retrieval.chunks import Hit
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
    assert request.body["stream"] is True and request.body["stream_options"] == {"include_usage": True}
    assert request.body["temperature"] == 0.0 and request.body["max_completion_tokens"] == 800
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


async def test_openai_usage_is_the_providers_or_estimated(tmp_path) -> None:  # type: ignore[no-untyped-def]
    counted = {"prompt_tokens": 1000, "completion_tokens": 200}
    replies = [
        Reply(sse=openai_stream(["16 weeks ", "[1]."], usage=counted)),
        Reply(sse=openai_stream(["16 weeks [1]."])),
    ]
    with wire_server(lambda r: replies.pop(0)) as server:
        answerer = build_answerer(make_settings(tmp_path, openai_api_key="sk-test", openai_base_url=server.url + "/v1"))
        reported, estimated = Usage(), Usage()
        assert "".join([p async for p in answerer.astream("leave?", [hit("Leave is 16 weeks.")], reported)])
        assert "".join([p async for p in answerer.astream("leave?", [hit("Leave is 16 weeks.")], estimated)])
    assert (reported.prompt_tokens, reported.completion_tokens, reported.estimated) == (1000, 200, False)
    prompt = server.requests[1].body["messages"][1]["content"]
    assert estimated.prompt_tokens == round(len(SYSTEM_PROMPT + prompt) / 4)
    assert (estimated.completion_tokens, estimated.estimated) == (round(len("16 weeks [1].") / 4), True)


async def test_an_error_event_after_the_stream_started_is_an_upstream_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    overloaded = json.dumps({"error": {"message": "The server is overloaded", "type": "server_error"}})
    with wire_server(lambda r: Reply(sse=[*openai_stream(["Partial "])[:2], overloaded])) as server:
        answerer = build_answerer(make_settings(tmp_path, openai_api_key="sk-test", openai_base_url=server.url + "/v1"))
        pieces: list[str] = []
        with pytest.raises(UpstreamError, match="overloaded"):
            async for piece in answerer.astream("q", [hit("text")]):
                pieces.append(piece)  # noqa: PERF401 - the pieces before the error count
    assert pieces == ["Partial "]


async def test_event_stream_data_as_the_format_defines_it() -> None:
    async def lines(*items: str) -> AsyncIterator[str]:
        for item in items:
            yield item

    raw = [
        ": keep-alive",
        "",
        'data:{"a":1}',
        "",
        "event: delta",
        "data: one",
        "data: two",
        "",
        "id: 7",
        "data: [DONE]",
    ]
    assert [d async for d in sse_data(lines(*raw))] == ['{"a":1}', "one\ntwo", "[DONE]"]
