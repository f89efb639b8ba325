"""The answer cache end to end: exact and semantic hits, SSE replay, invalidation, opt-outs,
tenant isolation over many question pairs, and Redis (real, then dead) behind it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import anyio.to_thread
import httpx
import pytest
from sqlalchemy import text

from ragapi.answering.cache import AnswerCache
from ragapi.answering.exact_cache import ExactCache, RedisCache
from ragapi.answering.semantic_cache import SemanticCache
from ragapi.api.state import AppState
from ragapi.tenants.service import set_cache_policy
from tests.api.helpers import database_round_trips, ingest_texts, sse_events, tasks_started
from tests.conftest import MakeTenant, TenantHandle
from tests.services import RedisServer, free_port
from tests.wire import Reply, openai_stream


async def ask(client: httpx.AsyncClient, tenant: TenantHandle, state: AppState, query: str, **extra: object) -> dict:  # type: ignore[type-arg]
    response = await client.post("/v1/query", headers=tenant.headers, json={"query": query, **extra})
    assert response.status_code == 200, response.text
    await state.answers.cache.drain()  # the answer is stored off the response path
    body: dict = response.json()  # type: ignore[type-arg]
    return body


async def test_exact_then_semantic_hits(client: httpx.AsyncClient, tenant: TenantHandle, app_state: AppState) -> None:
    await ingest_texts(client, tenant, "Employees receive 27 days of annual leave per year.")
    first = await ask(client, tenant, app_state, "How many days of annual leave do employees get?")
    again = await ask(client, tenant, app_state, "how many days of annual leave do employees get")
    paraphrase = await ask(client, tenant, app_state, "How many days of annual leave does an employee get?")
    repeated = await ask(client, tenant, app_state, "How many days of annual leave does an employee get?")
    assert (first["cached"], again["cached"], paraphrase["cached"]) == (False, "exact", "semantic")
    assert repeated["cached"] == "exact"  # a semantic hit is remembered under its own question
    assert first["answer"] == again["answer"] == paraphrase["answer"] == repeated["answer"]
    assert first["citations"] == again["citations"]
    assert again["query_id"] != first["query_id"] and "cache" in again["timings_ms"]
    assert "embed" not in again["timings_ms"]  # an exact hit embeds nothing; a semantic one says how long it did
    assert 0 < paraphrase["timings_ms"]["embed"] <= paraphrase["timings_ms"]["cache"]
    skipped = await ask(client, tenant, app_state, "How many days of annual leave do employees get?", cache=False)
    assert skipped["cached"] is False


async def test_streamed_hit_replays_the_answer_in_one_token_event(
    client: httpx.AsyncClient, tenant: TenantHandle, app_state: AppState, openai_chain
) -> None:  # type: ignore[no-untyped-def]
    replies, _ = openai_chain
    replies.append(Reply(sse=openai_stream(["The gym ", "opens at 6am ", "[1]."])))  # the miss streams 2 events
    await ingest_texts(client, tenant, "The gym is open from 6am. Towels are provided.")
    bodies = []
    for _ in range(2):
        response = await client.post(
            "/v1/query", headers=tenant.headers, json={"query": "When does the gym open?", "stream": True}
        )
        await app_state.answers.cache.drain()
        bodies.append(sse_events(response.text))
    fresh, cached = bodies
    assert [e for e, _ in fresh] == ["sources", "token", "token", "done"]
    assert [e for e, _ in cached] == ["sources", "token", "done"]
    assert "".join(d["text"] for e, d in fresh if e == "token") == cached[1][1]["text"] == cached[-1][1]["answer"]
    assert fresh[-1][1]["cached"] is False and cached[-1][1]["cached"] == "exact"
    assert cached[0][1]["citations"] == fresh[0][1]["citations"]


async def test_deleting_a_cited_document_invalidates(
    client: httpx.AsyncClient, tenant: TenantHandle, app_state: AppState
) -> None:
    (doc,) = await ingest_texts(client, tenant, "The wifi password is hunter2.")
    await ingest_texts(client, tenant, "The printer is on floor 3.")
    question = "What is the wifi password?"
    assert (await ask(client, tenant, app_state, question))["citations"][0]["document_id"] == doc
    assert (await ask(client, tenant, app_state, question))["cached"] == "exact"
    assert (await client.delete(f"/v1/documents/{doc}", headers=tenant.headers)).status_code == 204
    after = await ask(client, tenant, app_state, question)
    assert after["cached"] is False
    assert doc not in json.dumps(after) and "hunter2" not in after["answer"]
    paraphrase = await ask(client, tenant, app_state, "What's the wifi password?")
    assert paraphrase["cached"] in (False, "exact", "semantic") and doc not in json.dumps(paraphrase)


async def test_ingest_invalidates_and_tenant_switch_disables(
    client: httpx.AsyncClient, tenant: TenantHandle, app_state: AppState
) -> None:
    await ingest_texts(client, tenant, "Lunch is served at noon.")
    await ask(client, tenant, app_state, "When is lunch served?")
    assert (await ask(client, tenant, app_state, "When is lunch served?"))["cached"] == "exact"
    await ingest_texts(client, tenant, "On Fridays lunch is served at 1pm.")
    assert (await ask(client, tenant, app_state, "When is lunch served?"))["cached"] is False
    async with app_state.db.admin_session() as session:
        await session.execute(text("UPDATE tenants SET cache_enabled = false WHERE id = :t"), {"t": tenant.tenant_id})
    assert (await ask(client, tenant, app_state, "When is lunch served?"))["cached"] is False
    assert (await ask(client, tenant, app_state, "When is lunch served?"))["cached"] is False


async def test_langserve_routes_use_the_cache(
    client: httpx.AsyncClient, tenant: TenantHandle, app_state: AppState
) -> None:
    await ingest_texts(client, tenant, "Expense claims are paid monthly.")
    outputs = []
    for _ in range(2):
        response = await client.post(
            "/v1/rag/invoke", headers=tenant.headers, json={"input": {"query": "When are expense claims paid?"}}
        )
        await app_state.answers.cache.drain()
        outputs.append(response.json()["output"])
    assert [o["cached"] for o in outputs] == [False, "exact"]


async def test_two_tenants_never_get_each_others_answers(
    client: httpx.AsyncClient, make_tenant, app_state: AppState
) -> None:  # type: ignore[no-untyped-def]
    """Identical and paraphrased questions from two tenants whose documents disagree: 1,020 pairs."""
    a, b = await make_tenant(), await make_tenant()
    facts = {
        "refund": (
            "Refunds are accepted within {} days of purchase.",
            "What is the refund window?",
            "How long is the refund window?",
        ),
        "leave": (
            "Each employee gets {} days of paid leave.",
            "How many days of paid leave do I get?",
            "How many paid leave days do I get?",
        ),
        "notice": ("The notice period is {} days.", "What is the notice period?", "How long is the notice period?"),
    }
    values = {a: "30", b: "14"}
    owned: dict[TenantHandle, set[str]] = {}
    for tenant, value in values.items():
        owned[tenant] = set(await ingest_texts(client, tenant, *[f[0].format(value) for f in facts.values()]))
    questions = [q for f in facts.values() for q in f[1:]]
    pairs = 0
    for _ in range(170):
        for question in questions:
            for tenant in (a, b):
                body = await ask(client, tenant, app_state, question)
                other = b if tenant is a else a
                assert {c["document_id"] for c in body["citations"]} <= owned[tenant]
                assert values[other] + " days" not in body["answer"]
            pairs += 1
    assert pairs >= 1000


def use_cache(
    state: AppState, monkeypatch: pytest.MonkeyPatch, exact: ExactCache, semantic: SemanticCache | None
) -> None:
    """The answering service with these caches instead of its own."""
    fingerprint = state.answers.pipeline.fingerprint()
    monkeypatch.setattr(
        state.answers, "cache", AnswerCache(exact, semantic, state.embeddings, state.settings, fingerprint)
    )


@pytest.fixture
async def redis_backed(
    app_state: AppState, monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer
) -> AsyncIterator[RedisCache]:
    cache = RedisCache(redis_server.url, timeout_s=0.5, cooldown_s=0.0)
    use_cache(app_state, monkeypatch, cache, SemanticCache(app_state.db, 3600))
    yield cache
    await cache.close()


async def test_exact_hits_through_redis(
    client: httpx.AsyncClient, tenant: TenantHandle, app_state: AppState, redis_backed: RedisCache
) -> None:
    await ingest_texts(client, tenant, "Badges are issued at reception.")
    assert (await ask(client, tenant, app_state, "Where are badges issued?"))["cached"] is False
    assert (await ask(client, tenant, app_state, "Where are badges issued?"))["cached"] == "exact"
    assert await redis_backed._redis.dbsize() >= 1


async def test_redis_down_still_answers(
    client: httpx.AsyncClient, tenant: TenantHandle, app_state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = RedisCache(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2)
    use_cache(app_state, monkeypatch, dead, None)
    await ingest_texts(client, tenant, "Parking is free after 6pm.")
    for _ in range(3):
        body = await ask(client, tenant, app_state, "Is parking free in the evening?")
        assert body["cached"] is False and "6pm" in body["answer"]
    stream = await client.post("/v1/query", headers=tenant.headers, json={"query": "parking", "stream": True})
    assert stream.status_code == 200 and sse_events(stream.text)[-1][0] == "done"
    await dead.close()


async def test_redis_dying_mid_service(
    client: httpx.AsyncClient, tenant: TenantHandle, app_state: AppState, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    server = RedisServer(tmp_path)
    server.start()
    cache = RedisCache(server.url, timeout_s=0.3)
    use_cache(app_state, monkeypatch, cache, None)
    await ingest_texts(client, tenant, "The library closes at 8pm.")
    await ask(client, tenant, app_state, "When does the library close?")
    assert (await ask(client, tenant, app_state, "When does the library close?"))["cached"] == "exact"
    server.stop()
    body = await ask(client, tenant, app_state, "When does the library close?")
    assert body["cached"] is False and "8pm" in body["answer"]
    await cache.close()


async def test_hit_and_miss_counters_are_exported(
    client: httpx.AsyncClient, tenant: TenantHandle, app_state: AppState
) -> None:
    def counter(body: str, kind: str, result: str) -> float:
        prefix = f'rag_cache_lookups_total{{result="{result}",type="{kind}"}} '
        line = next((line for line in body.splitlines() if line.startswith(prefix)), prefix + "0")
        return float(line.split()[-1])

    await ingest_texts(client, tenant, "The fire drill is on Thursday.")
    before = (await client.get("/metrics/")).text
    await ask(client, tenant, app_state, "When is the fire drill?")
    await ask(client, tenant, app_state, "When is the fire drill?")
    after = (await client.get("/metrics/")).text
    assert counter(after, "exact", "hit") == counter(before, "exact", "hit") + 1
    assert counter(after, "exact", "miss") == counter(before, "exact", "miss") + 1
    assert counter(after, "semantic", "miss") >= counter(before, "semantic", "miss") + 1


async def test_a_cache_hit_costs_authentication_and_one_statement(
    client: httpx.AsyncClient, tenant: TenantHandle, app_state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load every turn of the event loop is a wait behind other requests' work, so the hit path is
    budgeted: the key lookup, then one statement that charges the quota and reads the knowledge-base
    version (a function that enters the tenant's scope). No transaction commands, no pool pings, and no
    task of its own: no session closed behind `asyncio.shield`, no runnable layer (each of its chunks
    and its end run as tasks)."""
    await ingest_texts(client, tenant, "The staff canteen opens at 11:30 on weekdays.")
    question = "When does the staff canteen open?"
    await ask(client, tenant, app_state, question)
    hops: list[object] = []
    run_sync = anyio.to_thread.run_sync

    async def counted(func: Callable[..., object], *args: object, **kwargs: object) -> object:
        hops.append(func)
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    with database_round_trips(monkeypatch) as trips, tasks_started() as tasks:
        hit = await ask(client, tenant, app_state, question)
    assert hit["cached"] == "exact"
    assert tasks == []
    assert hops == []  # nothing on the thread pool: each hop waits for the GIL and a turn of the loop
    assert len(trips) == 2 and "api_keys" in trips[0] and "admit_query" in trips[1], trips


