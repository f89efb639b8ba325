"""The conversation use case: the rewrite sees the last CONVERSATION_HISTORY_TURNS questions, and a stream
abandoned before its answer finished keeps the question only; with a chat model, its question is searched
when it can be one."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragapi.answering.answer import Sources
from ragapi.answering.conversations.service import AS_ASKED, LLM, OFFLINE, ConversationService
from ragapi.answering.conversations.store import ConversationStore
from ragapi.answering.question import Question, Surface
from ragapi.api.state import AppState
from ragapi.generation.condense import Turn as Exchange
from ragapi.tenants.service import operator_context
from tests.conftest import TenantHandle, make_settings
from tests.wire import Reply, openai_completion, wire_server


def asked(text: str, app_state: AppState) -> Question:
    return Question.parse(text, None, None, True, app_state.settings)


async def test_the_rewrite_sees_the_last_history_turns(
    app_state: AppState, tenant: TenantHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    service: ConversationService = app_state.conversations
    context = await operator_context(app_state.db, app_state.settings, tenant.tenant_id)
    history = [Exchange("What is the Falcon printer?"), Exchange("What does the Orion coffee machine make?")]
    question = asked("Where is it?", app_state)
    follow_up = await service.follow_up(context, Surface.CLI, question, history)
    # the question that set the subject, as searched, then the follow-up (`ragapi.answering.rewrite`)
    assert follow_up.standalone.text == "What does the Orion coffee machine make? (Falcon printer) Where is it?"
    assert follow_up.standalone.rewrite == OFFLINE
    assert follow_up.request.question.text == follow_up.standalone.text  # what the cache and retrieval see
    assert follow_up.request.question.top_k == question.top_k and follow_up.request.tenant == context
    monkeypatch.setattr(app_state.settings, "conversation_history_turns", 1)
    assert (await service.follow_up(context, Surface.CLI, question, history)).standalone.text == (
        "What does the Orion coffee machine make? Where is it?"
    )
    monkeypatch.setattr(app_state.settings, "conversation_history_turns", 0)
    unchanged = await service.follow_up(context, Surface.CLI, question, history)
    assert (unchanged.standalone.text, unchanged.standalone.rewrite) == ("Where is it?", AS_ASKED)
    standalone = asked("How many pages does the Falcon printer print per minute?", app_state)
    assert (await service.follow_up(context, Surface.CLI, standalone, history)).standalone.rewrite == AS_ASKED


async def test_an_abandoned_answer_keeps_the_question_only(app_state: AppState, tenant: TenantHandle) -> None:
    service: ConversationService = app_state.conversations
    context = await operator_context(app_state.db, app_state.settings, tenant.tenant_id)
    conversation = await service.create(context, None, [])
    turn = await service.ask(context, conversation.id, asked("Is anything indexed?", app_state), Surface.CLI)
    assert isinstance(await anext(turn.events), Sources)
    await turn.events.aclose()  # the client went away before the answer finished
    view = await service.read(context, conversation.id)
    assert [(m.ord, m.role, m.content) for m in view.messages] == [(0, "user", "Is anything indexed?")]
    assert view.conversation.message_count == 1
    again = await service.ask(context, conversation.id, asked("Anything now?", app_state), Surface.CLI)
    async for _ in again.events:
        pass
    view = await service.read(context, conversation.id)
    assert [(m.ord, m.role) for m in view.messages] == [(0, "user"), (1, "user"), (2, "assistant")]


async def test_with_an_llm_the_follow_up_is_condensed_and_its_reply_checked(
    app_state: AppState, tenant: TenantHandle, tmp_path: Path
) -> None:
    """The conversation use case with the chat-model condenser (at the HTTP boundary): the model's
    question is what is searched (`llm`); a reply that could not be a question here (a NUL, which
    PostgreSQL cannot store) is replaced by the offline rewrite, as a failing model is."""
    from ragapi.answering.condense import build_condenser

    replies = iter(["Where is the Falcon printer located?", "Where is the \x00 printer?"])
    with wire_server(lambda _: Reply(body=openai_completion(next(replies)))) as server:
        settings = make_settings(
            tmp_path, openai_api_key="sk-test", openai_base_url=server.url + "/v1", openai_model="gpt-4o-mini"
        )
        service = ConversationService(
            ConversationStore(app_state.db),
            app_state.answers,
            app_state.knowledge_bases,
            settings,
            build_condenser(settings),
        )
        context = await operator_context(app_state.db, app_state.settings, tenant.tenant_id)
        history = [Exchange("What is the Falcon printer?", "It prints 40 pages a minute in colour. [1]")]
        condensed = await service.follow_up(context, Surface.CLI, asked("Where is it?", app_state), history)
        assert (condensed.standalone.text, condensed.standalone.rewrite) == (
            "Where is the Falcon printer located?",
            LLM,
        )
        assert condensed.request.question.text == "Where is the Falcon printer located?"
        sent = server.requests[0].body["messages"]  # the chat model sees the earlier answer too
        assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
        assert sent[2]["content"] == "It prints 40 pages a minute in colour. [1]"
        refused = await service.follow_up(context, Surface.CLI, asked("Where is it?", app_state), history)
        assert refused.standalone.rewrite == OFFLINE
        assert refused.standalone.text == "What is the Falcon printer? Where is it?"
