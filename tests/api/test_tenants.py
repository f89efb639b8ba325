"""Superadmins manage tenants and plans; tenants see their limits and usage; quotas hold."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI

from tests.api.helpers import assert_problem, ingest_texts
from tests.conftest import TenantHandle, UserHandle


async def test_superadmin_creates_and_manages_a_tenant(client: httpx.AsyncClient, superadmin: UserHandle) -> None:
    body = {"name": "Globex", "plan": "pro", "monthly_query_quota": 1000, "allow_registration": True}
    created = await client.post("/v1/tenants", headers=superadmin.headers, json=body)
    assert created.status_code == 201, created.text
    tenant = created.json()
    assert tenant["plan"] == "pro" and tenant["status"] == "active" and tenant["api_key"].startswith("rag_")
    listed = (await client.get("/v1/tenants", headers=superadmin.headers, params={"limit": 500})).json()
    assert tenant["id"] in {t["id"] for t in listed} and all("api_key" not in t for t in listed)
    patched = await client.patch(
        f"/v1/tenants/{tenant['id']}",
        headers=superadmin.headers,
        json={"monthly_query_quota": None, "name": "Globex 2"},
    )
    assert patched.json()["monthly_query_quota"] is None and patched.json()["name"] == "Globex 2"
    got = await client.get(f"/v1/tenants/{tenant['id']}", headers=superadmin.headers)
    assert got.json()["name"] == "Globex 2"
    # The first key works inside the new tenant; the superadmin reads no tenant data.
    assert (await client.get("/v1/documents", headers={"X-API-Key": tenant["api_key"]})).status_code == 200
    assert_problem(await client.get("/v1/documents", headers=superadmin.headers), 403)


async def test_bad_tenant_changes(client: httpx.AsyncClient, superadmin: UserHandle, tenant: TenantHandle) -> None:
    path = f"/v1/tenants/{tenant.tenant_id}"
    for body in (
        {"status": None},
        {"status": "deleted"},
        {"plan": None},
        {"owner": "me"},
        {"rate_limit_per_minute": 0},
    ):
        assert_problem(await client.patch(path, headers=superadmin.headers, json=body), 422)
    assert_problem(await client.patch(f"/v1/tenants/{uuid.uuid4()}", headers=superadmin.headers, json={}), 404)
    assert_problem(await client.post("/v1/tenants", headers=superadmin.headers, json={"name": ""}), 422)
    assert_problem(await client.patch(path, headers=tenant.headers, json={"status": "active"}), 403)


async def test_query_quota_is_enforced_and_visible(
    client: httpx.AsyncClient, superadmin: UserHandle, tenant: TenantHandle
) -> None:
    await client.patch(f"/v1/tenants/{tenant.tenant_id}", headers=superadmin.headers, json={"monthly_query_quota": 2})
    statuses = [
        (await client.post("/v1/query", headers=tenant.headers, json={"query": f"question {n}"})).status_code
        for n in range(3)
    ]
    assert statuses == [200, 200, 429]
    refused = await client.post("/v1/rag/invoke", headers=tenant.headers, json={"input": {"query": "q"}})
    assert refused.status_code == 429 and refused.json()["title"] == "Quota exceeded"
    assert int(refused.headers["retry-after"]) > 0
    mine = (await client.get("/v1/tenant", headers=tenant.headers)).json()
    assert mine["usage"]["queries"] == 2 and mine["limits"]["monthly_query_quota"] == 2


async def test_ingest_quota_and_document_size_come_from_the_plan(
    client: httpx.AsyncClient, superadmin: UserHandle, tenant: TenantHandle
) -> None:
    plan = {"monthly_ingest_bytes_quota": 100, "max_document_bytes": 60}
    await client.patch(f"/v1/tenants/{tenant.tenant_id}", headers=superadmin.headers, json=plan)
    too_big = await client.post(
        "/v1/ingest?wait=true", headers=tenant.headers, json={"documents": [{"text": "x" * 61}]}
    )
    assert "allows 60" in assert_problem(too_big, 413)["detail"]
    await ingest_texts(client, tenant, "y" * 50)
    await ingest_texts(client, tenant, "z" * 50)
    over = await client.post("/v1/ingest?wait=true", headers=tenant.headers, json={"documents": [{"text": "w"}]})
    assert assert_problem(over, 429)["title"] == "Quota exceeded"
    mine = (await client.get("/v1/tenant", headers=tenant.headers)).json()
    assert mine["usage"]["ingest_bytes"] == 100 and mine["limits"]["max_document_bytes"] == 60


# Routes anyone may call, and why.
PUBLIC = {
    "/healthz",
    "/readyz",
    "/metrics",  # probes and scraping (no tenant data)
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/openapi.json",  # API description
    "/v1/auth/login",
    "/v1/auth/register",
    "/v1/auth/refresh",  # limited per client address
    "/v1/auth/forgot-password",
    "/v1/auth/reset-password",
    "/v1/auth/oidc/{tenant_id}/login",  # single sign-on: limited per client address, the state checks the callback
    "/v1/auth/oidc/{tenant_id}/callback",
}


async def test_every_other_route_refuses_anonymous_callers(app: FastAPI, client: httpx.AsyncClient) -> None:
    checked = 0
    for path, operations in app.openapi()["paths"].items():
        if path in PUBLIC:
            continue
        url = path.replace("{config_hash}", "x")
        for param in ("document_id", "job_id", "key_id", "user_id", "tenant_id"):
            url = url.replace("{" + param + "}", str(uuid.uuid4()))
        for method in operations:
            response = await client.request(method.upper(), url, json={})
            assert response.status_code == 401, f"{method} {path} answered {response.status_code} without credentials"
            checked += 1
    assert checked >= 30
    playground = await client.get("/v1/rag/playground/index.html")
    assert playground.status_code == 401
