"""The query log and /v1/analytics checked against a known sequence of queries: counts, cache hits,
error rate, tokens and cost from the provider's usage, latency percentiles, surfaces and groups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest

from ragapi.api.state import AppState
from tests.api.helpers import assert_problem, ingest_texts
from tests.conftest import MakeUser, TenantHandle, UserHandle
from tests.wire import Reply, openai_stream

pytestmark = pytest.mark.usefixtures("openai_chain")


def window() -> dict[str, str]:
    now = datetime.now(UTC)
    return {"start": (now - timedelta(minutes=5)).isoformat(), "end": (now + timedelta(minutes=5)).isoformat()}


async def test_numbers_match_a_known_sequence(
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    openai_chain,
    make_user: MakeUser,
) -> None:  # type: ignore[no-untyped-def]
    replies, _ = openai_chain
    await ingest_texts(
        client, tenant, "Parental leave is 16 weeks at full pay.", "Sick leave needs a note after 3 days."
    )
    member = await make_user(tenant.tenant_id, "member")
    replies.append(
        Reply(sse=openai_stream(["16 weeks ", "[1]."], usage={"prompt_tokens": 1000, "completion_tokens": 200}))
    )
    replies.append(
        Reply(sse=openai_stream(["After 3 days ", "[2]."], usage={"prompt_tokens": 500, "completion_tokens": 100}))
    )
    replies.append(Reply(status=400, body={"error": {"message": "bad", "type": "invalid_request_error", "code": None}}))
    ask = {"query": "How long is parental leave?"}
    first = await client.post("/v1/query", headers=tenant.headers, json=ask)
    hit = await client.post("/v1/query", headers=tenant.headers, json=ask)  # exact cache hit: no tokens
    sick = await client.post(
        "/v1/query", headers=member.headers, json={"query": "When is a sick note needed?", "stream": True}
    )
    failed = await client.post("/v1/query", headers=tenant.headers, json={"query": "anything else?"})
    assert (first.status_code, hit.json()["cached"], sick.status_code, failed.status_code) == (200, "exact", 200, 502)
    assert first.json()["usage"] == {
        "prompt_tokens": 1000,
        "completion_tokens": 200,
        "embedding_tokens": first.json()["usage"]["embedding_tokens"],
        "estimated": False,
    }

    report = await client.get("/v1/analytics", headers=tenant.headers, params={**window(), "group_by": "key"})
    assert report.status_code == 200, report.text
    data = report.json()
    assert data["queries"] == 4 and data["errors"] == 1 and data["error_rate"] == 0.25
    assert data["cache"] == {"exact_hits": 1, "semantic_hits": 0, "hit_rate": 0.25}
    assert data["tokens"]["prompt"] == 1500 and data["tokens"]["completion"] == 300
    # gpt-4o list price: $2.50 / 1M prompt, $10 / 1M completion; the local embedder is free
    assert data["cost_usd"] == pytest.approx(1500 * 2.5e-6 + 300 * 10e-6)
    totals = [r.json()["timings_ms"]["total"] for r in (first, hit)]
    sse_total = await _sse_total(client, tenant)  # the streamed answer's timings are in its `done` event
    expected = np.percentile([*totals, sse_total], [50, 95, 99])
    got = data["latency_ms"]["total"]
    assert [got["p50"], got["p95"], got["p99"]] == pytest.approx(list(expected), abs=0.05)
    assert data["latency_ms"]["generate"]["p50"] is not None
    keys = {g["id"]: g["queries"] for g in data["groups"]}
    assert sum(keys.values()) == 3 and len(keys) == 1  # the member's query was a user's, not a key's
    users = (await client.get("/v1/analytics", headers=tenant.headers, params={**window(), "group_by": "user"})).json()
    assert [(g["id"], g["queries"]) for g in users["groups"]] == [(str(member.user_id), 1)]
    assert data["ingest"]["documents"] == 2 and data["ingest"]["chunks"] == 2
    assert {t["query"]: t["count"] for t in data["top_queries"]}["how long is parental leave?"] == 2
    assert len(data["series"]) >= 1 and sum(b["queries"] for b in data["series"]) == 4


async def _sse_total(client: httpx.AsyncClient, tenant: TenantHandle) -> float:
    app_state: AppState = client._transport.app.state.services  # type: ignore[attr-defined]
    assert app_state.query_log is not None
    await app_state.query_log.flush()
    async with app_state.db.tenant_session(tenant.tenant_id) as session:
        from sqlalchemy import text

        row = (
            await session.execute(
                text("SELECT total_ms FROM query_log WHERE tenant_id = :t AND surface = 'sse'"), {"t": tenant.tenant_id}
            )
        ).one()
    return float(row.total_ms)


async def test_every_surface_is_logged(
    client: httpx.AsyncClient, tenant: TenantHandle, app_state: AppState, openai_chain
) -> None:  # type: ignore[no-untyped-def]
    replies, _ = openai_chain
    await ingest_texts(client, tenant, "The office opens at 9.")
    for _ in range(3):
        replies.append(Reply(sse=openai_stream(["At 9 [1]."], usage={"prompt_tokens": 10, "completion_tokens": 5})))
    await client.post("/v1/query", headers=tenant.headers, json={"query": "When does the office open?", "cache": False})
    await client.post(
        "/v1/query", headers=tenant.headers, json={"query": "Office opening hour?", "stream": True, "cache": False}
    )
    await client.post(
        "/v1/rag/invoke", headers=tenant.headers, json={"input": {"query": "What time do we open?", "cache": False}}
    )
    assert app_state.query_log is not None
    await app_state.query_log.flush()
    from sqlalchemy import text

    async with app_state.db.tenant_session(tenant.tenant_id) as session:
        rows = (
            await session.execute(
                text(
                    "SELECT surface, cited_chunk_ids, chunk_ids, model, request_id FROM query_log WHERE tenant_id = :t"
                ),
                {"t": tenant.tenant_id},
            )
        ).all()
    assert sorted(r.surface for r in rows) == ["langserve", "rest", "sse"]
    assert all(r.model == "gpt-4o" and len(r.cited_chunk_ids) == 1 and r.request_id for r in rows)


async def test_who_may_read_analytics(
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    make_tenant,
    make_user: MakeUser,
    superadmin: UserHandle,  # type: ignore[no-untyped-def]
) -> None:
    other = await make_tenant()
    member = await make_user(tenant.tenant_id, "member")
    assert_problem(await client.get("/v1/analytics", headers=member.headers), 403)
    assert_problem(
        await client.get("/v1/analytics", headers=tenant.headers, params={"tenant_id": str(other.tenant_id)}), 422
    )
    everyone = await client.get("/v1/analytics", headers=superadmin.headers, params=window())
    one = await client.get(
        "/v1/analytics", headers=superadmin.headers, params={**window(), "tenant_id": str(tenant.tenant_id)}
    )
    assert everyone.status_code == one.status_code == 200
    assert everyone.json()["tenant_id"] is None and one.json()["tenant_id"] == str(tenant.tenant_id)
    bad = [
        {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
        {"start": "2026-01-01T00:00:00", "end": "2026-01-02T00:00:00"},
        {"start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z", "interval": "hour"},
        {"interval": "minute"},
        {"group_by": "tenant"},
    ]
    for params in bad:
        assert_problem(await client.get("/v1/analytics", headers=tenant.headers, params=params), 422)


async def test_the_tokens_of_condensing_a_follow_up_are_counted_and_priced(
    client: httpx.AsyncClient, tenant: TenantHandle, app_state: AppState, openai_chain, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The chat model condenses the follow-up (gpt-4o-mini) and writes the answers (gpt-4o), both at the
    wire: the answer's usage, the OpenAI-compatible usage, the query log and its cost count both."""
    from ragapi.answering.condense import build_condenser
    from tests.conftest import make_settings
    from tests.wire import openai_completion

    replies, server = openai_chain
    condensing = make_settings(
        tmp_path, openai_api_key="sk-test", openai_base_url=server.url + "/v1", openai_model="gpt-4o-mini"
    )
    monkeypatch.setattr(app_state.conversations, "condenser", build_condenser(condensing))
    await ingest_texts(client, tenant, "The Falcon printer is on the third floor, next to the kitchen.")
    made = await client.post("/v1/conversations", headers=tenant.headers, json={})
    path = f"/v1/conversations/{made.json()['id']}/messages"
    replies.append(Reply(sse=openai_stream(["A printer [1]."], usage={"prompt_tokens": 100, "completion_tokens": 10})))
    first = await client.post(path, headers=tenant.headers, json={"content": "What is the Falcon printer?"})
    assert first.status_code == 200, first.text
    assert (first.json()["usage"]["prompt_tokens"], first.json()["usage"]["completion_tokens"]) == (100, 10)

    standalone = "Where is the Falcon printer?"
    replies.append(
        Reply(body=openai_completion(standalone, "gpt-4o-mini", usage={"prompt_tokens": 40, "completion_tokens": 8}))
    )
    replies.append(
        Reply(sse=openai_stream(["Third floor [1]."], usage={"prompt_tokens": 200, "completion_tokens": 20}))
    )
    follow_up = await client.post(path, headers=tenant.headers, json={"content": "Where is it?"})
    assert follow_up.status_code == 200, follow_up.text
    assert follow_up.json()["standalone_question"] == standalone
    usage = follow_up.json()["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["estimated"]) == (240, 28, False)

    # the same follow-up over the OpenAI-compatible API: condensed again, then answered from the cache
    replies.append(
        Reply(body=openai_completion(standalone, "gpt-4o-mini", usage={"prompt_tokens": 30, "completion_tokens": 6}))
    )
    messages = [
        {"role": "user", "content": "What is the Falcon printer?"},
        {"role": "assistant", "content": "A printer [1]."},
        {"role": "user", "content": "Where is it?"},
    ]
    completion = await client.post(
        "/v1/chat/completions", headers=tenant.headers, json={"model": "default", "messages": messages}
    )
    assert completion.status_code == 200, completion.text
    assert completion.json()["usage"] == {
        "prompt_tokens": 30,
        "completion_tokens": 6,
        "total_tokens": 36,
        "embedding_tokens": 0,
        "estimated": False,
    }
    assert replies == []  # every reply was asked for: nothing answered the cached question again

    report = (await client.get("/v1/analytics", headers=tenant.headers, params=window())).json()
    assert report["queries"] == 3 and report["cache"]["exact_hits"] == 1
    assert (report["tokens"]["prompt"], report["tokens"]["completion"]) == (370, 44)
    # gpt-4o: $2.50 / $10 per 1M prompt / completion tokens; gpt-4o-mini: $0.15 / $0.60
    answers, condensed = (300 * 2.5 + 30 * 10.0), (70 * 0.15 + 14 * 0.60)
    assert report["cost_usd"] == pytest.approx((answers + condensed) / 1_000_000)
