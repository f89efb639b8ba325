"""/v1/conversations: follow-ups searched as standalone questions (the cache keys on them), answers kept with
their citations, SSE like /v1/query, feedback on a conversation's answer, owner-only access (404 for
anyone else), bad input and limits as RFC 9457 problems."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from ragapi.api.state import AppState
from tests.api.helpers import assert_problem, ingest_texts, sse_events
from tests.conftest import MakeTenant, MakeUser, TenantHandle

FACTS = (
    "The Falcon printer is located on floor 3, next to the kitchen.",
    "The Orion coffee machine is located in the lobby on floor 1.",
    "The Falcon printer prints 40 pages a minute in colour.",
    "The Orion coffee machine makes espresso and tea.",
    "Parking is free for employees after 6pm.",
)
FOLLOW_UP = "Where is it located?"


async def start(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> str:
    response = await client.post("/v1/conversations", headers=headers, json=body)
    assert response.status_code == 201, response.text
    conversation_id: str = response.json()["id"]
    return conversation_id


async def ask(
    client: httpx.AsyncClient, headers: dict[str, str], conversation_id: str, content: str, **fields: Any
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/conversations/{conversation_id}/messages", headers=headers, json={"content": content, **fields}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def used(client: httpx.AsyncClient, tenant: TenantHandle) -> int:
    queries: int = (await client.get("/v1/tenant", headers=tenant.headers)).json()["usage"]["queries"]
    return queries


@pytest.fixture
async def indexed(client: httpx.AsyncClient, tenant: TenantHandle) -> dict[str, str]:
    """The facts' document ids by their first words."""
    ids = await ingest_texts(client, tenant, *FACTS)
    return dict(zip(FACTS, ids, strict=True))


async def test_the_same_follow_up_is_searched_within_each_conversation(
    client: httpx.AsyncClient, tenant: TenantHandle, indexed: dict[str, str]
) -> None:
    h = tenant.headers
    printer, coffee = await start(client, h, title="Printers"), await start(client, h)
    first = await ask(client, h, printer, "What is the Falcon printer?")
    assert first["standalone_question"] == "What is the Falcon printer?"  # nothing before it
    await ask(client, h, coffee, "What is the Orion coffee machine?")

    about_printer = await ask(client, h, printer, FOLLOW_UP, top_k=1)
    about_coffee = await ask(client, h, coffee, FOLLOW_UP, top_k=1)
    assert about_printer["standalone_question"] == f"What is the Falcon printer? {FOLLOW_UP}"
    assert about_coffee["standalone_question"] == f"What is the Orion coffee machine? {FOLLOW_UP}"
    assert about_printer["conversation_id"] == printer and about_coffee["conversation_id"] == coffee
    assert [c["document_id"] for c in about_printer["citations"]] == [indexed[FACTS[0]]]
    assert [c["document_id"] for c in about_coffee["citations"]] == [indexed[FACTS[1]]]
    assert "floor 3" in about_printer["answer"] and "lobby" in about_coffee["answer"]
    assert about_coffee["cached"] is False  # the cache keys on what was searched, not on the words typed

    # A third conversation about the printer searches what the first did: the cached answer serves it.
    again = await start(client, h)
    await ask(client, h, again, "What is the Falcon printer?")
    repeated = await ask(client, h, again, FOLLOW_UP, top_k=1)
    assert repeated["cached"] == "exact" and repeated["citations"] == about_printer["citations"]
    assert repeated["query_id"] != about_printer["query_id"]

    kept = (await client.get(f"/v1/conversations/{printer}", headers=h)).json()
    assert kept["title"] == "Printers" and kept["message_count"] == 4
    messages = kept["messages"]
    assert [(m["ord"], m["role"]) for m in messages] == [(0, "user"), (1, "assistant"), (2, "user"), (3, "assistant")]
    assert messages[0]["rewrite"] == "none" and messages[0]["query_id"] is None and messages[0]["citations"] == []
    assert messages[2] == {
        **messages[2],
        "content": FOLLOW_UP,
        "standalone_question": f"What is the Falcon printer? {FOLLOW_UP}",
        "rewrite": "offline",
    }
    answer = messages[3]
    assert answer["content"] == about_printer["answer"] and answer["query_id"] == about_printer["query_id"]
    assert answer["citations"] == about_printer["citations"] and answer["standalone_question"] is None
    assert answer["mode"] == "extractive" and answer["usage"] == about_printer["usage"]


