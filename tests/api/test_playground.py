"""The LangServe playground from a plain browser: a credential given once on /v1/rag/sign-in becomes an
HttpOnly, SameSite=Strict cookie for /v1/rag only; requests that change something on its strength must come
from this server's own pages (Origin); the API's own rules (scope, other routes) are unchanged; and the
input schema is one the playground's form can render (no `{"type": "null"}`).
(tests/api/test_docs_browser.py drives the same in Chromium.)"""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.helpers import assert_problem, ingest_texts
from tests.conftest import MakeUser, TenantHandle, UserHandle

ORIGIN = "http://ragapi.test"  # the test client's own origin
HTML = {"Accept": "text/html,application/xhtml+xml"}


async def sign_in(client: httpx.AsyncClient, credential: str, **headers: str) -> httpx.Response:
    return await client.post("/v1/rag/sign-in", data={"credential": credential}, headers=headers)


def cookie_of(response: httpx.Response) -> str:
    set_cookie = response.headers["set-cookie"]
    return set_cookie.split(";", 1)[0]  # name=value


def nulls(schema: Any) -> int:
    if isinstance(schema, dict):
        return (schema.get("type") == "null") + sum(nulls(v) for v in schema.values())
    if isinstance(schema, list):
        return sum(nulls(v) for v in schema)
    return 0


async def test_a_browser_without_a_credential_is_sent_to_the_sign_in_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/rag/playground/", headers=HTML)
    assert response.status_code == 303 and response.headers["location"] == "/v1/rag/sign-in"
    page = await client.get("/v1/rag/sign-in")
    assert page.status_code == 200 and '<label for="credential">' in page.text
    assert_problem(await client.get("/v1/rag/playground/"), 401)  # an API client still gets the problem


async def test_signing_in_sets_a_cookie_for_the_playground_only(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    response = await sign_in(client, tenant.api_key, Origin=ORIGIN)
    assert response.status_code == 303 and response.headers["location"] == "/v1/rag/playground/"
    attributes = {a.strip().split("=")[0].lower(): a for a in response.headers["set-cookie"].split(";")}
    assert {"httponly", "path", "samesite", "max-age"} <= set(attributes)
    assert attributes["path"].strip() == "Path=/v1/rag" and attributes["samesite"].strip().lower() == "samesite=strict"
    assert attributes["max-age"].strip() == "Max-Age=28800"
    assert "secure" not in attributes  # plain HTTP here; set over HTTPS
    cookie = {"Cookie": cookie_of(response)}

    playground = await client.get("/v1/rag/playground/", headers={**HTML, **cookie})
    assert playground.status_code == 200 and "window.INPUT_SCHEMA" in playground.text
    # The cookie is no credential anywhere else (the browser does not even send it there).
    assert_problem(await client.get("/v1/documents", headers=cookie), 401)


async def test_the_cookie_answers_only_requests_from_this_servers_pages(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    await ingest_texts(client, tenant, "The office opens at 8 am on weekdays.")
    cookie = {"Cookie": cookie_of(await sign_in(client, tenant.api_key))}
    question = {"input": {"query": "When does the office open?", "knowledge_bases": [], "filters": {}}}

    answered = await client.post("/v1/rag/invoke", headers={**cookie, "Origin": ORIGIN}, json=question)
    assert answered.status_code == 200, answered.text
    assert "8 am" in answered.json()["output"]["answer"]
    for origin in ({}, {"Origin": "https://evil.example"}, {"Origin": "null"}):
        refused = await client.post("/v1/rag/invoke", headers={**cookie, **origin}, json=question)
        assert "own pages" in assert_problem(refused, 403)["detail"]


async def test_a_wrong_or_insufficient_credential_is_refused_on_the_page(
    client: httpx.AsyncClient, tenant: TenantHandle, superadmin: UserHandle, make_user: MakeUser
) -> None:
    wrong = await sign_in(client, "rag_00000000_" + "x" * 40)
    assert wrong.status_code == 401 and 'role="alert"' in wrong.text and "set-cookie" not in wrong.headers
    no_tenant = await sign_in(client, superadmin.access_token)  # superadmins read no tenant's data
    assert no_tenant.status_code == 403 and "needs a tenant" in no_tenant.text and "set-cookie" not in no_tenant.headers
    member = await make_user(tenant.tenant_id, "readonly")  # a user's access token works as well
    assert (await sign_in(client, member.access_token)).status_code == 303
    cross_site = await sign_in(client, tenant.api_key, Origin="https://evil.example")
    assert cross_site.status_code == 403 and "set-cookie" not in cross_site.headers


async def test_a_credential_header_wins_over_the_cookie(client: httpx.AsyncClient, make_tenant) -> None:  # type: ignore[no-untyped-def]
    mine, other = await make_tenant(), await make_tenant()
    await ingest_texts(client, other, "The other tenant's secret is teal.")
    cookie = {"Cookie": cookie_of(await sign_in(client, other.api_key))}
    question = {"input": {"query": "What is the secret?"}}
    answered = await client.post("/v1/rag/invoke", headers={**cookie, **mine.headers}, json=question)
    assert answered.status_code == 200 and "teal" not in answered.json()["output"]["answer"]


async def test_signing_out_clears_the_cookie(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/rag/sign-out", headers={"Origin": ORIGIN})
    assert response.status_code == 303 and response.headers["location"] == "/v1/rag/sign-in"
    assert 'ragapi_playground=""' in response.headers["set-cookie"] and "Max-Age=0" in response.headers["set-cookie"]


async def test_the_input_schema_has_no_null_types_and_accepts_what_the_form_sends(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    schema = (await client.get("/v1/rag/input_schema", headers=tenant.headers)).json()
    assert nulls(schema) == 0
    assert schema["properties"]["top_k"]["type"] == "integer" and "default" not in schema["properties"]["top_k"]
    form = {"query": "anything", "knowledge_bases": [], "filters": {}, "cache": True, "chat_history": []}
    answered = await client.post("/v1/rag/invoke", headers=tenant.headers, json={"input": form})
    assert answered.status_code == 200, answered.text
    unset = {"query": "anything", "knowledge_bases": None, "top_k": None, "filters": None}  # still accepted
    assert (await client.post("/v1/rag/invoke", headers=tenant.headers, json={"input": unset})).status_code == 200
