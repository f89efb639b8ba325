"""Answer generation: the extractive fallback, and the OpenAI client against the Chat Completions wire format."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest
from langchain_core.embeddings import Embeddings
from pydantic import ValidationError

from ragapi.api.state import AppState
from ragapi.core.errors import UpstreamError
from ragapi.embedding import OnnxMiniLMEmbeddings
from ragapi.generation.answerers import (
    NO_ANSWER,
    SYSTEM_PROMPT,
    ExtractiveAnswerer,
    OpenAIAnswerer,
    Usage,
    build_answerer,
    sse_data,
)
from ragapi.generation.extractive import split_sentences
from ragapi.retrieval.chunks import Hit
from tests.conftest import make_settings
from tests.wire import Recorded, Reply, openai_stream, wire_server


def hit(text: str, title: str = "Doc") -> Hit:
    return Hit(uuid.uuid4(), uuid.uuid4(), text, title, {}, 1.0)


async def collect(answerer, query: str, hits: list[Hit]) -> str:  # type: ignore[no-untyped-def]
    return "".join([piece async for piece in answerer.astream(query, hits)])


@pytest.fixture
def embeddings(app_state: AppState) -> Embeddings:
    return app_state.embeddings  # the service's own embedder: the bundled model, loaded once per session


class CountingEmbeddings(Embeddings):
    """The real embedder, recording what each call was asked to embed."""

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner
        self.batches: list[list[str]] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        raise AssertionError("the answerer embeds off the event loop, through the async methods")

    def embed_query(self, text: str) -> list[float]:
        raise AssertionError("the answerer embeds off the event loop, through the async methods")

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        self.batches.append(texts)
        return await self.inner.aembed_documents(texts)

    async def aembed_query(self, text: str) -> list[float]:
        raise AssertionError("the question is embedded with the candidates, in the one batch")


GOODS = ["copper wire", "spare tyres", "frozen fish", "office paper", "road salt", "timber", "cement", "toner"]


def depot(n: int) -> str:
    return f"Depot {n} stores {GOODS[n % len(GOODS)]}. Depot {n} is open from {6 + n % 4}am to {4 + n % 5}pm."


def test_sentence_splitting() -> None:
    assert split_sentences("First one. Second one! Third?\nFourth line") == [
        "First one.",
        "Second one!",
        "Third?",
        "Fourth line",
    ]


def test_lines_wrapped_inside_a_sentence_are_joined() -> None:
    # as PDF text, hard-wrapped plain text and HTML source arrive: one line per printed line
    text = (
        "What is Python? ¶\nPython is an interpreted, interactive, object-oriented programming language. It\n"
        "incorporates modules, exceptions and dynamic typing.\nTable of Contents\nGeneral Information\n\n"
        "- first item\n- second item"
    )
    assert split_sentences(text) == [
        "What is Python? ¶",
        "Python is an interpreted, interactive, object-oriented programming language.",
        "It incorporates modules, exceptions and dynamic typing.",
        "Table of Contents",
        "General Information",
        "- first item",
        "- second item",
    ]


async def test_the_depot_question_is_answered_with_its_depot_only(embeddings: Embeddings) -> None:
    # 60 records that differ only in their numbers; the old answer added depots 43 and 4 to depot 5's line
    order = [43, 4, 5, *(n for n in range(60) if n not in (43, 4, 5))]
    answer = await collect(ExtractiveAnswerer(embeddings), "What does depot 5 store?", [hit(depot(n)) for n in order])
    assert answer == "Depot 5 stores timber. [3]"


async def test_an_answer_in_two_sentences_keeps_both(embeddings: Embeddings) -> None:
    hits = [
        hit("The cafeteria is open from 8am to 3pm on weekdays. On Saturdays the cafeteria is open from 9am to noon."),
        hit("The gym is on floor 2. Parking is free for staff."),
    ]
    answer = await collect(ExtractiveAnswerer(embeddings), "When is the cafeteria open?", hits)
    assert answer == (
        "The cafeteria is open from 8am to 3pm on weekdays. [1] On Saturdays the cafeteria is open from 9am to noon. [1]"
    )
    visa = [
        hit("Flights are booked by the travel desk. A visa application needs a valid passport."),
        hit("A visa application also needs a letter from your manager. The office opens at 9am."),
    ]
    answer = await collect(ExtractiveAnswerer(embeddings), "Which documents do I need for a visa?", visa)
    assert (
        answer
        == "A visa application needs a valid passport. [1] A visa application also needs a letter from your manager. [2]"
    )


async def test_an_answer_is_not_padded_with_other_sentences(embeddings: Embeddings) -> None:
    hits = [
        hit("The office opens at 9am. Parking is free for staff."),
        hit("Refunds are processed within 5 business days. Contact billing for help."),
        hit("Employees get 27 vacation days a year. The office is closed on public holidays."),
    ]
    answer = await collect(ExtractiveAnswerer(embeddings), "how long do refunds take to be processed", hits)
    assert answer == "Refunds are processed within 5 business days. [2]"


async def test_the_sentence_count_is_a_maximum(embeddings: Embeddings) -> None:
    hits = [hit(depot(n)) for n in range(6)]
    everything = ExtractiveAnswerer(embeddings, max_sentences=2, margin=1.0)  # every sentence is near enough
    answer = await collect(everything, "Which depot stores copper wire and when is it open?", hits)
    assert answer.count(" [") == 2 and answer.startswith("Depot 0 stores copper wire. [1]")


async def test_candidates_are_embedded_in_one_call_up_to_the_cap(embeddings: Embeddings) -> None:
    counting = CountingEmbeddings(embeddings)
    hits = [hit(depot(n)) for n in (43, 4, 5, 15)]
    answer = await collect(ExtractiveAnswerer(counting, max_candidates=3), "What does depot 5 store?", hits)
    assert answer == "Depot 5 stores timber. [3]"
    (batch,) = counting.batches
    assert batch[0] == "What does depot 5 store?" and len(batch) == 1 + 3  # the question, then the candidates:
    assert {"Depot 5 stores timber.", "Depot 5 is open from 7am to 4pm."} < set(batch)  # sharing most of its terms


async def test_repeated_and_partial_sentences_are_candidates_once(embeddings: Embeddings) -> None:
    # neighbouring chunks of a document overlap: one starts inside a sentence the other holds whole
    counting = CountingEmbeddings(embeddings)
    document = uuid.uuid4()
    hits = [
        Hit(uuid.uuid4(), document, "Depot 5 stores timber. Depot 5 is open from 7am to 4pm.", "Depots", {}, 1.0),
        Hit(uuid.uuid4(), document, "open from 7am to 4pm. Depot 5 stores timber.", "Depots", {}, 0.9),
        hit("It is open from 7am to 4pm on weekdays."),  # another document's: a sentence of its own
    ]
    await collect(ExtractiveAnswerer(counting), "What does depot 5 store?", hits)
    assert counting.batches == [
        [
            "What does depot 5 store?",
            "Depot 5 stores timber.",
            "Depot 5 is open from 7am to 4pm.",
            "It is open from 7am to 4pm on weekdays.",
        ]
    ]


async def test_no_answer_without_sources_or_when_none_is_near(embeddings: Embeddings) -> None:
    answerer = ExtractiveAnswerer(embeddings)
    assert await collect(answerer, "anything", []) == NO_ANSWER
    assert await collect(answerer, "zzz", [hit("Only sentence here. Another.")]) == NO_ANSWER
    office = [hit("The office opens at 9am. Parking is free for staff."), hit("Refunds take 5 business days.")]
    assert await collect(answerer, "What is the capital of Australia?", office) == NO_ANSWER
    # questions in the sources (FAQ headings) are not answers
    assert await collect(answerer, "When does the office open?", [hit("When does the office open?")]) == NO_ANSWER


def test_extractive_settings_are_bounded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    embeddings = OnnxMiniLMEmbeddings()  # loaded on first use: never here
    answerer = build_answerer(make_settings(tmp_path, extractive_margin=0.2, extractive_candidates=7), embeddings)
    assert isinstance(answerer, ExtractiveAnswerer)
    assert (answerer.margin, answerer.max_candidates, answerer.max_sentences) == (0.2, 7, 3)
    for bad in ({"margin": 1.5}, {"max_candidates": 0}, {"max_sentences": 0}):
        with pytest.raises(ValueError, match="margin"):
            ExtractiveAnswerer(embeddings, **bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        make_settings(tmp_path, extractive_candidates=0)


async def test_openai_streaming_on_the_wire(tmp_path) -> None:  # type: ignore[no-untyped-def]
    def respond(request: Recorded) -> Reply:
        return Reply(sse=openai_stream(["Refunds take ", "5 days ", "[1]."]))

    with wire_server(respond) as server:
        settings = make_settings(
            tmp_path, openai_api_key="sk-test", openai_base_url=server.url + "/v1", openai_model="gpt-4o-mini"
        )
        answerer = build_answerer(settings, OnnxMiniLMEmbeddings())
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
            await collect(build_answerer(settings, OnnxMiniLMEmbeddings()), "q", [hit("text")])


async def test_openai_usage_is_the_providers_or_estimated(tmp_path) -> None:  # type: ignore[no-untyped-def]
    counted = {"prompt_tokens": 1000, "completion_tokens": 200}
    replies = [
        Reply(sse=openai_stream(["16 weeks ", "[1]."], usage=counted)),
        Reply(sse=openai_stream(["16 weeks [1]."])),
    ]
    with wire_server(lambda r: replies.pop(0)) as server:
        answerer = build_answerer(
            make_settings(tmp_path, openai_api_key="sk-test", openai_base_url=server.url + "/v1"),
            OnnxMiniLMEmbeddings(),
        )
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
        answerer = build_answerer(
            make_settings(tmp_path, openai_api_key="sk-test", openai_base_url=server.url + "/v1"),
            OnnxMiniLMEmbeddings(),
        )
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
