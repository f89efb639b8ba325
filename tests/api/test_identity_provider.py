"""/v1/identity-provider: a tenant admin sets, reads and removes the tenant's OpenID Connect provider; the
client secret is stored and never shown; every field is checked; superadmins reach any tenant's."""

from __future__ import annotations

import uuid

import httpx

from ragapi.core.database import Database
from ragapi.core.settings import Settings
from ragapi.tenants.sealed import Sealed, box_for
from tests.api.helpers import assert_problem
from tests.conftest import MakeTenant, MakeUser, TenantHandle, UserHandle

BODY = {
    "issuer": "https://idp.example.com/realms/acme",
    "client_id": "ragapi",
    "client_secret": "very-secret-value",
    "allowed_domains": ["Example.com"],
    "groups_claim": "groups",
    "scopes": ["openid", "email", "profile"],
    "default_role": "member",
}


async def test_an_admin_sets_reads_and_removes_the_provider_and_never_sees_the_secret(
    client: httpx.AsyncClient, tenant: TenantHandle, db: Database, settings: Settings
) -> None:
    assert_problem(await client.get("/v1/identity-provider", headers=tenant.headers), 404)
    put = await client.put("/v1/identity-provider", headers=tenant.headers, json=BODY)
    assert put.status_code == 200, put.text
    shown = put.json()
    assert "very-secret-value" not in put.text and "client_secret" not in shown
    assert shown["client_secret_set"] is True and shown["allowed_domains"] == ["example.com"]
    assert shown["redirect_uri"] == f"http://ragapi.test/v1/auth/oidc/{tenant.tenant_id}/callback"
    # at rest it is sealed: the table's owner (a backup, a replica, a curious DBA) reads no plaintext
    stored = await db.fetch_row("SELECT client_secret FROM identity_providers WHERE tenant_id = $1", tenant.tenant_id)
    assert stored is not None and stored["client_secret"].startswith("enc:v1:")
    assert "very-secret-value" not in stored["client_secret"]
    assert Sealed(stored["client_secret"]).open(box_for(settings)) == "very-secret-value"
    read = await client.get("/v1/identity-provider", headers=tenant.headers)
    assert read.json() == shown and "very-secret-value" not in read.text
    # A PUT without the secret keeps it; an empty one removes it (a public client).
    kept = await client.put("/v1/identity-provider", headers=tenant.headers, json={**BODY, "client_secret": None})
    assert kept.json()["client_secret_set"] is True
    removed = await client.put("/v1/identity-provider", headers=tenant.headers, json={**BODY, "client_secret": ""})
    assert removed.json()["client_secret_set"] is False
    assert (await client.delete("/v1/identity-provider", headers=tenant.headers)).status_code == 204
    assert_problem(await client.get("/v1/identity-provider", headers=tenant.headers), 404)
    assert_problem(await client.delete("/v1/identity-provider", headers=tenant.headers), 404)


async def test_bad_settings_are_a_422_naming_the_field(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    cases = {
        "issuer": ["http://idp.example.com", "not a url", "https://idp.example.com/#x", 5],
        "client_id": ["", "x" * 501],
        "allowed_domains": [["not a domain"], "example.com"],
        "groups_claim": ["two words"],
        "scopes": [["email"], ["openid", "sp ace"]],
        "default_role": ["admin", "superadmin"],
        "client_secret": ["x" * 2001],
    }
    for field, values in cases.items():
        for value in values:
            problem = assert_problem(
                await client.put("/v1/identity-provider", headers=tenant.headers, json={**BODY, field: value}), 422
            )
            assert field in problem["detail"], (field, value, problem)
    unknown = await client.put("/v1/identity-provider", headers=tenant.headers, json={**BODY, "tenant_id": "x"})
    assert "tenant_id" in assert_problem(unknown, 422)["detail"]
    assert_problem(await client.get("/v1/identity-provider", headers=tenant.headers), 404)  # nothing stored


async def test_only_admins_of_the_tenant_and_superadmins(
    client: httpx.AsyncClient, make_tenant: MakeTenant, make_user: MakeUser, superadmin: UserHandle
) -> None:
    a, b = await make_tenant(), await make_tenant()
    assert (await client.put("/v1/identity-provider", headers=a.headers, json=BODY)).status_code == 200
    assert_problem(await client.get("/v1/identity-provider", headers=b.headers), 404)  # B has none, sees none of A's
    member = await make_user(a.tenant_id, "member")
    assert_problem(await client.get("/v1/identity-provider", headers=member.headers), 403)
    assert_problem(await client.put("/v1/identity-provider", headers=member.headers, json=BODY), 403)
    path = f"/v1/tenants/{b.tenant_id}/identity-provider"
    assert_problem(await client.put(path, headers=a.headers, json=BODY), 403)  # a tenant admin is no superadmin
    put = await client.put(path, headers=superadmin.headers, json={**BODY, "default_role": "readonly"})
    assert put.status_code == 200 and put.json()["tenant_id"] == str(b.tenant_id)
    assert (await client.get("/v1/identity-provider", headers=b.headers)).json()["default_role"] == "readonly"
    assert (await client.get(f"/v1/tenants/{a.tenant_id}/identity-provider", headers=superadmin.headers)).json()[
        "default_role"
    ] == "member"
    assert_problem(
        await client.put(f"/v1/tenants/{uuid.uuid4()}/identity-provider", headers=superadmin.headers, json=BODY), 404
    )
    assert (await client.delete(path, headers=superadmin.headers)).status_code == 204
    assert_problem(await client.get(path, headers=superadmin.headers), 404)
