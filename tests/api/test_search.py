"""POST /v1/search: passages with citations and no answer, through the retrieval path answers take, scoped
to the caller's tenant and knowledge bases, charged as a query and in its query log, bad input refused as
problems."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text

from ragapi.api.state import AppState
from tests.api.helpers import assert_problem, ingest_texts
from tests.api.test_knowledge_bases import HANDBOOK, WIKI, create, ingest, restricted_key
from tests.conftest import MakeTenant, TenantHandle, UserHandle


async def search(client: httpx.AsyncClient, headers: dict[str, str], query: str, **fields: Any) -> httpx.Response:
    return await client.post("/v1/search", headers=headers, json={"query": query, **fields})


async def test_passages_come_with_their_citations_as_an_answer_cites_them(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    ids = await ingest_texts(
        client,
        tenant,
        "The badge office is in building C, room 12.",
        "Lunch is served from noon to two.",
        metadata={"lang": "en"},
    )
    found = await search(client, tenant.headers, "Where is the badge office?", top_k=1)
    assert found.status_code == 200, found.text
    body = found.json()
    assert set(body) == {"query_id", "passages"}
    (passage,) = body["passages"]
    assert passage["n"] == 1 and passage["document_id"] == ids[0] and passage["title"]
    assert passage["text"] == "The badge office is in building C, room 12." and passage["snippet"] == passage["text"]
    answer = (
        await client.post("/v1/query", headers=tenant.headers, json={"query": "Where is the badge office?"})
    ).json()
    assert answer["citations"][0]["chunk_id"] == passage["chunk_id"]  # the same retrieval
    filtered = await search(client, tenant.headers, "badge office", filters={"lang": "de"})
    assert filtered.json()["passages"] == []


async def test_tenants_and_restricted_keys_search_only_their_own(
    client: httpx.AsyncClient, tenant: TenantHandle, make_tenant: MakeTenant
) -> None:
    await create(client, tenant, "handbook")
    await create(client, tenant, "wiki")
    await ingest(client, tenant, "handbook", *HANDBOOK)
    await ingest(client, tenant, "wiki", *WIKI)
    both = await search(client, tenant.headers, "annual leave deployments", knowledge_bases=["handbook", "wiki"])
    assert {p["text"] for p in both.json()["passages"]} >= {HANDBOOK[0], WIKI[0]}
    only = (await search(client, tenant.headers, "annual leave deployments", knowledge_bases=["wiki"])).json()
    assert only["passages"] and all(p["text"] in WIKI for p in only["passages"])

    bot = {"X-API-Key": await restricted_key(client, tenant, "handbook", scopes=["query"])}
    assert_problem(await search(client, bot, "failed deployment?", knowledge_bases=["wiki"]), 404)
    mine = (await search(client, bot, "failed deployment?")).json()["passages"]
    assert mine and all(p["text"] in HANDBOOK for p in mine)

    other = await make_tenant()
    assert (await search(client, other.headers, "annual leave deployments")).json()["passages"] == []
    assert_problem(await search(client, other.headers, "annual leave", knowledge_bases=["handbook"]), 404)


async def test_bad_searches_are_problems(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    assert_problem(await client.post("/v1/search", json={"query": "x"}), 401)
    assert_problem(await search(client, tenant.headers, ""), 422)
    assert_problem(await search(client, tenant.headers, "x" * 501), 422)  # MAX_QUERY_CHARS of the tests
    assert_problem(await search(client, tenant.headers, "x", top_k=0), 422)
    assert_problem(await search(client, tenant.headers, "x", top_k=10_000), 422)
    assert_problem(await search(client, tenant.headers, "x", filters={"$where": 1}), 422)
    assert_problem(await search(client, tenant.headers, "x", tenant_id="someone else's"), 422)
    assert_problem(await search(client, tenant.headers, "x\u0000"), 422)


async def test_a_search_is_charged_as_a_query(
    client: httpx.AsyncClient, tenant: TenantHandle, superadmin: UserHandle
) -> None:
    await client.patch(f"/v1/tenants/{tenant.tenant_id}", headers=superadmin.headers, json={"monthly_query_quota": 2})
    assert (await search(client, tenant.headers, "first")).status_code == 200
    assert (await search(client, tenant.headers, "second")).status_code == 200
    spent = assert_problem(await search(client, tenant.headers, "third"), 429)
    assert spent["title"] == "Quota exceeded"
    usage = (await client.get("/v1/tenant", headers=tenant.headers)).json()["usage"]
    assert usage["queries"] == 2


async def test_a_search_is_in_the_query_log_and_its_passages_can_be_rated(
    client: httpx.AsyncClient, tenant: TenantHandle, make_tenant: MakeTenant, app_state: AppState
) -> None:
    (badge,) = await ingest_texts(client, tenant, "The badge office is in building C, room 12.")
    found = (await search(client, tenant.headers, "Where is the badge office?", top_k=1)).json()
    (passage,) = found["passages"]
    assert app_state.query_log is not None
    await app_state.query_log.flush()
    async with app_state.db.tenant_session(tenant.tenant_id) as session:
        row = (await session.execute(text("SELECT * FROM query_log WHERE id = :q"), {"q": found["query_id"]})).one()
    assert (row.surface, row.status, row.cache, row.query, row.sources) == (
        "rest",
        "ok",
        "none",
        "Where is the badge office?",
        1,
    )
    assert [str(c) for c in row.chunk_ids] == [passage["chunk_id"]] and row.cited_chunk_ids == []
    assert row.model is None and row.prompt_tokens == row.completion_tokens == 0 and row.embedding_tokens > 0
    assert row.retrieve_ms is not None and row.total_ms >= row.retrieve_ms and row.generate_ms is None

    rating = {"query_id": found["query_id"], "rating": 1, "chunk_ids": [passage["chunk_id"]]}
    assert (await client.post("/v1/feedback", headers=tenant.headers, json=rating)).status_code == 201
    exported = (await client.get("/v1/feedback/export", headers=tenant.headers)).json()
    assert {"_id": found["query_id"], "text": "Where is the badge office?"} in exported["queries"]
    assert {"query-id": found["query_id"], "corpus-id": badge, "score": 1} in exported["qrels"]
    other = await make_tenant()
    assert_problem(await client.post("/v1/feedback", headers=other.headers, json=rating), 404)
