"""Signing in through a tenant's identity provider, against a real OpenID Connect provider on loopback
(tests/oidc/provider.mjs: panva/node-oidc-provider), driven as a browser does: our login redirect, the
provider's sign-in form, its redirect back to our callback with the binding cookie."""

from __future__ import annotations

import asyncio
import html
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from ragapi.core.database import Database
from tests.api.helpers import assert_problem, bearer
from tests.conftest import MakeTenant, MakeUser, TenantHandle
from tests.services import OidcProvider, free_port

API = "http://ragapi.test"


class Browser:
    """Two cookie jars, as a browser keeps them per site: our API (in process) and the provider (HTTP)."""

    def __init__(self, app: FastAPI) -> None:
        self.api = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=API)
        self.web = httpx.AsyncClient(timeout=10)

    async def start(self, tenant: TenantHandle, **params: str) -> httpx.Response:
        return await self.api.get(f"/v1/auth/oidc/{tenant.tenant_id}/login", params=params)

    async def authorize(self, tenant: TenantHandle, login: str, **params: str) -> str:
        """Through the provider's sign-in (and consent) forms: the callback URL it sends the browser to."""
        started = await self.start(tenant, **params)
        assert started.status_code == 302, started.text
        self.web.cookies.clear()  # no session at the provider: it asks who signs in
        response = await self.web.get(started.headers["location"])
        for _ in range(10):
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if location.startswith(API):
                    return location
                response = await self.web.get(location)
                continue
            form = re.search(r'<form[^>]*action="([^"]+)"', response.text)
            assert response.status_code == 200 and form, response.text[-1500:]
            fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', response.text))
            if 'name="login"' in response.text:
                fields |= {"login": login, "password": "any"}
            response = await self.web.post(urljoin(str(response.url), html.unescape(form.group(1))), data=fields)
        raise AssertionError("the provider never sent the browser back")

    async def sign_in(self, tenant: TenantHandle, login: str) -> httpx.Response:
        return await self.api.get(await self.authorize(tenant, login))

    async def close(self) -> None:
        await self.api.aclose()
        await self.web.aclose()


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[Browser]:
    b = Browser(app)
    yield b
    await b.close()


async def use_idp(
    client: httpx.AsyncClient, tenant: TenantHandle, idp: OidcProvider, **fields: object
) -> dict[str, object]:
    """A client of the provider for this tenant, and the tenant's settings naming it."""
    redirect = f"{API}/v1/auth/oidc/{tenant.tenant_id}/callback"
    method = str(fields.pop("registered_as", None) or fields.get("token_auth_method") or "client_secret_basic")
    client_id, secret = await asyncio.to_thread(idp.register, redirect, method)
    body = {
        "issuer": idp.issuer,
        "client_id": client_id,
        "client_secret": secret,
        "allowed_domains": ["acme.test"],
        "groups_claim": "groups",
        "scopes": ["openid", "email", "profile", "groups"],
        "default_role": "member",
        **fields,
    }
    put = await client.put("/v1/identity-provider", headers=tenant.headers, json=body)
    assert put.status_code == 200, put.text
    assert put.json()["redirect_uri"] == redirect
    return body


def person(name: str, domain: str = "acme.test") -> str:
    """A login of the test provider (sub and e-mail), unique: e-mail addresses are unique across tenants."""
    return f"{name}-{uuid.uuid4().hex[:8]}@{domain}"


async def tenant_users(client: httpx.AsyncClient, tenant: TenantHandle) -> list[dict[str, object]]:
    listed = await client.get("/v1/users", headers=tenant.headers)
    assert listed.status_code == 200, listed.text
    users: list[dict[str, object]] = listed.json()
    return users