async def test_a_conversation_streams_like_a_query(
    client: httpx.AsyncClient, tenant: TenantHandle, indexed: dict[str, str]
) -> None:
    h = tenant.headers
    conversation = await start(client, h)
    await ask(client, h, conversation, "What is the Orion coffee machine?")
    path = f"/v1/conversations/{conversation}/messages"
    for request in ({"json": {"content": FOLLOW_UP, "stream": True}}, {"json": {"content": FOLLOW_UP}}):
        headers = {**h, "accept": "text/event-stream"}
        response = await client.post(path, headers=headers, **request)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.text)
        names = [name for name, _ in events]
        assert names[0] == "sources" and names[-1] == "done" and "token" in names  # the second one a cache hit
        sources, done = events[0][1], events[-1][1]
        standalone = f"What is the Orion coffee machine? {FOLLOW_UP}"
        assert sources["standalone_question"] == done["standalone_question"] == standalone
        assert sources["conversation_id"] == done["conversation_id"] == conversation
        assert sources["query_id"] == done["query_id"]
        assert "".join(d["text"] for e, d in events if e == "token") == done["answer"]
    messages = (await client.get(f"/v1/conversations/{conversation}", headers=h)).json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"] * 3
    assert messages[-1]["query_id"] == done["query_id"] and messages[-1]["content"] == done["answer"]


async def test_feedback_on_a_conversations_answer(
    client: httpx.AsyncClient, tenant: TenantHandle, indexed: dict[str, str], app_state: AppState
) -> None:
    h = tenant.headers
    conversation = await start(client, h)
    await ask(client, h, conversation, "What is the Falcon printer?")
    await ask(client, h, conversation, "How fast does it print?", cache=False)
    answer = (await client.get(f"/v1/conversations/{conversation}", headers=h)).json()["messages"][-1]
    rated = await client.post(
        "/v1/feedback",
        headers=h,
        json={"query_id": answer["query_id"], "rating": 1, "chunk_ids": [answer["citations"][0]["chunk_id"]]},
    )
    assert rated.status_code == 201, rated.text
    assert rated.json()["query_id"] == answer["query_id"] and rated.json()["score"] == 1.0
    async with app_state.db.tenant_session(tenant.tenant_id) as session:
        logged = (
            await session.execute(
                text(
                    "SELECT q.query, q.surface, f.score FROM query_log q JOIN feedback f ON f.query_id = q.id WHERE q.id = :q"
                ),
                {"q": answer["query_id"]},
            )
        ).one()
    searched = "What is the Falcon printer? How fast does it print?"
    assert tuple(logged) == (searched, "rest", 1.0)  # what was searched
    exported = (await client.get("/v1/feedback/export", headers=h)).json()
    assert {"_id": answer["query_id"], "text": searched} in exported["queries"]