async def test_a_semantic_hit_costs_as_many_statements_as_an_exact_hit(
    client: httpx.AsyncClient, tenant: TenantHandle, app_state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Admission's statement runs the vector search too, with the partition built from the knowledge-base
    version this process saw last. When the version has moved on (a document arrived), the database does
    not search the old partition and the chain searches the new one itself: a statement more, never an
    answer of the old version."""
    await ingest_texts(client, tenant, "Employees receive 27 days of annual leave per year.")
    await ask(client, tenant, app_state, "How many days of annual leave do employees get?")
    with database_round_trips(monkeypatch) as trips:
        hit = await ask(client, tenant, app_state, "How many days of annual leave does an employee get?")
    assert hit["cached"] == "semantic"
    assert len(trips) == 2 and "api_keys" in trips[0] and "admit_query" in trips[1], trips
    assert 0 < hit["timings_ms"]["embed"] <= hit["timings_ms"]["cache"]

    await ingest_texts(client, tenant, "Contractors receive no paid leave.")
    with database_round_trips(monkeypatch) as trips:
        moved = await ask(client, tenant, app_state, "How many days of annual leave does a worker get?")
    assert moved["cached"] is False  # nothing is cached for the new version yet
    admitted = next(i for i, trip in enumerate(trips) if "admit_query" in trip)
    assert any("semantic_cache_nearest" in trip for trip in trips[admitted:]), trips
    again = await ask(client, tenant, app_state, "How many days of annual leave does one worker get?")
    assert again["cached"] == "semantic" and again["answer"] == moved["answer"]


@pytest.mark.parametrize(
    ("extra", "tenant_cache"), [({}, True), ({"cache": False}, True), ({}, False)], ids=["cached", "opt-out", "off"]
)
async def test_a_miss_embeds_the_question_once(
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    app_state: AppState,
    monkeypatch: pytest.MonkeyPatch,
    extra: dict[str, object],
    tenant_cache: bool,
) -> None:
    """The semantic lookup's embedding (made before admission, once the process knows the tenant's
    version) is the one retrieval searches with (CPU the event loops share); a query that skips the
    cache, or whose tenant has it off, is embedded once too."""
    await ingest_texts(client, tenant, "Bicycle racks are behind building C.")
    await set_cache_policy(app_state.db, tenant.tenant_id, enabled=tenant_cache)
    await ask(client, tenant, app_state, "Is there a canteen?")  # this process now knows the tenant's version
    embedded: list[str] = []
    model = app_state.answers.cache.embeddings
    original = model.aembed_query

    async def counted(text: str) -> list[float]:
        embedded.append(text)
        return await original(text)

    monkeypatch.setattr(model, "aembed_query", counted)
    body = await ask(client, tenant, app_state, "Where are the bicycle racks?", **extra)
    assert body["cached"] is False and "building C" in body["answer"]
    assert embedded == ["Where are the bicycle racks?"]


async def test_a_miss_reads_the_knowledge_base_once(
    client: httpx.AsyncClient, tenant: TenantHandle, app_state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Admission reads it with the cache scope; retrieval searches that same version instead of opening a
    transaction to read it again."""
    await ingest_texts(client, tenant, "Lockers on floor 2 take a one-euro coin.")
    with database_round_trips(monkeypatch) as trips:
        body = await ask(client, tenant, app_state, "What do the lockers on floor 2 take?")
    assert body["cached"] is False and "coin" in body["answer"]
    # admission's statement (admit_query) reads it; nothing else does
    assert len([t for t in trips if "knowledge_bases" in t or "admit_query" in t]) == 1, trips
    # and storing the answer for the semantic cache is one statement on the driver, outside a transaction
    stores = [t for t in trips if "semantic_cache" in t and "nearest" not in t]
    assert len(stores) == 1 and stores[0].startswith("simple: SELECT semantic_cache_store("), trips