async def test_first_sign_in_creates_the_user_with_the_default_role_and_the_next_reuses_it(
    client: httpx.AsyncClient, tenant: TenantHandle, idp: OidcProvider, browser: Browser
) -> None:
    await use_idp(client, tenant, idp)
    started = await browser.start(tenant)
    assert started.status_code == 302
    location = urlsplit(started.headers["location"])
    assert f"{location.scheme}://{location.netloc}" == idp.issuer  # the endpoint from discovery
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["response_type"] == "code" and query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43 and query["state"] and query["nonce"]
    assert query["scope"] == "openid email profile groups"
    cookie = started.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/v1/auth/oidc/" in cookie

    ann = person("Ann")
    first = await browser.sign_in(tenant, ann)
    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "no-store"
    tokens = first.json()
    me = await client.get("/v1/auth/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["email"] == ann.lower() and me.json()["role"] == "member"
    assert me.json()["tenant_id"] == str(tenant.tenant_id)
    # Tokens as a password sign-in gives them: they refresh, and the user can work in the tenant.
    refreshed = await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    query_response = await client.post("/v1/query", headers=bearer(tokens["access_token"]), json={"query": "hello"})
    assert query_response.status_code == 200, query_response.text

    second = await browser.sign_in(tenant, ann)
    assert second.status_code == 200, second.text
    again = await client.get("/v1/auth/me", headers=bearer(second.json()["access_token"]))
    assert again.json()["id"] == me.json()["id"]
    assert [u["email"] for u in await tenant_users(client, tenant)] == [ann.lower()]
    # No password: the password sign-in and a reset do not open this account.
    password = await client.post("/v1/auth/login", data={"username": ann, "password": "x" * 12})
    assert_problem(password, 401)
    # An admin switching the user off ends their sign-ins through the provider too.
    off = await client.patch(f"/v1/users/{me.json()['id']}", headers=tenant.headers, json={"is_active": False})
    assert off.status_code == 200, off.text
    assert "deactivated" in assert_problem(await browser.sign_in(tenant, ann), 403)["detail"]


async def test_the_client_authenticates_as_configured_or_as_discovery_announces(
    client: httpx.AsyncClient, tenant: TenantHandle, idp: OidcProvider, browser: Browser
) -> None:
    body = await use_idp(client, tenant, idp, token_auth_method="client_secret_post")
    assert (await browser.sign_in(tenant, person("post"))).status_code == 200
    assert await asyncio.to_thread(idp.last_token_auth) == "client_secret_post"
    await client.put("/v1/identity-provider", headers=tenant.headers, json={**body, "token_auth_method": None})
    assert (await browser.sign_in(tenant, person("basic"))).status_code == 200
    assert await asyncio.to_thread(idp.last_token_auth) == "client_secret_basic"  # announced: basic first


async def test_a_public_client_signs_in_with_pkce_alone(
    client: httpx.AsyncClient, tenant: TenantHandle, idp: OidcProvider, browser: Browser
) -> None:
    body = await use_idp(client, tenant, idp, registered_as="none")
    assert body["client_secret"] == ""
    shown = (await client.get("/v1/identity-provider", headers=tenant.headers)).json()
    assert shown["client_secret_set"] is False
    assert (await browser.sign_in(tenant, person("public"))).status_code == 200
    assert await asyncio.to_thread(idp.last_token_auth) == "none"


async def test_a_groups_claim_that_is_not_a_list_of_names_refuses_the_sign_in(
    client: httpx.AsyncClient, tenant: TenantHandle, idp: OidcProvider, browser: Browser
) -> None:
    await use_idp(client, tenant, idp, groups_claim="groups")
    assert (await browser.sign_in(tenant, person("grouped"))).status_code == 200  # ["staff", "domain:acme.test"]
    await use_idp(client, tenant, idp, groups_claim="email_verified")  # a boolean, as a misconfigured claim would be
    refused = assert_problem(await browser.sign_in(tenant, person("grouped")), 502)
    assert "'email_verified' claim is not a list of strings" in refused["detail"]
    assert len(await tenant_users(client, tenant)) == 1


async def test_claims_the_id_token_leaves_out_are_read_from_userinfo(
    client: httpx.AsyncClient, tenant: TenantHandle, idp: OidcProvider, browser: Browser
) -> None:
    await use_idp(client, tenant, idp)
    await asyncio.to_thread(idp.conform, True)  # ID tokens with `sub` only
    try:
        signed_in = await browser.sign_in(tenant, who := person("userinfo"))
    finally:
        await asyncio.to_thread(idp.conform, False)
    assert signed_in.status_code == 200, signed_in.text
    me = (await client.get("/v1/auth/me", headers=bearer(signed_in.json()["access_token"]))).json()
    assert me["email"] == who


async def test_an_existing_user_of_the_tenant_is_linked_and_another_tenants_address_is_refused(
    client: httpx.AsyncClient, make_tenant: MakeTenant, make_user: MakeUser, idp: OidcProvider, browser: Browser
) -> None:
    tenant, other = await make_tenant(), await make_tenant()
    await use_idp(client, tenant, idp, allowed_domains=["example.com"], default_role="readonly")
    existing = await make_user(tenant.tenant_id, "admin")  # user-…@example.com, with a password
    signed_in = await browser.sign_in(tenant, existing.email)
    assert signed_in.status_code == 200, signed_in.text
    me = (await client.get("/v1/auth/me", headers=bearer(signed_in.json()["access_token"]))).json()
    assert me["id"] == str(existing.user_id) and me["role"] == "admin"  # linked, role kept
    elsewhere = await make_user(other.tenant_id, "member")
    refused = assert_problem(await browser.sign_in(tenant, elsewhere.email), 409)
    assert "outside this tenant" in refused["detail"]


async def test_a_rotated_signing_key_is_fetched_once_the_provider_uses_it(
    client: httpx.AsyncClient, tenant: TenantHandle, idp: OidcProvider, browser: Browser
) -> None:
    await use_idp(client, tenant, idp)
    rot = person("rot")
    assert (await browser.sign_in(tenant, rot)).status_code == 200  # the key set is now kept
    new_kid = await asyncio.to_thread(idp.rotate)
    published = (await browser.web.get(idp.issuer + "/jwks")).json()["keys"]
    assert [k["kid"] for k in published][0] == new_kid and len(published) >= 2
    after = await browser.sign_in(tenant, rot)
    assert after.status_code == 200, after.text


@pytest.mark.parametrize(
    ("tamper", "says"),
    [
        ({"aud": "another-client"}, "meant for another client"),
        ({"shift_s": -7200}, "has expired"),
        ({"shift_s": 7200}, "issued in the future"),
        ({"foreign_key": True}, "signature does not verify"),
    ],
)
async def test_an_id_token_that_fails_a_check_is_a_502_and_signs_no_one_in(
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    idp: OidcProvider,
    browser: Browser,
    tamper: dict[str, object],
    says: str,
) -> None:
    await use_idp(client, tenant, idp)
    callback = await browser.authorize(tenant, person("mallory"))
    await asyncio.to_thread(lambda: idp.tamper(**tamper))
    try:
        problem = assert_problem(await browser.api.get(callback), 502)
    finally:
        await asyncio.to_thread(idp.tamper)
    assert says in problem["detail"]
    assert await tenant_users(client, tenant) == []


async def test_accounts_the_tenant_does_not_admit_are_a_403(
    client: httpx.AsyncClient, tenant: TenantHandle, idp: OidcProvider, browser: Browser
) -> None:
    await use_idp(client, tenant, idp)
    other_domain = assert_problem(await browser.sign_in(tenant, person("eve", "other.test")), 403)
    assert "other.test may not sign in" in other_domain["detail"]
    look_alike = assert_problem(await browser.sign_in(tenant, person("eve", "evilacme.test")), 403)
    assert "evilacme.test" in look_alike["detail"]
    unverified = assert_problem(await browser.sign_in(tenant, "unverified." + person("bob")), 403)
    assert "not verified" in unverified["detail"]
    assert await tenant_users(client, tenant) == []


async def test_a_state_works_once_from_the_browser_that_started_it(
    client: httpx.AsyncClient, tenant: TenantHandle, idp: OidcProvider, browser: Browser, app: FastAPI
) -> None:
    await use_idp(client, tenant, idp)
    ann = person("ann")
    callback = await browser.authorize(tenant, ann)
    assert (await browser.api.get(callback)).status_code == 200
    replayed = assert_problem(await browser.api.get(callback), 400)
    assert "already used" in replayed["detail"]
    forged = assert_problem(await browser.api.get(re.sub(r"state=[^&]+", "state=forged", callback)), 400)
    assert "unknown" in forged["detail"]
    # A callback URL carried to another browser (no binding cookie, or another one) is refused, and spent.
    stolen = await browser.authorize(tenant, ann)
    thief = Browser(app)
    try:
        assert "another browser" in assert_problem(await thief.api.get(stolen), 400)["detail"]
        await thief.start(tenant)  # a binding cookie of its own
        other_cookie = await browser.authorize(tenant, ann)
        assert "another browser" in assert_problem(await thief.api.get(other_cookie), 400)["detail"]
    finally:
        await thief.close()
    assert "already used" in assert_problem(await browser.api.get(stolen), 400)["detail"]
    missing = assert_problem(await browser.api.get(f"/v1/auth/oidc/{tenant.tenant_id}/callback?code=x"), 400)
    assert "state and code" in missing["detail"]
    denied_at = await browser.authorize(tenant, ann)
    denied = re.sub(r"code=[^&]+", "error=access_denied", denied_at)
    assert "access_denied" in assert_problem(await browser.api.get(denied), 400)["detail"]
    assert "already used" in assert_problem(await browser.api.get(denied_at), 400)["detail"]


async def test_a_sign_in_started_from_the_console_ends_in_a_console_session(
    client: httpx.AsyncClient, tenant: TenantHandle, idp: OidcProvider, browser: Browser
) -> None:
    await use_idp(client, tenant, idp)
    cleo = person("Cleo")
    done = await browser.api.get(await browser.authorize(tenant, cleo, destination="console"))
    assert done.status_code == 303 and done.headers["location"] == "/console"  # never a URL from the request
    assert done.headers["cache-control"] == "no-store"
    cookies = {c.split("=", 1)[0]: c for c in done.headers.get_list("set-cookie")}
    assert "HttpOnly" in cookies["ragapi_session"] and "HttpOnly" in cookies["ragapi_refresh"]
    assert cookies["ragapi_oidc"].startswith('ragapi_oidc=""')  # the binding cookie is spent
    access = cookies["ragapi_session"].split(";", 1)[0].split("=", 1)[1]
    me = await client.get("/v1/auth/me", headers=bearer(access))
    assert me.status_code == 200 and me.json()["email"] == cleo.lower()

    # Where a sign-in ends is bound to its state: an API client's callback cannot be made a console one.
    callback = await browser.authorize(tenant, person("Dan"))
    state = parse_qs(urlsplit(callback).query)["state"][0]
    page = {"Accept": "text/html,application/xhtml+xml"}  # as a browser navigates
    moved = await browser.api.get(callback.replace(f"state={state}", f"state=c.{state}"), headers=page)
    assert moved.status_code == 400 and "ragapi_session" not in moved.headers.get("set-cookie", "")
    assert "Single sign-on failed: unknown, expired or already used sign-in state" in moved.text  # the console's page
    assert_problem(await browser.api.get(callback.replace(f"state={state}", f"state=c.{state}")), 400)  # no HTML
    nowhere = f"/v1/auth/oidc/{uuid.uuid4()}/login?destination=console"
    assert_problem(await client.get(nowhere), 404)  # an API client is answered as every API route answers
    assert "<form" in (await client.get(nowhere, headers=page)).text  # a person gets the sign-in page, saying why
    tokens = await browser.api.get(callback)  # the real one still ends as it was started: in tokens
    assert tokens.status_code == 200 and tokens.json()["access_token"]
    assert_problem(await browser.start(tenant, destination="elsewhere"), 422)


async def test_one_tenants_sign_in_cannot_finish_in_another(
    client: httpx.AsyncClient, make_tenant: MakeTenant, idp: OidcProvider, browser: Browser
) -> None:
    a, b = await make_tenant(), await make_tenant()
    await use_idp(client, a, idp)
    await use_idp(client, b, idp)
    ann = person("ann")
    callback = await browser.authorize(a, ann)
    moved = callback.replace(str(a.tenant_id), str(b.tenant_id))
    assert "unknown" in assert_problem(await browser.api.get(moved), 400)["detail"]
    assert await tenant_users(client, b) == [] and await tenant_users(client, a) == []
    # Tenant B's state with tenant A's client's code: B's client cannot redeem it at the provider.
    code_of_a = parse_qs(urlsplit(await browser.authorize(a, ann)).query)["code"][0]
    at_b = await browser.authorize(b, ann)
    swapped = re.sub(r"code=[^&]+", f"code={code_of_a}", at_b)
    assert "invalid_grant" in assert_problem(await browser.api.get(swapped), 502)["detail"]
    assert await tenant_users(client, b) == []
    # Without a provider of its own, a tenant has no sign-in at all.
    assert (await client.delete("/v1/identity-provider", headers=b.headers)).status_code == 204
    assert_problem(await browser.start(b), 404)


async def test_a_provider_that_cannot_be_reached_is_a_502(
    client: httpx.AsyncClient, tenant: TenantHandle, browser: Browser, tmp_path: Path, db: Database
) -> None:
    body = {"issuer": f"http://127.0.0.1:{free_port()}", "client_id": "ragapi", "client_secret": "s"}
    assert (await client.put("/v1/identity-provider", headers=tenant.headers, json=body)).status_code == 200
    problem = assert_problem(await browser.start(tenant), 502)
    assert "cannot be reached" in problem["detail"]


async def test_a_provider_inside_the_services_network_is_not_contacted(
    client: httpx.AsyncClient, tenant: TenantHandle, browser: Browser
) -> None:
    # A tenant admin names the issuer: the service must not become their way into its own network.
    for issuer in ("https://10.0.0.1", "https://169.254.169.254", "https://192.168.1.1:8443/realms/x"):
        body = {"issuer": issuer, "client_id": "ragapi", "client_secret": "s"}
        assert (await client.put("/v1/identity-provider", headers=tenant.headers, json=body)).status_code == 200
        problem = assert_problem(await browser.start(tenant), 502)
        assert "not public (OIDC_ALLOWED_NETWORKS)" in problem["detail"], problem


async def test_the_groups_claim_sets_the_users_groups_and_so_what_they_may_read(
    client: httpx.AsyncClient, tenant: TenantHandle, idp: OidcProvider, browser: Browser
) -> None:
    await use_idp(client, tenant, idp)  # groups_claim "groups": the provider sends ["staff", "domain:acme.test"]
    auditors = await client.post("/v1/groups", headers=tenant.headers, json={"name": "auditors"})
    assert auditors.status_code == 201, auditors.text
    staff = await client.post("/v1/groups", headers=tenant.headers, json={"name": "staff"})
    body = {
        "documents": [{"text": "The staff canteen opens at seven.", "access": {"groups": [staff.json()["group_id"]]}}]
    }
    ingested = await client.post("/v1/ingest?wait=true", headers=tenant.headers, json=body)
    assert ingested.status_code == 200, ingested.text

    who = person("grouped")
    first = await browser.sign_in(tenant, who)
    assert first.status_code == 200, first.text
    user_id = (await client.get("/v1/auth/me", headers=bearer(first.json()["access_token"]))).json()["id"]
    added = await client.post(
        f"/v1/groups/{auditors.json()['group_id']}/members", headers=tenant.headers, json={"user_ids": [user_id]}
    )
    assert added.status_code == 200, added.text

    second = await browser.sign_in(tenant, who)
    assert second.status_code == 200, second.text
    groups = {g["name"]: g["members"] for g in (await client.get("/v1/groups", headers=tenant.headers)).json()}
    assert groups["staff"] == [user_id] and groups["domain:acme.test"] == [user_id]  # made at the first sign-in
    assert groups["auditors"] == []  # the provider's claim is the membership: a hand-made one goes
    listed = await client.get("/v1/documents", headers=bearer(second.json()["access_token"]))
    assert listed.status_code == 200, listed.text
    assert len(listed.json()["items"]) == 1  # readable through the claimed group


async def test_the_subject_is_the_users_external_id_and_finds_a_user_made_with_it(
    client: httpx.AsyncClient, tenant: TenantHandle, idp: OidcProvider, browser: Browser
) -> None:
    await use_idp(client, tenant, idp)
    ann = person("Ann")  # the test provider's `sub` is the login as typed; the e-mail address is folded
    first = await browser.sign_in(tenant, ann)
    assert first.status_code == 200, first.text
    me = (await client.get("/v1/auth/me", headers=bearer(first.json()["access_token"]))).json()
    assert me["external_id"] == ann and me["email"] == ann.lower()
    # a client app names the signed-in user by the subject it knows from the same provider
    made = await client.post(
        "/v1/api-keys", headers=tenant.headers, json={"name": "app", "scopes": ["query", "delegate"]}
    )
    app_key = made.json()["api_key"]
    body = {"documents": [{"text": "Ann's zephyr payslip: eleven.", "access": {"users": [me["id"]]}}]}
    assert (await client.post("/v1/ingest?wait=true", headers=tenant.headers, json=body)).status_code == 200
    r = await client.get("/v1/documents", headers={"X-API-Key": app_key, "X-On-Behalf-Of": ann})
    assert r.status_code == 200 and len(r.json()["items"]) == 1, r.text

    # a user an admin made with the subject as external id is the one the account signs in as
    subject = person("Bo")
    email = f"bo-{uuid.uuid4().hex[:8]}@example.com"
    user = {"email": email, "password": "x" * 16, "external_id": subject}
    made = await client.post("/v1/users", headers=tenant.headers, json=user)
    assert made.status_code == 201, made.text
    for _ in range(2):  # the first sign-in links the account, the next finds it linked
        signed_in = await browser.sign_in(tenant, subject)
        assert signed_in.status_code == 200, signed_in.text
        me = (await client.get("/v1/auth/me", headers=bearer(signed_in.json()["access_token"]))).json()
        assert me["id"] == made.json()["id"] and me["email"] == email and me["external_id"] == subject
    assert subject.lower() not in [u["email"] for u in await tenant_users(client, tenant)]
