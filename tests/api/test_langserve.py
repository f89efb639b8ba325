"""LangServe at /v1/rag admits every input it runs: a batch of n spends n requests from the rate limits and
n queries from the quota, at most MAX_BATCH_INPUTS inputs, and bad input is refused before any charge."""

from __future__ import annotations

import httpx

from ragapi.api.state import AppState
from tests.api.helpers import assert_problem
from tests.conftest import TenantHandle, UserHandle


async def used(client: httpx.AsyncClient, tenant: TenantHandle) -> int:
    queries: int = (await client.get("/v1/tenant", headers=tenant.headers)).json()["usage"]["queries"]
    return queries


async def remaining(client: httpx.AsyncClient, tenant: TenantHandle) -> int:
    """What the key's own limit has left (this route spends one request)."""
    response = await client.get("/v1/rag/input_schema", headers=tenant.headers)
    return int(response.headers["ratelimit-remaining"])


async def test_a_batch_spends_one_query_and_one_request_per_input(
    client: httpx.AsyncClient,
    app_state: AppState,
    make_tenant,
    superadmin: UserHandle,  # type: ignore[no-untyped-def]
) -> None:
    tenant: TenantHandle = await make_tenant()
    await client.patch(
        f"/v1/tenants/{tenant.tenant_id}", headers=superadmin.headers, json={"rate_limit_per_minute": 60}
    )
    before = await remaining(client, tenant)
    batch = await client.post(
        "/v1/rag/batch", headers=tenant.headers, json={"inputs": [{"query": f"question {n}"} for n in range(5)]}
    )
    assert batch.status_code == 200 and len(batch.json()["output"]) == 5
    assert before - await remaining(client, tenant) == 5 + 1  # the batch's five, and the probe's own
    assert await used(client, tenant) == 5
    with_configs = await client.post(
        "/v1/rag/batch",
        headers=tenant.headers,
        json={"inputs": [{"query": "a"}, {"query": "b"}], "config": [{}, {}]},
    )
    assert with_configs.status_code == 200 and await used(client, tenant) == 7


async def test_a_batch_over_the_limit_or_with_a_bad_input_costs_nothing(
    client: httpx.AsyncClient, app_state: AppState, tenant: TenantHandle
) -> None:
    limit = app_state.settings.max_batch_inputs
    too_many = {"inputs": [{"query": "q"}] * (limit + 1)}
    problem = assert_problem(await client.post("/v1/rag/batch", headers=tenant.headers, json=too_many), 422)
    assert "MAX_BATCH_INPUTS" in problem["detail"]
    empty = await client.post("/v1/rag/batch", headers=tenant.headers, json={"inputs": []})
    assert_problem(empty, 422)
    bad_filter = {"inputs": [{"query": "fine"}, {"query": "q", "filters": {"bad key!": 1}}]}
    problem = assert_problem(await client.post("/v1/rag/batch", headers=tenant.headers, json=bad_filter), 422)
    assert problem["detail"].startswith("inputs.1.filters")
    too_long = {"input": {"query": "x" * (app_state.settings.max_query_chars + 1)}}
    assert_problem(await client.post("/v1/rag/invoke", headers=tenant.headers, json=too_long), 422)
    not_json = await client.post(
        "/v1/rag/invoke", headers={**tenant.headers, "content-type": "application/json"}, content=b"{"
    )
    assert_problem(not_json, 422)
    assert await used(client, tenant) == 0


async def test_a_batch_larger_than_the_quota_left_is_refused_whole(
    client: httpx.AsyncClient, tenant: TenantHandle, superadmin: UserHandle
) -> None:
    await client.patch(f"/v1/tenants/{tenant.tenant_id}", headers=superadmin.headers, json={"monthly_query_quota": 3})
    four = {"inputs": [{"query": f"q{n}"} for n in range(4)]}
    refused = await client.post("/v1/rag/batch", headers=tenant.headers, json=four)
    assert assert_problem(refused, 429)["title"] == "Quota exceeded"
    assert await used(client, tenant) == 0
    three = await client.post("/v1/rag/batch", headers=tenant.headers, json={"inputs": four["inputs"][:3]})
    assert three.status_code == 200 and await used(client, tenant) == 3