async def test_a_conversation_is_its_owners_alone(
    client: httpx.AsyncClient, tenant: TenantHandle, make_tenant: MakeTenant, make_user: MakeUser
) -> None:
    await ingest_texts(client, tenant, *FACTS[:2])
    owner = await make_user(tenant.tenant_id, "member")
    colleague = await make_user(tenant.tenant_id, "member")
    admin = await make_user(tenant.tenant_id, "admin")
    key = await client.post("/v1/api-keys", headers=tenant.headers, json={"name": "app", "scopes": ["query"]})
    other_key = {"X-API-Key": key.json()["api_key"]}
    stranger = await make_tenant()
    mine = await start(client, owner.headers, title="Mine")
    await ask(client, owner.headers, mine, "What is the Falcon printer?")
    of_tenant_key = await start(client, tenant.headers)
    before = await used(client, tenant)

    others = {
        "the tenant's admin key": (tenant.headers, mine),
        "another user of the tenant": (colleague.headers, mine),
        "the tenant's admin user": (admin.headers, mine),
        "another key of the tenant": (other_key, of_tenant_key),
        "the owner key's tenant's user": (owner.headers, of_tenant_key),
        "another tenant": (stranger.headers, mine),
    }
    for who, (headers, conversation) in others.items():
        absent = f"/v1/conversations/{uuid.uuid4()}"
        for path in (f"/v1/conversations/{conversation}", absent):
            got = assert_problem(await client.get(path, headers=headers), 404)
            assert got["detail"] == "no such conversation", who
            asked = await client.post(f"{path}/messages", headers=headers, json={"content": "Where is it?"})
            assert assert_problem(asked, 404)["detail"] == "no such conversation", who
            assert_problem(await client.delete(path, headers=headers), 404)
        listed = (await client.get("/v1/conversations", headers=headers)).json()["items"]
        assert conversation not in {c["id"] for c in listed}, who
    assert await used(client, tenant) == before  # nothing was charged
    assert (await client.get(f"/v1/conversations/{mine}", headers=owner.headers)).json()["message_count"] == 2
    assert (await client.get(f"/v1/conversations/{of_tenant_key}", headers=tenant.headers)).status_code == 200
    assert_problem(await client.get("/v1/conversations/not-a-uuid", headers=owner.headers), 422)
    assert_problem(await client.get(f"/v1/conversations/{mine}"), 401)


async def test_list_delete_and_the_messages_that_go_with_it(
    client: httpx.AsyncClient, tenant: TenantHandle, app_state: AppState
) -> None:
    h = tenant.headers
    kbs = [
        (await client.post("/v1/knowledge-bases", headers=h, json={"name": n})).json()["id"]
        for n in ("handbook", "faq")
    ]
    made = [await start(client, h, title=f"c{n}", knowledge_bases=[" handbook ", "faq"]) for n in range(3)]
    first = await client.get("/v1/conversations", headers=h, params={"limit": 2})
    assert [c["id"] for c in first.json()["items"]] == made[:0:-1]  # newest first
    assert first.json()["items"][0]["knowledge_bases"] == kbs  # kept by id, in the order named
    rest = await client.get("/v1/conversations", headers=h, params={"limit": 2, "cursor": first.json()["next_cursor"]})
    assert [c["id"] for c in rest.json()["items"]] == made[:1] and rest.json()["next_cursor"] is None
    await ask(client, h, made[0], "Anything about parking?")
    assert (await client.delete(f"/v1/conversations/{made[0]}", headers=h)).status_code == 204
    assert_problem(await client.get(f"/v1/conversations/{made[0]}", headers=h), 404)
    assert_problem(await client.delete(f"/v1/conversations/{made[0]}", headers=h), 404)
    async with app_state.db.tenant_session(tenant.tenant_id) as session:
        left = await session.execute(
            text("SELECT count(*) FROM conversation_messages WHERE conversation_id = :c"), {"c": made[0]}
        )
        assert left.scalar_one() == 0
    assert_problem(await client.get("/v1/conversations", headers=h, params={"cursor": "garbage"}), 422)
    too_many = {"limit": app_state.settings.page_size_max + 1}
    assert_problem(await client.get("/v1/conversations", headers=h, params=too_many), 422)


