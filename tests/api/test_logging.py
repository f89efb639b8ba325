"""What the service logs while serving real requests: one access line per request with its context,
and no API key, token or password anywhere."""

from __future__ import annotations

import logging

import httpx
import pytest

from ragapi.core.logs import JsonFormatter
from tests.api.helpers import PASSWORD, ingest_texts
from tests.conftest import MakeUser, TenantHandle


async def test_logs_hold_context_and_no_secrets(
    client: httpx.AsyncClient, tenant: TenantHandle, make_user: MakeUser, caplog: pytest.LogCaptureFixture
) -> None:
    user = await make_user(tenant.tenant_id, "member")
    caplog.set_level(logging.INFO)
    caplog.clear()
    await ingest_texts(client, tenant, "Logged fact: the vault is green.")
    await client.post("/v1/query", headers=user.headers, json={"query": "what colour is the vault"})
    login = await client.post("/v1/auth/login", data={"username": user.email, "password": PASSWORD})
    refresh = login.json()["refresh_token"]
    await client.post("/v1/auth/refresh", json={"refresh_token": refresh})
    await client.get("/v1/documents", headers={"Authorization": f"Bearer {tenant.api_key}"})
    await client.get("/v1/documents?api_key=" + tenant.api_key)  # a key in a query string: 401, not logged
    formatter = JsonFormatter()
    lines = [formatter.format(r) for r in caplog.records]
    text = "\n".join(lines)
    for secret in (tenant.api_key, user.access_token, refresh, login.json()["access_token"], PASSWORD):
        assert secret not in text
    assert "what colour is the vault" not in text  # query text stays out of the logs
    access = [r for r in caplog.records if r.name == "ragapi.access"]
    query_line = next(r for r in access if r.path == "/v1/query")  # type: ignore[attr-defined]
    assert query_line.status == 200 and query_line.tenant_id == str(tenant.tenant_id)  # type: ignore[attr-defined]
    assert query_line.principal == f"user:{user.user_id}" and query_line.duration_ms > 0  # type: ignore[attr-defined]
    assert any(r.status == 401 for r in access)  # type: ignore[attr-defined]
