"""The negative matrix: forged, stale and misused JWTs and API keys; tenant ids smuggled into requests;
another tenant's ids on every route that takes one. Each case must be refused the same way."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import text

from ragapi.api.state import AppState
from ragapi.core.database import Database
from ragapi.tenants.api_keys import create_api_key
from ragapi.tenants.context import Scope
from tests.api.helpers import assert_problem, bearer, ingest_texts
from tests.conftest import MakeUser, TenantHandle, UserHandle


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _claims(user: UserHandle) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(user.access_token, options={"verify_signature": False})
    return claims


Forge = Callable[[dict[str, Any], str], str]

# name -> how to build the token from a real user's valid claims and the service's real key
JWT_CASES: dict[str, Forge] = {
    "alg none": lambda c, k: f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(c)}.",
    "alg none, empty signature, upper case": lambda c, k: f"{_b64({'alg': 'NONE'})}.{_b64(c)}.",
    "HS256 with a wrong key": lambda c, k: jwt.encode(c, "x" * 48, algorithm="HS256"),
    "HS512 with the right key (algorithm not allowed)": lambda c, k: jwt.encode(c, k, algorithm="HS512"),
    "expired beyond the leeway": lambda c, k: jwt.encode(
        {**c, "exp": int((datetime.now(UTC) - timedelta(seconds=40)).timestamp())}, k, algorithm="HS256"
    ),
    "nbf in the future": lambda c, k: jwt.encode(
        {**c, "nbf": int((datetime.now(UTC) + timedelta(minutes=5)).timestamp())}, k, algorithm="HS256"
    ),
    "wrong audience": lambda c, k: jwt.encode({**c, "aud": "another-service"}, k, algorithm="HS256"),
    "wrong issuer": lambda c, k: jwt.encode({**c, "iss": "https://evil.example"}, k, algorithm="HS256"),
    "no audience": lambda c, k: jwt.encode({x: v for x, v in c.items() if x != "aud"}, k, algorithm="HS256"),
    "no expiry": lambda c, k: jwt.encode({x: v for x, v in c.items() if x != "exp"}, k, algorithm="HS256"),
    "refresh token as access token": lambda c, k: jwt.encode({**c, "typ": "refresh"}, k, algorithm="HS256"),
    "reset token as access token": lambda c, k: jwt.encode({**c, "typ": "reset"}, k, algorithm="HS256"),
    "stale token version": lambda c, k: jwt.encode({**c, "ver": c["ver"] - 1}, k, algorithm="HS256"),
    "unknown session": lambda c, k: jwt.encode({**c, "sid": str(uuid.uuid4())}, k, algorithm="HS256"),
    "another user's id": lambda c, k: jwt.encode({**c, "sub": str(uuid.uuid4())}, k, algorithm="HS256"),
    "tampered payload, original signature": lambda c, k: (
        lambda t: f"{t.split('.')[0]}.{_b64({**c, 'ver': c['ver'] + 5})}.{t.split('.')[2]}"
    )(jwt.encode(c, k, algorithm="HS256")),
    "garbage": lambda c, k: "not.a.jwt",
    "empty": lambda c, k: "",
}


@pytest.mark.parametrize("case", list(JWT_CASES))
async def test_forged_or_misused_jwts_are_refused(
    client: httpx.AsyncClient, app_state: AppState, tenant: TenantHandle, make_user: MakeUser, case: str
) -> None:
    user = await make_user(tenant.tenant_id, "admin")
    token = JWT_CASES[case](_claims(user), app_state.tokens.key)
    for method, path in (("GET", "/v1/auth/me"), ("GET", "/v1/documents"), ("GET", "/v1/api-keys")):
        response = await client.request(method, path, headers=bearer(token))
        assert_problem(response, 401)
    assert (await client.get("/v1/auth/me", headers=user.headers)).status_code == 200  # the real one still works


async def test_expiry_within_the_leeway_is_tolerated(
    client: httpx.AsyncClient, app_state: AppState, tenant: TenantHandle, make_user: MakeUser
) -> None:
    user = await make_user(tenant.tenant_id)
    claims = {**_claims(user), "exp": int((datetime.now(UTC) - timedelta(seconds=3)).timestamp())}
    token = jwt.encode(claims, app_state.tokens.key, algorithm="HS256")
    assert app_state.settings.jwt_leeway_s <= 30
    assert (await client.get("/v1/auth/me", headers=bearer(token))).status_code == 200


async def test_refresh_endpoint_refuses_access_tokens(
    client: httpx.AsyncClient, tenant: TenantHandle, make_user: MakeUser
) -> None:
    user = await make_user(tenant.tenant_id)
    assert_problem(await client.post("/v1/auth/refresh", json={"refresh_token": user.access_token}), 401)


async def _expire(db: Database, key_id: uuid.UUID) -> None:
    async with db.admin_session() as session:
        await session.execute(
            text("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = :k"), {"k": key_id}
        )


async def test_api_key_matrix(client: httpx.AsyncClient, db: Database, tenant: TenantHandle) -> None:
    query_key = await create_api_key(db, tenant.tenant_id, "reader", [Scope.QUERY])
    ingest_key = await create_api_key(db, tenant.tenant_id, "writer", [Scope.INGEST])
    revoked = await create_api_key(db, tenant.tenant_id, "revoked", [Scope.ADMIN])
    expired = await create_api_key(db, tenant.tenant_id, "expired", [Scope.ADMIN])
    revoke = await client.delete(f"/v1/api-keys/{revoked.key.id}", headers=tenant.headers)
    assert revoke.status_code == 204
    await _expire(db, expired.key.id)
    real = query_key.plaintext
    doc = {"documents": [{"text": "x"}]}
    cases = [
        (revoked.plaintext, "GET", "/v1/documents", None, 401),
        (expired.plaintext, "GET", "/v1/documents", None, 401),
        (real[:-2] + ("AA" if not real.endswith("AA") else "BB"), "GET", "/v1/documents", None, 401),
        ("rag_" + "0" * 8 + "_" + "A" * 43, "GET", "/v1/documents", None, 401),
        (real, "POST", "/v1/ingest?wait=true", doc, 403),  # query scope cannot ingest
        (real, "GET", "/v1/api-keys", None, 403),  # nor administer
        (ingest_key.plaintext, "POST", "/v1/api-keys", {"name": "x", "scopes": ["query"]}, 403),
        (ingest_key.plaintext, "GET", "/v1/users", None, 403),
        (ingest_key.plaintext, "GET", "/v1/auth/me", None, 403),  # user-only route
        (tenant.api_key, "GET", "/v1/tenants", None, 403),  # superadmin-only route
    ]
    for key, method, path, body, status in cases:
        response = await client.request(method, path, headers={"X-API-Key": key}, json=body)
        assert_problem(response, status)
    assert (await client.get("/v1/documents", headers={"X-API-Key": real})).status_code == 200


async def test_suspended_tenant_is_forbidden_everywhere(
    client: httpx.AsyncClient, tenant: TenantHandle, make_user: MakeUser, superadmin: UserHandle
) -> None:
    user = await make_user(tenant.tenant_id, "admin")
    off = await client.patch(
        f"/v1/tenants/{tenant.tenant_id}", headers=superadmin.headers, json={"status": "suspended"}
    )
    assert off.status_code == 200 and off.json()["status"] == "suspended"
    for headers in (tenant.headers, user.headers):
        for method, path in (("GET", "/v1/documents"), ("POST", "/v1/query"), ("GET", "/v1/tenant")):
            body = {"query": "q"} if method == "POST" else None
            assert_problem(await client.request(method, path, headers=headers, json=body), 403)
        rag = await client.post("/v1/rag/invoke", headers=headers, json={"input": {"query": "q"}})
        assert rag.status_code == 403
    login = await client.post("/v1/auth/login", data={"username": user.email, "password": user.password})
    assert_problem(login, 401)
    back = await client.patch(f"/v1/tenants/{tenant.tenant_id}", headers=superadmin.headers, json={"status": "active"})
    assert back.status_code == 200
    assert (await client.get("/v1/documents", headers=tenant.headers)).status_code == 200


async def test_smuggled_tenant_ids_and_roles_are_refused(
    client: httpx.AsyncClient,
    make_tenant,
    tenant: TenantHandle,  # type: ignore[no-untyped-def]
) -> None:
    other = await make_tenant()
    await ingest_texts(client, other, "The other tenant's secret launch date is March 3rd.")
    smuggle = str(other.tenant_id)
    bodies = [
        ("/v1/query", {"query": "secret launch date", "tenant_id": smuggle}),
        ("/v1/ingest?wait=true", {"documents": [{"text": "x", "tenant_id": smuggle}]}),
        ("/v1/ingest?wait=true", {"documents": [{"text": "x"}], "tenant_id": smuggle}),
        ("/v1/api-keys", {"name": "k", "scopes": ["query"], "tenant_id": smuggle}),
        ("/v1/users", {"email": "s@example.com", "password": "long enough password", "tenant_id": smuggle}),
    ]
    for path, body in bodies:
        assert_problem(await client.post(path, headers=tenant.headers, json=body), 422)
    # Headers naming another tenant are ignored: the credential decides.
    spoofed = {**tenant.headers, "X-Tenant-ID": smuggle, "X-Tenant": smuggle}
    answer = (await client.post("/v1/query", headers=spoofed, json={"query": "secret launch date"})).json()
    assert answer["citations"] == [] and "March" not in answer["answer"]


async def test_another_tenants_ids_are_404_on_every_route(
    client: httpx.AsyncClient,
    make_tenant,
    tenant: TenantHandle,
    make_user: MakeUser,  # type: ignore[no-untyped-def]
) -> None:
    other = await make_tenant()
    [doc_id] = await ingest_texts(client, other, "Owned by the other tenant.")
    job_id = (await client.get(f"/v1/documents/{doc_id}", headers=other.headers)).json()["document_id"]
    jobs = await client.post("/v1/ingest?wait=true", headers=other.headers, json={"documents": [{"text": "job"}]})
    job_id = jobs.json()["job_id"]
    key_id = (await client.get("/v1/api-keys", headers=other.headers)).json()[0]["id"]
    other_user = await make_user(other.tenant_id, "member")
    probes = [
        ("GET", f"/v1/documents/{doc_id}", None),
        ("DELETE", f"/v1/documents/{doc_id}", None),
        ("GET", f"/v1/ingest/jobs/{job_id}", None),
        ("DELETE", f"/v1/api-keys/{key_id}", None),
        ("PATCH", f"/v1/users/{other_user.user_id}", {"is_active": False}),
    ]
    for method, path, body in probes:
        owned_elsewhere = await client.request(method, path, headers=tenant.headers, json=body)
        absent = await client.request(
            method, path.rsplit("/", 1)[0] + f"/{uuid.uuid4()}", headers=tenant.headers, json=body
        )
        assert assert_problem(owned_elsewhere, 404)["detail"] == assert_problem(absent, 404)["detail"]
    # Nothing was changed on the other side.
    assert (await client.get(f"/v1/documents/{doc_id}", headers=other.headers)).status_code == 200
    assert (await client.get("/v1/api-keys", headers=other.headers)).json()[0]["revoked_at"] is None
    assert (await client.get("/v1/auth/me", headers=other_user.headers)).status_code == 200


async def test_langserve_configurable_cannot_switch_tenant(
    client: httpx.AsyncClient,
    make_tenant,
    tenant: TenantHandle,
    make_user: MakeUser,  # type: ignore[no-untyped-def]
) -> None:
    other = await make_tenant()
    await ingest_texts(client, other, "Zanzibar office opens on Mondays only.")
    user = await make_user(tenant.tenant_id, "readonly")
    for headers in (tenant.headers, user.headers):
        body = {
            "input": {"query": "When does the Zanzibar office open?"},
            "config": {"configurable": {"tenant_id": str(other.tenant_id), "tenant": str(other.tenant_id)}},
            "kwargs": {},
        }
        response = await client.post("/v1/rag/invoke", headers=headers, json=body)
        assert response.status_code == 200, response.text
        assert response.json()["output"]["citations"] == []