async def test_a_tenants_stricter_semantic_threshold_applies_to_its_next_query(
    client: httpx.AsyncClient, make_tenant: MakeTenant, app_state: AppState
) -> None:
    """The paraphrase that the service's threshold serves from the cache is answered afresh once the tenant
    raises its own threshold (read at admission, so no restart and no cache flush)."""
    question, paraphrase = (
        "How many days of annual leave do staff get?",
        "How many days of annual leave does staff get?",
    )
    strict, lenient = await make_tenant(), await make_tenant()
    for tenant in (strict, lenient):
        await ingest_texts(client, tenant, "Staff receive 27 days of annual leave per year.")
        await ask(client, tenant, app_state, question)
    await set_cache_policy(app_state.db, strict.tenant_id, semantic_threshold=0.999)
    assert (await ask(client, lenient, app_state, paraphrase))["cached"] == "semantic"
    assert (await ask(client, strict, app_state, paraphrase))["cached"] is False
    # the lenient tenant's match is remembered as an exact entry, but only while its policy allows it
    assert (await ask(client, lenient, app_state, paraphrase))["cached"] == "exact"
    await set_cache_policy(app_state.db, lenient.tenant_id, semantic_threshold=0.999)
    assert (await ask(client, lenient, app_state, paraphrase))["cached"] is False
    assert (await ask(client, lenient, app_state, question))["cached"] == "exact"  # its own question still is


