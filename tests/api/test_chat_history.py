"""LangServe's `chat_history`: a client that keeps its own conversation sends it with the question, as a real
`RemoteRunnable` serialises LangChain messages or as [role, content] pairs; the question is rewritten from
its human turns before retrieval. Bad histories are a 422 naming the message, before any charge."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langserve import RemoteRunnable

from ragapi.api.state import AppState
from tests.api.helpers import assert_problem, ingest_texts
from tests.conftest import TenantHandle

FACTS = (
    "The Falcon printer is located on floor 3, next to the kitchen.",
    "The Orion coffee machine is located in the lobby on floor 1.",
    "The Falcon printer prints 40 pages a minute in colour.",
    "The Orion coffee machine makes espresso and tea.",
)
FOLLOW_UP = "Where is it located?"


class Loopback(httpx.ASGITransport):
    """The app in-process for RemoteRunnable's async client. RemoteRunnable also builds a sync client with
    the same arguments, unused here, and closes it when collected."""

    def close(self) -> None:
        pass


@pytest.fixture
async def remote(app: FastAPI, client: httpx.AsyncClient, tenant: TenantHandle) -> AsyncIterator[RemoteRunnable]:
    await ingest_texts(client, tenant, *FACTS)
    transport = Loopback(app=app)
    yield RemoteRunnable("http://ragapi.test/v1/rag/", headers=tenant.headers, client_kwargs={"transport": transport})


async def test_remote_runnable_sends_its_history(remote: RemoteRunnable, client: httpx.AsyncClient) -> None:
    printer_talk = [
        SystemMessage("You answer questions about the office."),
        HumanMessage("What is the Falcon printer?"),
        AIMessage("The Falcon printer prints 40 pages a minute in colour. [1]"),
    ]
    about_printer = await remote.ainvoke({"query": FOLLOW_UP, "top_k": 1, "chat_history": printer_talk})
    assert about_printer["standalone_question"] == f"What is the Falcon printer? {FOLLOW_UP}"
    assert "floor 3" in about_printer["answer"] and about_printer["cached"] is False
    assert about_printer["citations"][0]["snippet"] == FACTS[0]

    coffee_talk = [("human", "What is the Orion coffee machine?"), ("ai", "It makes espresso and tea. [1]")]
    chunks = [c async for c in remote.astream({"query": FOLLOW_UP, "top_k": 1, "chat_history": coffee_talk})]
    assert chunks[0]["standalone_question"] == f"What is the Orion coffee machine? {FOLLOW_UP}"
    assert [c for c in chunks[1:] if "standalone_question" in c] == []  # once: chunks add up field by field
    assert chunks[0]["citations"][0]["snippet"] == FACTS[1]
    assert "lobby" in "".join(c.get("answer", "") for c in chunks)

    both = await remote.abatch(
        [
            {"query": FOLLOW_UP, "top_k": 1, "chat_history": printer_talk},
            {"query": FOLLOW_UP, "top_k": 1, "chat_history": [{"role": "user", "content": "Orion coffee machine?"}]},
            {"query": FOLLOW_UP, "top_k": 1},
        ]
    )
    assert both[0]["cached"] == "exact" and both[0]["citations"] == about_printer["citations"]
    assert both[1]["standalone_question"] == f"Orion coffee machine? {FOLLOW_UP}"
    assert both[2].get("standalone_question") is None  # no history: the question as asked
    turns = [HumanMessage(content=[{"type": "text", "text": "What is the Falcon"}, "printer?"])]
    blocks = await remote.ainvoke({"query": FOLLOW_UP, "chat_history": turns})
    assert blocks["standalone_question"] == f"What is the Falcon printer? {FOLLOW_UP}"


def invoke(history: Any) -> str:
    """The body as raw JSON text: a lone surrogate as its \\ud800 escape, as an attacker sends it."""
    return json.dumps({"input": {"query": FOLLOW_UP, "chat_history": history}}, ensure_ascii=True)


async def test_bad_histories_are_a_422_naming_the_message(
    client: httpx.AsyncClient, tenant: TenantHandle, app_state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    h, settings = {**tenant.headers, "content-type": "application/json"}, app_state.settings
    monkeypatch.setattr(settings, "conversation_max_messages", 4)
    human = {"type": "human", "content": "What is the Falcon printer?"}
    for history, named in (
        ("What is it?", "input.chat_history"),
        ([human] * 5, "CONVERSATION_MAX_MESSAGES"),
        ([{"type": "human", "content": "x" * (settings.max_query_chars + 1)}], "input.chat_history.0 is longer"),
        ([human, {"type": "robot", "content": "beep"}], "input.chat_history.1: the role must be"),
        ([{"content": "no role"}], "input.chat_history.0: the role must be"),
        ([["human", "a", "b"]], "input.chat_history.0 must be a message"),
        ([42], "input.chat_history.0 must be a message"),
        ([{"type": "ai", "content": {"text": "x"}}], "input.chat_history.0.content must be text"),
        ([{"type": "human", "content": [{"type": "image_url", "image_url": "x"}]}], "text blocks only"),
        ([["human", "a\x00b"]], "input.chat_history"),
        ([{"type": "human", "content": "\ud800"}], "input.chat_history"),
    ):
        response = await client.post("/v1/rag/invoke", headers=h, content=invoke(history))
        assert named in assert_problem(response, 422)["detail"], (history, response.text)
    batch = {"inputs": [{"query": "fine"}, {"query": "q", "chat_history": [{"type": "robot", "content": "x"}]}]}
    problem = assert_problem(await client.post("/v1/rag/batch", headers=h, json=batch), 422)
    assert problem["detail"].startswith("inputs.1.chat_history.0")
    streamed = await client.post("/v1/rag/stream", headers=h, content=invoke([human] * 5))
    assert "CONVERSATION_MAX_MESSAGES" in assert_problem(streamed, 422)["detail"]
    assert (await client.get("/v1/tenant", headers=tenant.headers)).json()["usage"][
        "queries"
    ] == 0  # refused before the charge
    fine = await client.post("/v1/rag/invoke", headers=h, content=invoke([human, ["ai", "An answer."], "And it?"]))
    assert fine.status_code == 200 and fine.json()["output"]["standalone_question"].endswith(FOLLOW_UP)


def test_each_human_turn_keeps_the_ai_turns_after_it(settings) -> None:  # type: ignore[no-untyped-def]
    """What a chat model condensing the question is shown: each earlier question with its answer (the AI
    messages after it, joined); system and tool messages, and AI messages before any question, are not."""
    from ragapi.api.chat_history import exchanges
    from ragapi.generation.condense import Turn

    history = [
        {"type": "system", "content": "You answer questions about the office."},
        ["ai", "Hello!"],
        {"type": "human", "content": "What is the Falcon printer?"},
        {"type": "ai", "content": "A colour printer. [1]"},
        {"role": "assistant", "content": "It is on floor 3. [2]"},
        {"type": "tool", "content": "lookup done"},
        "And the coffee machine?",
    ]
    assert exchanges(history, settings) == [
        Turn("What is the Falcon printer?", "A colour printer. [1]\nIt is on floor 3. [2]"),
        Turn("And the coffee machine?"),
    ]