async def test_bad_input_is_a_problem_and_costs_nothing(
    client: httpx.AsyncClient, tenant: TenantHandle, app_state: AppState
) -> None:
    h, settings = tenant.headers, app_state.settings
    conversation = await start(client, h)
    path = f"/v1/conversations/{conversation}/messages"
    long = "x" * (settings.max_query_chars + 1)
    for body, named in (
        ({"content": ""}, "content"),
        ({"content": "   "}, "content must not be empty"),
        ({"content": long}, "content is longer than"),
        ({"content": long, "stream": True}, "MAX_QUERY_CHARS"),
        ({"content": "a\x00b"}, "content"),
        ({"content": "q", "top_k": settings.max_top_k + 1}, "top_k"),
        ({"content": "q", "filters": {"$bad": 1}}, "filters"),
        ({"content": "q", "conversation_id": str(uuid.uuid4())}, "conversation_id"),
        ({"query": "q"}, "content"),
    ):
        problem = assert_problem(await client.post(path, headers=h, json=body), 422)
        assert named in problem["detail"], (body, problem)
    for body, named in (
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"knowledge_bases": [""]}, "knowledge_bases.0"),
        ({"knowledge_bases": ["  "]}, "knowledge_bases.0"),
        ({"knowledge_bases": ["k" * 101]}, "knowledge_bases.0"),
        ({"knowledge_bases": [f"kb{n}" for n in range(21)]}, "knowledge_bases"),
        ({"knowledge_bases": ["faq", "faq"]}, "twice"),
        ({"knowledge_bases": "faq"}, "knowledge_bases"),
        ({"knowledge_bases": [1]}, "knowledge_bases.0"),
        ({"tenant_id": str(uuid.uuid4())}, "tenant_id"),
    ):
        problem = assert_problem(await client.post("/v1/conversations", headers=h, json=body), 422)
        assert named in problem["detail"], (body, problem)
    assert await used(client, tenant) == 0
    kept = (await client.get(f"/v1/conversations/{conversation}", headers=h)).json()
    assert kept["message_count"] == 0 and kept["messages"] == []


async def test_a_full_conversation_is_a_409_before_the_charge(
    client: httpx.AsyncClient, tenant: TenantHandle, app_state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_state.settings, "conversation_max_messages", 5)
    h = tenant.headers
    conversation = await start(client, h)
    await ask(client, h, conversation, "first question")
    await ask(client, h, conversation, "second question")  # 4 messages: a fifth would leave no room for its answer
    full = await client.post(f"/v1/conversations/{conversation}/messages", headers=h, json={"content": "third"})
    assert "CONVERSATION_MAX_MESSAGES" in assert_problem(full, 409)["detail"]
    assert await used(client, tenant) == 2
    assert (await client.get(f"/v1/conversations/{conversation}", headers=h)).json()["message_count"] == 4
    assert (
        await client.post(f"/v1/conversations/{await start(client, h)}/messages", headers=h, json={"content": "q"})
    ).status_code == 200


async def test_a_conversation_bound_to_knowledge_bases_searches_only_those(
    client: httpx.AsyncClient, tenant: TenantHandle, make_tenant: MakeTenant
) -> None:
    h = tenant.headers
    assert (await client.post("/v1/knowledge-bases", headers=h, json={"name": "facilities"})).status_code == 201
    response = await client.post(
        "/v1/ingest?wait=true&knowledge_base=facilities", headers=h, json={"documents": [{"text": FACTS[0]}]}
    )
    (printer,) = [d["document_id"] for d in response.json()["documents"]]
    await ingest_texts(client, tenant, *FACTS[1:])  # the default knowledge base: the rest
    bound = await start(client, h, knowledge_bases=["facilities"])
    first = await ask(client, h, bound, "Where is the coffee machine?")
    assert {c["document_id"] for c in first["citations"]} <= {printer}  # never the default's
    unbound = await start(client, h)
    other = await ask(client, h, unbound, "Where is the coffee machine?")
    assert printer not in {c["document_id"] for c in other["citations"]}
    for missing in (["nope"], [str(uuid.uuid4())]):
        assert_problem(await client.post("/v1/conversations", headers=h, json={"knowledge_bases": missing}), 404)
    stranger = await make_tenant()
    assert_problem(
        await client.post("/v1/conversations", headers=stranger.headers, json={"knowledge_bases": ["facilities"]}), 404
    )
    key = await client.post(
        "/v1/api-keys", headers=h, json={"name": "bot", "scopes": ["query"], "knowledge_bases": ["default"]}
    )
    bot = {"X-API-Key": key.json()["api_key"]}
    assert_problem(await client.post("/v1/conversations", headers=bot, json={"knowledge_bases": ["facilities"]}), 404)
    assert (await client.delete("/v1/knowledge-bases/facilities", headers=h)).status_code == 202
    gone = await client.post(f"/v1/conversations/{bound}/messages", headers=h, json={"content": "And the printer?"})
    assert_problem(gone, 404)  # its knowledge base was deleted: said, not answered from elsewhere
