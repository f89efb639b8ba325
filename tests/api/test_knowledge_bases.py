"""Knowledge bases end to end: managing them, ingesting into and asking over one or several, their own
settings, keys restricted to some, and deleting one with everything it holds."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import text

from ragapi.api.state import AppState
from tests.api.helpers import assert_problem, sse_events
from tests.conftest import TenantHandle

HANDBOOK = (
    "Employees get 27 days of annual leave. Leave requests go to the line manager two weeks ahead.",
    "The office opens at eight. Visitors sign in at the front desk on the ground floor.",
)
WIKI = (
    "Deployments run from the main branch. A failed deployment rolls back to the previous release.",
    "The staging cluster is rebuilt every night at two. Its database is a copy of production.",
)


async def create(client: httpx.AsyncClient, tenant: TenantHandle, name: str, **fields: Any) -> dict[str, Any]:
    response = await client.post("/v1/knowledge-bases", headers=tenant.headers, json={"name": name, **fields})
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/v1/knowledge-bases/{response.json()['id']}"
    return dict(response.json())


async def ingest(client: httpx.AsyncClient, tenant: TenantHandle, kb: str | None, *texts: str) -> list[str]:
    suffix = f"&knowledge_base={kb}" if kb is not None else ""
    response = await client.post(
        f"/v1/ingest?wait=true{suffix}", headers=tenant.headers, json={"documents": [{"text": t} for t in texts]}
    )
    assert response.status_code == 200, response.text
    return [d["document_id"] for d in response.json()["documents"]]


async def ask(client: httpx.AsyncClient, headers: dict[str, str], query: str, **fields: Any) -> httpx.Response:
    return await client.post("/v1/query", headers=headers, json={"query": query, **fields})


async def restricted_key(client: httpx.AsyncClient, tenant: TenantHandle, *kbs: str, scopes: list[str]) -> str:
    body = {"name": "bot", "scopes": scopes, "knowledge_bases": list(kbs)}
    response = await client.post("/v1/api-keys", headers=tenant.headers, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["api_key"])


def documents_of(answer: dict[str, Any]) -> set[str]:
    return {c["document_id"] for c in answer["citations"]}


async def test_a_tenant_keeps_collections_apart_and_can_ask_over_several(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    handbook = await create(client, tenant, "handbook", description="HR policies")
    wiki = await create(client, tenant, "wiki")
    assert handbook["default"] is False and handbook["status"] == "active" and handbook["chunks"] == 0
    hr = await ingest(client, tenant, "handbook", *HANDBOOK)
    eng = await ingest(client, tenant, wiki["id"], *WIKI)  # by id or by name

    only_hr = (await ask(client, tenant.headers, "How many days of annual leave?", knowledge_bases=["handbook"])).json()
    assert documents_of(only_hr) <= set(hr) and only_hr["citations"]
    only_eng = (await ask(client, tenant.headers, "How many days of annual leave?", knowledge_bases=["wiki"])).json()
    assert documents_of(only_eng) <= set(eng)  # the wiki has no leave policy: never the handbook's
    both = (
        await ask(
            client, tenant.headers, "annual leave and failed deployments", knowledge_bases=["handbook", wiki["id"]]
        )
    ).json()
    assert documents_of(both) & set(hr) and documents_of(both) & set(eng)  # one ranking over both

    listed = (await client.get("/v1/documents?knowledge_base=wiki", headers=tenant.headers)).json()
    assert {d["document_id"] for d in listed["items"]} == set(eng)
    assert all(d["knowledge_base_id"] == wiki["id"] for d in listed["items"])
    everything = (await client.get("/v1/documents", headers=tenant.headers)).json()
    assert {d["document_id"] for d in everything["items"]} == set(hr) | set(eng)
    names = [kb["name"] for kb in (await client.get("/v1/knowledge-bases", headers=tenant.headers)).json()]
    assert names == ["handbook", "wiki"]  # the default appears once something is ingested into it
    by_name = (await client.get("/v1/knowledge-bases/handbook", headers=tenant.headers)).json()
    assert by_name["id"] == handbook["id"] and by_name["chunks"] >= 2 and by_name["version"] > 0


async def test_clients_that_name_no_knowledge_base_keep_working(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    await create(client, tenant, "wiki")
    await ingest(client, tenant, "wiki", *WIKI)
    mine = await ingest(client, tenant, None, *HANDBOOK)  # as before: the tenant's default
    answer = (await ask(client, tenant.headers, "What happens to a failed deployment?")).json()
    assert documents_of(answer) <= set(mine)  # the default only, never the wiki
    listed = (await client.get("/v1/knowledge-bases", headers=tenant.headers)).json()
    default = next(kb for kb in listed if kb["default"])
    assert (default["id"], default["name"]) == (str(tenant.tenant_id), "default")
    same = (await ask(client, tenant.headers, "How many days of annual leave?", knowledge_bases=["default"])).json()
    assert documents_of(same) <= set(mine) and same["citations"]


async def test_bad_names_and_settings_are_clear_errors(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    await create(client, tenant, "handbook")
    clash = assert_problem(
        await client.post("/v1/knowledge-bases", headers=tenant.headers, json={"name": "handbook"}), 409
    )
    assert "already has a knowledge base named" in clash["detail"]
    assert clash["errors"] == [{"loc": ["name"], "msg": clash["detail"], "type": "conflict"}]  # a form shows it there
    kept = await client.post("/v1/knowledge-bases", headers=tenant.headers, json={"name": "default"})
    assert assert_problem(kept, 409)["errors"][0]["loc"] == ["name"]
    id_like = await client.post("/v1/knowledge-bases", headers=tenant.headers, json={"name": str(uuid.uuid4())})
    assert "look like" in assert_problem(id_like, 422)["detail"]
    assert assert_problem(id_like, 422)["errors"][0]["loc"] == ["name"]
    for settings, named in (
        ({"top_k": 5000}, "settings.top_k"),
        ({"chunk_size_tokens": 64, "chunk_overlap_tokens": 64}, "settings.chunk_overlap_tokens"),
        ({"answer_mode": "llm"}, "settings.answer_mode"),
        ({"rerank": True}, "settings.rerank"),
        ({"embedding_model": "text-embedding-3-large"}, "settings.embedding_model"),
        ({"fusion_dense_weight": 2}, "fusion_dense_weight"),
        ({"temperature": 0.2}, "temperature"),
    ):
        body = {"name": f"kb-{uuid.uuid4().hex[:6]}", "settings": settings}
        problem = assert_problem(await client.post("/v1/knowledge-bases", headers=tenant.headers, json=body), 422)
        # every one names its field in `errors`, the service's own checks as the schema's do
        assert any(".".join(map(str, e["loc"])).endswith(named) for e in problem["errors"]), problem
    patched = await client.patch("/v1/knowledge-bases/handbook", headers=tenant.headers, json={"name": "default"})
    assert assert_problem(patched, 409)["errors"][0]["loc"] == ["name"]
    many = await client.patch(
        "/v1/knowledge-bases/handbook", headers=tenant.headers, json={"settings": {"top_k": 5000}}
    )
    assert assert_problem(many, 422)["errors"][0]["loc"] == ["settings", "top_k"]
    for missing in ("nope", str(uuid.uuid4())):
        assert_problem(await client.get(f"/v1/knowledge-bases/{missing}", headers=tenant.headers), 404)
        assert_problem(await ask(client, tenant.headers, "anything?", knowledge_bases=[missing]), 404)
        response = await client.post(
            f"/v1/ingest?knowledge_base={missing}", headers=tenant.headers, json={"documents": [{"text": "x"}]}
        )
        assert_problem(response, 404)
    assert_problem(await ask(client, tenant.headers, "anything?", knowledge_bases=[]), 422)
    assert_problem(await ask(client, tenant.headers, "anything?", knowledge_bases=[""]), 422)


async def test_another_tenant_and_a_restricted_key_see_nothing_else(
    client: httpx.AsyncClient, tenant: TenantHandle, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    handbook = await create(client, tenant, "handbook")
    wiki = await create(client, tenant, "wiki")
    hr = await ingest(client, tenant, "handbook", *HANDBOOK)
    eng = await ingest(client, tenant, "wiki", *WIKI)
    other = await make_tenant()
    for ref in ("handbook", handbook["id"]):
        assert_problem(await client.get(f"/v1/knowledge-bases/{ref}", headers=other.headers), 404)
        assert_problem(await ask(client, other.headers, "annual leave?", knowledge_bases=[ref]), 404)
        response = await client.post(
            f"/v1/ingest?knowledge_base={ref}", headers=other.headers, json={"documents": [{"text": "x"}]}
        )
        assert_problem(response, 404)
    assert (await client.get("/v1/knowledge-bases", headers=other.headers)).json() == []

    bot = {"X-API-Key": await restricted_key(client, tenant, "handbook", scopes=["ingest"])}
    assert [kb["name"] for kb in (await client.get("/v1/knowledge-bases", headers=bot)).json()] == ["handbook"]
    assert_problem(await client.get(f"/v1/knowledge-bases/{wiki['id']}", headers=bot), 404)
    assert_problem(await ask(client, bot, "failed deployment?", knowledge_bases=["wiki"]), 404)
    assert_problem(await ask(client, bot, "failed deployment?", knowledge_bases=["handbook", "wiki"]), 404)
    assert_problem(await client.get(f"/v1/documents/{eng[0]}", headers=bot), 404)
    assert_problem(await client.delete(f"/v1/documents/{eng[0]}", headers=bot), 404)
    listed = (await client.get("/v1/documents", headers=bot)).json()
    assert {d["document_id"] for d in listed["items"]} == set(hr)
    response = await client.post("/v1/ingest?knowledge_base=wiki", headers=bot, json={"documents": [{"text": "x"}]})
    assert_problem(response, 404)
    unnamed = (await ask(client, bot, "What happens to a failed deployment?")).json()  # its only one
    assert documents_of(unnamed) <= set(hr)
    langserve = await client.post(
        "/v1/rag/invoke", headers=bot, json={"input": {"query": "deployments?", "knowledge_bases": ["wiki"]}}
    )
    assert_problem(langserve, 404)
    served = await client.post(
        "/v1/rag/invoke", headers=bot, json={"input": {"query": "annual leave?", "knowledge_bases": ["handbook"]}}
    )
    assert served.status_code == 200 and documents_of(served.json()["output"]) <= set(hr)

    admin_bot = {"X-API-Key": await restricted_key(client, tenant, "handbook", scopes=["admin"])}
    wider = await client.post("/v1/api-keys", headers=admin_bot, json={"name": "wider", "scopes": ["query"]})
    assert_problem(wider, 403)  # cannot mint a key that reaches the wiki
    assert_problem(await client.post("/v1/knowledge-bases", headers=admin_bot, json={"name": "mine"}), 403)
    assert_problem(await client.delete("/v1/knowledge-bases/wiki", headers=admin_bot), 404)
    foreign = await client.post(
        "/v1/api-keys", headers=tenant.headers, json={"name": "x", "scopes": ["query"], "knowledge_bases": ["nope"]}
    )
    assert_problem(foreign, 404)


async def test_a_key_restricted_to_several_must_name_one(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    await create(client, tenant, "handbook")
    await create(client, tenant, "wiki")
    bot = {"X-API-Key": await restricted_key(client, tenant, "handbook", "wiki", scopes=["query"])}
    assert "name one" in assert_problem(await ask(client, bot, "anything?"), 422)["detail"]
    assert (await ask(client, bot, "anything?", knowledge_bases=["wiki"])).status_code == 200


async def test_a_knowledge_bases_own_settings_apply(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    small = await create(
        client, tenant, "small", settings={"chunk_size_tokens": 32, "chunk_overlap_tokens": 0, "top_k": 1}
    )
    assert small["settings"] == {"chunk_size_tokens": 32, "chunk_overlap_tokens": 0, "top_k": 1}
    await create(client, tenant, "large")
    long_text = " ".join(HANDBOOK + WIKI)
    await ingest(client, tenant, "small", long_text)
    await ingest(client, tenant, "large", long_text)
    kbs = {kb["name"]: kb for kb in (await client.get("/v1/knowledge-bases", headers=tenant.headers)).json()}
    assert kbs["small"]["chunks"] > kbs["large"]["chunks"]  # its own chunk size
    answer = (await ask(client, tenant.headers, "annual leave?", knowledge_bases=["small"])).json()
    assert len(answer["citations"]) == 1  # its own top_k
    assert (
        len((await ask(client, tenant.headers, "leave?", knowledge_bases=["small"], top_k=3)).json()["citations"]) > 1
    )

    cached = (await ask(client, tenant.headers, "annual leave?", knowledge_bases=["small"])).json()
    assert cached["cached"] == "exact"
    patched = await client.patch(
        "/v1/knowledge-bases/small", headers=tenant.headers, json={"settings": {"top_k": 2}, "description": "d"}
    )
    assert patched.status_code == 200 and patched.json()["settings"]["top_k"] == 2
    assert patched.json()["settings"]["chunk_size_tokens"] == 32  # the others stay
    after = (await ask(client, tenant.headers, "annual leave?", knowledge_bases=["small"])).json()
    assert after["cached"] is False and len(after["citations"]) == 2  # new settings, no stale answer
    reset = await client.patch("/v1/knowledge-bases/small", headers=tenant.headers, json={"settings": {"top_k": None}})
    assert "top_k" not in reset.json()["settings"]
    model = await client.patch(
        "/v1/knowledge-bases/small", headers=tenant.headers, json={"settings": {"embedding_model": "other-model"}}
    )
    assert_problem(model, 422)


async def test_the_same_question_is_cached_per_knowledge_base(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    await create(client, tenant, "handbook")
    await create(client, tenant, "wiki")
    hr = await ingest(client, tenant, "handbook", *HANDBOOK)
    eng = await ingest(client, tenant, "wiki", *WIKI)
    question = "What should I know first?"
    first = (await ask(client, tenant.headers, question, knowledge_bases=["handbook"])).json()
    second = (await ask(client, tenant.headers, question, knowledge_bases=["wiki"])).json()
    assert second["cached"] is False and documents_of(second) <= set(eng) and documents_of(first) <= set(hr)
    again = (await ask(client, tenant.headers, question, knowledge_bases=["handbook"])).json()
    assert again["cached"] == "exact" and documents_of(again) == documents_of(first)


async def test_deleting_a_knowledge_base_removes_everything_it_holds(
    client: httpx.AsyncClient, tenant: TenantHandle, app_state: AppState
) -> None:
    wiki = await create(client, tenant, "wiki")
    await create(client, tenant, "handbook")
    await ingest(client, tenant, "wiki", *WIKI)
    kept = await ingest(client, tenant, "handbook", *HANDBOOK)
    await ask(client, tenant.headers, "failed deployment?", knowledge_bases=["wiki"])
    await app_state.answers.cache.drain()

    deleting = await client.delete("/v1/knowledge-bases/wiki", headers=tenant.headers)
    assert deleting.status_code == 202, deleting.text
    assert deleting.json()["status"] == "deleting" and deleting.json()["deletion"]["documents_total"] == 2
    assert_problem(await ask(client, tenant.headers, "failed deployment?", knowledge_bases=["wiki"]), 404)
    await app_state.knowledge_bases.drain()
    assert_problem(await client.get(f"/v1/knowledge-bases/{wiki['id']}", headers=tenant.headers), 404)
    async with app_state.db.tenant_session(tenant.tenant_id) as session:
        for table in ("documents", "chunks", "sparse_terms", "sparse_term_deltas"):
            left = (
                await session.execute(
                    text(f"SELECT count(*) FROM {table} WHERE knowledge_base_id = :k"),  # noqa: S608
                    {"k": wiki["id"]},
                )
            ).scalar_one()
            assert left == 0, table
        entries = (
            await session.execute(
                text("SELECT count(*) FROM semantic_cache WHERE :k = ANY(knowledge_base_ids)"), {"k": wiki["id"]}
            )
        ).scalar_one()
    assert entries == 0
    listed = (await client.get("/v1/documents", headers=tenant.headers)).json()
    assert {d["document_id"] for d in listed["items"]} == set(kept)
    again = await create(client, tenant, "wiki")  # the name is free again; a new one, empty
    assert again["id"] != wiki["id"] and again["chunks"] == 0
    fresh = (await ask(client, tenant.headers, "failed deployment?", knowledge_bases=["wiki"])).json()
    assert fresh["citations"] == [] and fresh["cached"] is False


async def test_analytics_group_and_filter_by_knowledge_base(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    handbook = await create(client, tenant, "handbook")
    wiki = await create(client, tenant, "wiki")
    await ingest(client, tenant, "handbook", *HANDBOOK)
    await ingest(client, tenant, "wiki", *WIKI)
    for _ in range(2):
        await ask(client, tenant.headers, "annual leave?", knowledge_bases=["handbook"], cache=False)
    await ask(client, tenant.headers, "leave and deployments?", knowledge_bases=["handbook", "wiki"], cache=False)
    grouped = (await client.get("/v1/analytics?group_by=knowledge_base", headers=tenant.headers)).json()
    counts = {g["id"]: g["queries"] for g in grouped["groups"]}
    assert counts == {handbook["id"]: 3, wiki["id"]: 1}
    only = (await client.get("/v1/analytics?knowledge_base=wiki", headers=tenant.headers)).json()
    assert only["queries"] == 1 and only["ingest"]["documents"] == 2


async def test_the_stream_and_langserve_search_the_named_knowledge_bases(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    await create(client, tenant, "wiki")
    eng = await ingest(client, tenant, "wiki", *WIKI)
    await ingest(client, tenant, None, *HANDBOOK)
    streamed = await client.post(
        "/v1/query",
        headers=tenant.headers,
        json={"query": "When is staging rebuilt?", "knowledge_bases": ["wiki"], "stream": True},
    )
    events = dict(sse_events(streamed.text))
    assert {c["document_id"] for c in events["sources"]["citations"]} <= set(eng)
    invoked = await client.post(
        "/v1/rag/invoke", headers=tenant.headers, json={"input": {"query": "staging?", "knowledge_bases": ["wiki"]}}
    )
    assert documents_of(invoked.json()["output"]) <= set(eng)
    bad = await client.post(
        "/v1/rag/invoke", headers=tenant.headers, json={"input": {"query": "staging?", "knowledge_bases": "wiki"}}
    )
    assert_problem(bad, 422)


async def test_a_deletion_cut_short_by_a_restart_is_resumed(
    client: httpx.AsyncClient, tenant: TenantHandle, app_state: AppState
) -> None:
    wiki = await create(client, tenant, "wiki")
    await ingest(client, tenant, "wiki", *WIKI)
    async with app_state.db.tenant_session(tenant.tenant_id) as session:  # what a process that died left
        await session.execute(
            text("UPDATE knowledge_bases SET status = 'deleting', deletion = '{\"documents\": 2}' WHERE id = :k"),
            {"k": wiki["id"]},
        )
    assert (await client.get(f"/v1/knowledge-bases/{wiki['id']}", headers=tenant.headers)).json()["deletion"] == {
        "documents_total": 2,
        "documents_deleted": 0,
        "requested_at": None,
    }
    assert await app_state.knowledge_bases.resume_deletions() >= 1
    await app_state.knowledge_bases.drain()
    assert_problem(await client.get(f"/v1/knowledge-bases/{wiki['id']}", headers=tenant.headers), 404)


async def test_a_knowledge_bases_answer_mode_picks_the_answerer(
    client: httpx.AsyncClient, tenant: TenantHandle, openai_chain
) -> None:  # type: ignore[no-untyped-def]
    """With an LLM configured (OpenAI at the wire level), a knowledge base whose answer mode is
    `extractive` is answered with quoted sentences, and the default one by the model."""
    from tests.wire import Reply, openai_stream

    replies, server = openai_chain
    replies.append(Reply(sse=openai_stream(["27 days ", "[1]."])))
    await create(client, tenant, "quotes", settings={"answer_mode": "extractive"})
    await ingest(client, tenant, "quotes", *HANDBOOK)
    await ingest(client, tenant, None, *HANDBOOK)
    quoted = (await ask(client, tenant.headers, "How many days of leave?", knowledge_bases=["quotes"])).json()
    written = (await ask(client, tenant.headers, "How many days of leave?")).json()
    assert quoted["mode"] == "extractive" and "27 days of annual leave" in quoted["answer"]
    assert written["mode"] == "generative" and written["answer"] == "27 days [1]."
    assert len(server.requests) == 1  # the extractive one never reached the model


async def test_a_tenant_has_at_most_max_knowledge_bases(
    client: httpx.AsyncClient, tenant: TenantHandle, app_state: AppState, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(app_state.settings, "max_knowledge_bases", 2)
    await ingest(client, tenant, None, HANDBOOK[0])  # the default counts
    await create(client, tenant, "wiki")
    refused = await client.post("/v1/knowledge-bases", headers=tenant.headers, json={"name": "third"})
    assert "MAX_KNOWLEDGE_BASES" in assert_problem(refused, 409)["detail"]
    assert (await client.delete("/v1/knowledge-bases/wiki", headers=tenant.headers)).status_code == 202
    await app_state.knowledge_bases.drain()
    await create(client, tenant, "third")  # room again once one is gone
