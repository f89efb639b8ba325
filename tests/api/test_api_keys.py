"""API keys: shown once, stored hashed, scoped, expiring, revocable, and limited per key with headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text

from ragapi.core.database import Database
from tests.api.helpers import assert_problem
from tests.conftest import MakeUser, TenantHandle


async def test_create_list_use_and_revoke(client: httpx.AsyncClient, db: Database, tenant: TenantHandle) -> None:
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    body = {"name": "ci pipeline", "scopes": ["ingest"], "expires_at": expires, "rate_limit_per_minute": 50}
    created = await client.post("/v1/api-keys", headers=tenant.headers, json=body)
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["api_key"].startswith(key["prefix"] + "_") and key["scopes"] == ["ingest"]
    listed = (await client.get("/v1/api-keys", headers=tenant.headers)).json()
    mine = next(k for k in listed if k["id"] == key["id"])
    assert "api_key" not in mine and mine["last_used_at"] is None and mine["rate_limit_per_minute"] == 50
    async with db.admin_session() as session:
        stored = (await session.execute(text("SELECT key_hash FROM api_keys WHERE id = :k"), {"k": key["id"]})).one()
    assert key["api_key"] not in stored[0]

    used = await client.post(
        "/v1/ingest?wait=true", headers={"X-API-Key": key["api_key"]}, json={"documents": [{"text": "hi"}]}
    )
    assert used.status_code == 200
    listed = (await client.get("/v1/api-keys", headers=tenant.headers)).json()
    assert next(k for k in listed if k["id"] == key["id"])["last_used_at"] is not None

    assert (await client.delete(f"/v1/api-keys/{key['id']}", headers=tenant.headers)).status_code == 204
    assert_problem(await client.get("/v1/documents", headers={"X-API-Key": key["api_key"]}), 401)
    assert (await client.delete(f"/v1/api-keys/{key['id']}", headers=tenant.headers)).status_code == 204  # idempotent


async def test_bad_key_requests(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    cases = [
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["superpowers"]},
        {"name": "", "scopes": ["query"]},
        {"name": "x", "scopes": ["query"], "expires_at": past},
        {"name": "x", "scopes": ["query"], "expires_at": "2030-01-01T00:00:00"},  # no timezone
        {"name": "x", "scopes": ["query"], "rate_limit_per_minute": 0},
    ]
    for body in cases:
        assert_problem(await client.post("/v1/api-keys", headers=tenant.headers, json=body), 422)
    assert_problem(await client.delete("/v1/api-keys/not-a-uuid", headers=tenant.headers), 422)


async def test_users_cannot_mint_keys_beyond_their_role(
    client: httpx.AsyncClient, tenant: TenantHandle, make_user: MakeUser
) -> None:
    admin = await make_user(tenant.tenant_id, "admin")
    made = await client.post("/v1/api-keys", headers=admin.headers, json={"name": "by admin", "scopes": ["admin"]})
    assert made.status_code == 201
    member = await make_user(tenant.tenant_id, "member")
    refused = await client.post("/v1/api-keys", headers=member.headers, json={"name": "m", "scopes": ["query"]})
    assert_problem(refused, 403)


async def test_per_key_limit_with_standard_headers(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    body = {"name": "tight", "scopes": ["query"], "rate_limit_per_minute": 3}
    key = (await client.post("/v1/api-keys", headers=tenant.headers, json=body)).json()["api_key"]
    headers = {"X-API-Key": key}
    responses = [await client.get("/v1/documents", headers=headers) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r.headers["ratelimit-remaining"] for r in responses] == ["2", "1", "0", "0"]
    assert all(r.headers["ratelimit-limit"] == "3" for r in responses)
    assert 0 < int(responses[0].headers["ratelimit-reset"]) <= 60
    refused = assert_problem(responses[3], 429)
    assert "principal rate limit of 3" in refused["detail"]
    assert 1 <= int(responses[3].headers["retry-after"]) <= 21
    # Other keys of the same tenant are not affected.
    assert (await client.get("/v1/documents", headers=tenant.headers)).status_code == 200
    metrics = (await client.get("/metrics/")).text
    assert 'rag_rate_limit_rejections_total{limit="principal"}' in metrics


async def test_tenant_plan_limit_is_shared_by_all_its_keys(
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    superadmin,
    make_user: MakeUser,  # type: ignore[no-untyped-def]
) -> None:
    plan = {"rate_limit_per_minute": 4}
    assert (
        await client.patch(f"/v1/tenants/{tenant.tenant_id}", headers=superadmin.headers, json=plan)
    ).status_code == 200
    user = await make_user(tenant.tenant_id, "readonly")  # login is not a tenant request
    statuses = []
    for n in range(6):
        headers = tenant.headers if n % 2 else user.headers
        statuses.append((await client.get("/v1/documents", headers=headers)).status_code)
    assert statuses == [200, 200, 200, 200, 429, 429]
    last = await client.get("/v1/documents", headers=user.headers)
    assert "tenant rate limit of 4" in assert_problem(last, 429)["detail"]
