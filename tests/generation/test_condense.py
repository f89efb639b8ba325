"""Condensing a follow-up question with a chat model, against the Chat Completions wire format, and its
fallback to the offline rewrite."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from ragapi.answering.condense import OfflineCondenser, build_condenser
from ragapi.answering.rewrite import standalone_question
from ragapi.generation.condense import CONDENSE_PROMPT, ChatCondenser, Condensed, Turn
from tests.conftest import make_settings
from tests.wire import Recorded, Reply, openai_completion, wire_server

HISTORY = [
    Turn("How do I add an item to a Python list?", "Use list.append(x) [1].", ("Data structures",)),
    Turn("Can I add several at once?", "list.extend(iterable) adds them all [1].", ("Data structures",)),
]
QUESTION = "And how do I remove one?"
STANDALONE = "How do I remove an item from a Python list?"
ROLES = {"system", "user", "assistant"}


def checked(reply: Callable[[Recorded], Reply]) -> Callable[[Recorded], Reply]:
    """A Chat Completions endpoint that refuses, as a real server does (400), a request its documented
    format does not allow, and else replies with `reply`."""

    def respond(request: Recorded) -> Reply:
        body: Any = request.body
        problems = []
        if request.path != "/v1/chat/completions":
            problems.append(f"unknown path {request.path}")
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            problems.append("model: a string is required")
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not messages:
            problems.append("messages: a non-empty array is required")
        elif any(m.get("role") not in ROLES or not isinstance(m.get("content"), str) for m in messages):
            problems.append("messages: each needs a role (system, user, assistant) and string content")
        if isinstance(body, dict) and not isinstance(body.get("max_tokens", 0), int):
            problems.append("max_tokens: an integer")
        if problems:
            error = {"message": "; ".join(problems), "type": "invalid_request_error", "code": None}
            return Reply(status=400, body={"error": error})
        return reply(request)

    return respond


def fallbacks(reason: str) -> float:
    return REGISTRY.get_sample_value("rag_condense_fallbacks_total", {"reason": reason}) or 0.0


def condenser(tmp_path: Path, url: str, **overrides: object) -> ChatCondenser:
    settings = make_settings(
        tmp_path, openai_api_key="sk-test", openai_base_url=url + "/v1", openai_model="gpt-4o-mini", **overrides
    )
    built = build_condenser(settings)
    assert isinstance(built, ChatCondenser) and isinstance(built.fallback, OfflineCondenser)
    return built


async def test_the_question_is_condensed_on_the_wire(tmp_path: Path) -> None:
    usage = {"prompt_tokens": 120, "completion_tokens": 11}
    with wire_server(checked(lambda r: Reply(body=openai_completion(STANDALONE, usage=usage)))) as server:
        condensed = await condenser(tmp_path, server.url).condense(HISTORY, QUESTION)
    assert condensed.question == STANDALONE and condensed.method == "llm"
    assert (condensed.usage.prompt_tokens, condensed.usage.completion_tokens) == (120, 11)
    assert not condensed.usage.estimated and condensed.model == "gpt-4o-mini"  # whose price the tokens take
    (request,) = server.requests
    assert request.headers["authorization"] == "Bearer sk-test"
    body = request.body
    assert body["model"] == "gpt-4o-mini" and body["max_tokens"] == 64 and body["temperature"] == 0.0
    assert not body.get("stream")  # one reply: the retriever needs the whole question
    assert body["messages"] == [
        {"role": "system", "content": CONDENSE_PROMPT},
        {"role": "user", "content": "How do I add an item to a Python list?"},
        {"role": "assistant", "content": "Use list.append(x) [1]."},
        {"role": "user", "content": "Can I add several at once?"},
        {"role": "assistant", "content": "list.extend(iterable) adds them all [1]."},
        {"role": "user", "content": QUESTION},
    ]
    assert "Do NOT answer the question" in CONDENSE_PROMPT


async def test_a_first_question_is_not_sent(tmp_path: Path) -> None:
    with wire_server(checked(lambda r: Reply(body=openai_completion(STANDALONE)))) as server:
        condensed = await condenser(tmp_path, server.url).condense([], "How do I sort a list?")
    assert condensed == Condensed("How do I sort a list?", "unchanged")
    assert server.requests == []


async def test_a_server_error_falls_back_to_the_offline_rewrite(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    error = {"error": {"message": "The server had an error", "type": "server_error", "code": None}}
    before = fallbacks("error")
    with (
        wire_server(checked(lambda r: Reply(status=500, body=error))) as server,
        caplog.at_level(logging.WARNING, logger="ragapi.generation.condense"),
    ):
        condensed = await condenser(tmp_path, server.url).condense(HISTORY, QUESTION)
    offline = standalone_question([turn.question for turn in HISTORY], QUESTION)
    assert condensed == Condensed(offline, "offline") and offline != QUESTION
    assert len(server.requests) == 1  # no retries: the offline rewrite is quicker than a second try
    assert fallbacks("error") == before + 1
    assert "InternalServerError" in caplog.text and "(error" in caplog.text


async def test_a_slow_model_falls_back_within_the_timeout(tmp_path: Path) -> None:
    before = fallbacks("timeout")
    slow = Reply(body=openai_completion(STANDALONE), delay_s=2.0)
    with wire_server(checked(lambda r: slow)) as server:
        started = time.perf_counter()
        condensed = await condenser(tmp_path, server.url, condense_timeout_s=0.3).condense(HISTORY, QUESTION)
        waited = time.perf_counter() - started
    assert condensed == Condensed(standalone_question([turn.question for turn in HISTORY], QUESTION), "offline")
    assert 0.3 <= waited < 1.5
    assert fallbacks("timeout") == before + 1


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (openai_completion(""), "empty"),
        (openai_completion("   \n"), "empty"),
        (openai_completion(None), "empty"),
        (openai_completion("How do I remove an item from a", finish_reason="length"), "truncated"),
        (openai_completion("To remove an item, call list.remove(x). " * 20), "too_long"),  # an answer
    ],
)
async def test_an_unusable_reply_falls_back(tmp_path: Path, reply: dict[str, Any], reason: str) -> None:
    before = fallbacks(reason)
    with wire_server(checked(lambda r: Reply(body=reply))) as server:
        condensed = await condenser(tmp_path, server.url).condense(HISTORY, QUESTION)
    assert condensed.method == "offline"
    assert condensed.question == standalone_question([turn.question for turn in HISTORY], QUESTION)
    assert fallbacks(reason) == before + 1
    assert condensed.usage.completion_tokens == round(len(reply["choices"][0]["message"]["content"] or "") / 4)
    assert condensed.model == "gpt-4o-mini"  # the reply was unusable, its tokens spent all the same


async def test_usage_is_estimated_when_the_server_counts_none(tmp_path: Path) -> None:
    with wire_server(checked(lambda r: Reply(body=openai_completion(STANDALONE)))) as server:
        condensed = await condenser(tmp_path, server.url).condense(HISTORY, QUESTION)
    prompt = "".join(m["content"] for m in server.requests[0].body["messages"])
    assert condensed.usage.estimated
    assert condensed.usage.prompt_tokens == round(len(prompt) / 4)
    assert condensed.usage.completion_tokens == round(len(STANDALONE) / 4)


async def test_only_the_newest_turns_are_sent_and_long_answers_are_cut(tmp_path: Path) -> None:
    history = [Turn(f"question {n}?", "x" * 5000) for n in range(10)]
    with wire_server(checked(lambda r: Reply(body=openai_completion(STANDALONE)))) as server:
        await condenser(tmp_path, server.url).condense(history, QUESTION)
    messages = server.requests[0].body["messages"]
    assert [m["content"] for m in messages if m["role"] == "user"] == [f"question {n}?" for n in range(4, 10)] + [
        QUESTION
    ]
    assert max(len(m["content"]) for m in messages if m["role"] == "assistant") == 1000


async def test_the_offline_condenser_says_whether_it_added_anything() -> None:
    offline = OfflineCondenser()
    assert (await offline.condense(HISTORY, QUESTION)).method == "offline"
    assert await offline.condense([], QUESTION) == Condensed(QUESTION, "unchanged")
    same = await offline.condense([Turn("How do I sort a list?")], "How do I sort a list?")
    assert same == Condensed("How do I sort a list?", "unchanged")
    assert same.usage.prompt_tokens == same.usage.completion_tokens == 0


def test_the_condenser_follows_the_settings(tmp_path: Path) -> None:
    assert isinstance(build_condenser(make_settings(tmp_path)), OfflineCondenser)  # no key: no model
    keyed = make_settings(tmp_path, openai_api_key="sk-test", condense_with_llm=False)
    assert isinstance(build_condenser(keyed), OfflineCondenser)
    chat = build_condenser(make_settings(tmp_path, openai_api_key="sk-test", condense_max_tokens=32))
    assert isinstance(chat, ChatCondenser) and chat.max_tokens == 32 and chat.max_chars == 256
    for bad in ({"condense_timeout_s": 0}, {"condense_timeout_s": 61}, {"condense_max_tokens": 8}):
        with pytest.raises(ValidationError):
            make_settings(tmp_path, **bad)
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        ChatCondenser(make_settings(tmp_path), fallback=OfflineCondenser())
