"""Users signing up, in and out; refresh rotation; password change and reset; brute-force limits."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from ragapi.api.client_ip import parse_networks
from ragapi.api.state import AppState
from ragapi.core.database import Database
from tests.api.helpers import PASSWORD, assert_problem, bearer, ingest_texts, login
from tests.conftest import MakeTenant, MakeUser, TenantHandle
from tests.wire import Reply, wire_server


async def open_registration(db: Database, tenant: TenantHandle, role: str = "readonly") -> None:
    async with db.admin_session() as session:
        await session.execute(
            text("UPDATE tenants SET allow_registration = true, registration_role = :r WHERE id = :t"),
            {"r": role, "t": tenant.tenant_id},
        )


async def test_registration_only_where_the_tenant_allows_it(
    client: httpx.AsyncClient, db: Database, tenant: TenantHandle
) -> None:
    body = {"tenant_id": str(tenant.tenant_id), "email": "New.Person@Example.com", "password": PASSWORD}
    assert_problem(await client.post("/v1/auth/register", json=body), 403)
    assert_problem(await client.post("/v1/auth/register", json={**body, "tenant_id": str(uuid.uuid4())}), 403)
    await open_registration(db, tenant)
    created = await client.post("/v1/auth/register", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["role"] == "readonly" and created.json()["email"] == "new.person@example.com"
    assert_problem(await client.post("/v1/auth/register", json=body), 409)
    # A role smuggled into the body is refused, not obeyed.
    smuggled = {**body, "email": "x@example.com", "role": "admin"}
    assert_problem(await client.post("/v1/auth/register", json=smuggled), 422)
    weak = {**body, "email": "weak@example.com", "password": "short"}
    assert "at least 12" in assert_problem(await client.post("/v1/auth/register", json=weak), 422)["detail"]

    tokens = await login(client, "new.person@example.com")
    me = (await client.get("/v1/auth/me", headers=bearer(tokens["access_token"]))).json()
    assert me["tenant_id"] == str(tenant.tenant_id) and me["role"] == "readonly"
    # read-only: may query, may not ingest
    ok = await client.post("/v1/query", headers=bearer(tokens["access_token"]), json={"query": "anything"})
    assert ok.status_code == 200, ok.text
    denied = await client.post(
        "/v1/ingest?wait=true", headers=bearer(tokens["access_token"]), json={"documents": [{"text": "x"}]}
    )
    assert_problem(denied, 403)


async def test_login_failures_look_alike(client: httpx.AsyncClient, tenant: TenantHandle, make_user: MakeUser) -> None:
    user = await make_user(tenant.tenant_id)
    wrong = await client.post("/v1/auth/login", data={"username": user.email, "password": "wrong password!!"})
    unknown = await client.post("/v1/auth/login", data={"username": "nobody@example.com", "password": PASSWORD})
    assert assert_problem(wrong, 401)["detail"] == assert_problem(unknown, 401)["detail"]
    assert wrong.headers["www-authenticate"].startswith("Bearer")


async def test_roles_decide_what_a_user_may_do(
    client: httpx.AsyncClient, tenant: TenantHandle, make_user: MakeUser
) -> None:
    member = await make_user(tenant.tenant_id, "member")
    admin = await make_user(tenant.tenant_id, "admin")
    await ingest_texts(client, tenant, "Members can ingest documents.")
    ingest = await client.post(
        "/v1/ingest?wait=true", headers=member.headers, json={"documents": [{"text": "By a member."}]}
    )
    assert ingest.status_code == 200, ingest.text
    assert_problem(await client.get("/v1/api-keys", headers=member.headers), 403)
    assert_problem(await client.get("/v1/users", headers=member.headers), 403)
    assert (await client.get("/v1/api-keys", headers=admin.headers)).status_code == 200
    listed = (await client.get("/v1/users", headers=admin.headers)).json()
    assert {u["email"] for u in listed} == {member.email, admin.email}
    # A tenant admin manages users of its own tenant only, and cannot mint a superadmin.
    new = {"email": "made@example.com", "password": PASSWORD, "role": "superadmin"}
    assert_problem(await client.post("/v1/users", headers=admin.headers, json=new), 422)
    made = await client.post("/v1/users", headers=admin.headers, json={**new, "role": "readonly"})
    assert made.status_code == 201 and made.json()["tenant_id"] == str(tenant.tenant_id)
    assert_problem(await client.get("/v1/tenants", headers=admin.headers), 403)


async def test_refresh_rotates_and_a_replayed_refresh_token_ends_the_session(
    client: httpx.AsyncClient, tenant: TenantHandle, make_user: MakeUser
) -> None:
    user = await make_user(tenant.tenant_id)
    first = await client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert first.status_code == 200, first.text
    rotated = first.json()
    assert rotated["refresh_token"] != user.refresh_token
    assert (await client.get("/v1/auth/me", headers=bearer(rotated["access_token"]))).status_code == 200
    # The old refresh token comes back (stolen copy): refused, and the whole session is ended.
    assert_problem(await client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token}), 401)
    assert_problem(await client.get("/v1/auth/me", headers=bearer(rotated["access_token"])), 401)
    assert_problem(await client.post("/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]}), 401)
    # Other sessions of the same user are untouched.
    again = await login(client, user.email)
    assert (await client.get("/v1/auth/me", headers=bearer(again["access_token"]))).status_code == 200


async def test_logout_ends_access_and_refresh_tokens(
    client: httpx.AsyncClient, tenant: TenantHandle, make_user: MakeUser
) -> None:
    user = await make_user(tenant.tenant_id)
    assert (await client.post("/v1/auth/logout", headers=user.headers)).status_code == 204
    assert_problem(await client.get("/v1/auth/me", headers=user.headers), 401)
    assert_problem(await client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token}), 401)


async def test_password_change_invalidates_every_older_token(
    client: httpx.AsyncClient, tenant: TenantHandle, make_user: MakeUser
) -> None:
    user = await make_user(tenant.tenant_id)
    other_session = await login(client, user.email)
    wrong = {"current_password": "not the password", "new_password": "a brand new password"}
    assert_problem(await client.post("/v1/auth/password", headers=user.headers, json=wrong), 401)
    change = {"current_password": PASSWORD, "new_password": "a brand new password"}
    assert (await client.post("/v1/auth/password", headers=user.headers, json=change)).status_code == 204
    for token in (user.access_token, other_session["access_token"]):
        assert_problem(await client.get("/v1/auth/me", headers=bearer(token)), 401)
    assert_problem(await client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token}), 401)
    assert_problem(await client.post("/v1/auth/login", data={"username": user.email, "password": PASSWORD}), 401)
    await login(client, user.email, "a brand new password")


async def test_forgot_and_reset_password_through_the_webhook(
    client: httpx.AsyncClient,
    app_state: AppState,
    tenant: TenantHandle,
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = await make_user(tenant.tenant_id)
    with wire_server(lambda _: Reply(200, {})) as hook:
        monkeypatch.setattr(app_state.settings, "password_reset_webhook_url", hook.url + "/reset")
        unknown = await client.post("/v1/auth/forgot-password", json={"email": "ghost@example.com"})
        known = await client.post("/v1/auth/forgot-password", json={"email": user.email.upper()})
        assert unknown.status_code == known.status_code == 202
        assert [r.body["email"] for r in hook.requests] == [user.email]  # nothing sent for the unknown one
        token = hook.requests[0].body["token"]
    new = {"token": token, "new_password": "reset to something long"}
    assert (await client.post("/v1/auth/reset-password", json=new)).status_code == 204
    assert_problem(await client.post("/v1/auth/reset-password", json=new), 401)  # single use
    assert_problem(await client.get("/v1/auth/me", headers=user.headers), 401)  # old sessions are gone
    await login(client, user.email, "reset to something long")
    # A reset token is not an access token.
    assert_problem(await client.get("/v1/auth/me", headers=bearer(token)), 401)


async def test_deactivating_a_user_locks_them_out_at_once(
    client: httpx.AsyncClient, tenant: TenantHandle, make_user: MakeUser
) -> None:
    admin = await make_user(tenant.tenant_id, "admin")
    member = await make_user(tenant.tenant_id, "member")
    assert (await client.get("/v1/auth/me", headers=member.headers)).status_code == 200
    off = await client.patch(f"/v1/users/{member.user_id}", headers=admin.headers, json={"is_active": False})
    assert off.status_code == 200 and off.json()["is_active"] is False
    assert_problem(await client.get("/v1/auth/me", headers=member.headers), 401)
    assert_problem(await client.post("/v1/auth/refresh", json={"refresh_token": member.refresh_token}), 401)
    assert_problem(await client.post("/v1/auth/login", data={"username": member.email, "password": PASSWORD}), 401)
    demoted = await client.patch(f"/v1/users/{admin.user_id}", headers=admin.headers, json={"role": "readonly"})
    assert demoted.status_code == 200
    assert_problem(await client.get("/v1/users", headers=admin.headers), 403)  # the role is read on every request


async def test_deleting_a_user_removes_them_for_good(
    client: httpx.AsyncClient, db: Database, tenant: TenantHandle, make_tenant: MakeTenant, make_user: MakeUser
) -> None:
    admin = await make_user(tenant.tenant_id, "admin")
    member = await make_user(tenant.tenant_id, "member")
    made = await client.post("/v1/conversations", headers=member.headers, json={"title": "mine"})
    assert made.status_code == 201, made.text
    assert_problem(await client.delete(f"/v1/users/{admin.user_id}", headers=admin.headers), 409)  # not oneself
    assert_problem(await client.delete(f"/v1/users/{member.user_id}", headers=member.headers), 403)
    elsewhere = await make_tenant()  # another tenant's admin cannot reach this tenant's user
    assert_problem(await client.delete(f"/v1/users/{member.user_id}", headers=elsewhere.headers), 404)

    gone = await client.delete(f"/v1/users/{member.user_id}", headers=tenant.headers)  # an admin key may too
    assert gone.status_code == 204 and not gone.content
    assert_problem(await client.get("/v1/auth/me", headers=member.headers), 401)  # at once
    assert_problem(await client.post("/v1/auth/refresh", json={"refresh_token": member.refresh_token}), 401)
    assert_problem(await client.post("/v1/auth/login", data={"username": member.email, "password": PASSWORD}), 401)
    listed = (await client.get("/v1/users", headers=admin.headers)).json()
    assert member.user_id not in {uuid.UUID(u["id"]) for u in listed}
    async with db.admin_session() as session:
        left = await session.execute(
            text("SELECT count(*) FROM conversations WHERE owner_kind = 'user' AND owner_id = :u"),
            {"u": member.user_id},
        )
        assert left.scalar_one() == 0  # their conversations went with them
    assert_problem(await client.delete(f"/v1/users/{member.user_id}", headers=admin.headers), 404)
    again = await client.post(
        "/v1/users", headers=admin.headers, json={"email": member.email, "password": PASSWORD, "role": "readonly"}
    )
    assert again.status_code == 201, again.text  # the address is free again


async def test_brute_force_login_hits_the_ip_limit(
    app: FastAPI, app_state: AppState, make_user: MakeUser, tenant: TenantHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await make_user(tenant.tenant_id)
    monkeypatch.setattr(app_state.settings, "ip_rate_limit_per_minute", 5)
    attacker = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("203.0.113.50", 40000)), base_url="http://ragapi.test"
    )
    bystander = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("203.0.113.51", 40000)), base_url="http://ragapi.test"
    )
    async with attacker, bystander:
        statuses = []
        for n in range(7):
            guess = {"username": user.email, "password": f"guess number {n}"}
            response = await attacker.post("/v1/auth/login", data=guess)
            statuses.append(response.status_code)
        assert statuses == [401] * 5 + [429, 429]
        refused = assert_problem(response, 429)
        assert "ip rate limit" in refused["detail"]
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["ratelimit-limit"] == "5" and response.headers["ratelimit-remaining"] == "0"
        # Even the right password waits now; another address is unaffected.
        real = {"username": user.email, "password": PASSWORD}
        assert (await attacker.post("/v1/auth/login", data=real)).status_code == 429
        assert (await bystander.post("/v1/auth/login", data=real)).status_code == 200


async def test_login_is_also_limited_per_account(
    app: FastAPI, app_state: AppState, make_user: MakeUser, tenant: TenantHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await make_user(tenant.tenant_id)
    monkeypatch.setattr(app_state.settings, "login_rate_limit_per_minute", 3)
    statuses = []
    for n in range(4):  # a botnet: every guess from a new address
        transport = httpx.ASGITransport(app=app, client=(f"198.51.100.{n + 1}", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://ragapi.test") as c:
            guess = {"username": user.email.upper(), "password": "wrong wrong wrong"}
            statuses.append((await c.post("/v1/auth/login", data=guess)).status_code)
    assert statuses == [401, 401, 401, 429]


async def test_x_forwarded_for_is_believed_only_from_trusted_proxies(
    app: FastAPI, app_state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_state.settings, "ip_rate_limit_per_minute", 2)
    body = {"refresh_token": "not-a-token"}

    async def statuses(peer: str, forwarded: list[str]) -> list[int]:
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://ragapi.test") as c:
            return [
                (await c.post("/v1/auth/refresh", json=body, headers={"X-Forwarded-For": xff})).status_code
                for xff in forwarded
            ]

    # An untrusted peer rotating spoofed addresses still spends its own bucket.
    spoofs = ["1.1.1.1", "2.2.2.2", "3.3.3.3"]
    assert await statuses("192.0.2.10", spoofs) == [401, 401, 429]
    # Behind a trusted proxy, the client is the right-most untrusted hop, whatever the client prepends.
    monkeypatch.setattr(app_state, "trusted_proxies", parse_networks(["10.0.0.0/8"]))
    via_proxy = ["6.6.6.6, 192.0.2.77, 10.0.0.2", "7.7.7.7, 192.0.2.77", "192.0.2.77"]
    assert await statuses("10.0.0.1", via_proxy) == [401, 401, 429]
    assert await statuses("10.0.0.1", ["192.0.2.78"]) == [401]