async def test_a_cache_hit_is_one_runnable_run_of_one_chunk(
    client: httpx.AsyncClient, tenant: TenantHandle, app_state: AppState
) -> None:
    """Each runnable layer costs every call its config and callback set-up and every chunk a loop turn:
    a tracer (LangSmith, stream_events) sees a hit as the one `rag` run, with no wrapper runs, and the
    hit arrives as one chunk with everything a response has."""
    from langchain_core.callbacks import AsyncCallbackHandler

    from ragapi.api.langserve import TENANT, runnable
    from ragapi.tenants.service import operator_context

    class Runs(AsyncCallbackHandler):
        def __init__(self) -> None:
            self.names: list[str] = []

        async def on_chain_start(self, serialized: object, inputs: object, **kwargs: object) -> None:
            self.names.append(str(kwargs.get("name")))

    await ingest_texts(client, tenant, "The bike shed is next to gate B.")
    rag = runnable(app_state.answers, app_state.conversations)
    question = {"query": "Where is the bike shed?"}
    scope = await operator_context(app_state.db, app_state.settings, tenant.tenant_id)
    config = {"configurable": {TENANT: scope}}
    await rag.ainvoke(question, config=config)
    await app_state.answers.cache.drain()
    runs = Runs()
    hit = await rag.ainvoke(question, config={**config, "callbacks": [runs]})
    assert hit["cached"] == "exact"
    assert runs.names == ["rag"]
    chunks = [chunk async for chunk in rag.astream(question, config=config)]
    assert len(chunks) == 1
    assert chunks[0]["answer"] == hit["answer"] and chunks[0]["citations"] == hit["citations"]
    assert chunks[0]["cached"] == "exact" and "total" in chunks[0]["timings_ms"]
