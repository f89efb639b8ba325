"""Bad input on every surface gets a clear 4xx problem naming what was wrong, never a 500: values PostgreSQL
cannot store, bodies over their limit or without a credential, documented limits as documented."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message

from ragapi.core.settings import Settings
from tests.api.helpers import assert_problem, bearer, ingest_texts
from tests.conftest import MakeUser, TenantHandle, UserHandle

NUL, SURROGATE = "\x00", "\ud800"


def raw(value: Any) -> str:
    """JSON text as an attacker sends it: NUL as \\u0000, a lone surrogate as \\ud800, NaN and Infinity bare."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True)


# (method, path, JSON body, the field the problem must name); {doc} is an indexed document's id
JSON_CASES: dict[str, tuple[str, str, str, str]] = {
    "query filter NUL": ("POST", "/v1/query", raw({"query": "q", "filters": {"team": NUL}}), "filters"),
    "query filter surrogate": ("POST", "/v1/query", raw({"query": "q", "filters": {"t": [SURROGATE]}}), "filters"),
    "query filter NaN": ("POST", "/v1/query", raw({"query": "q", "filters": {"n": float("nan")}}), "filters"),
    "query filter 1e400": ("POST", "/v1/query", '{"query": "q", "filters": {"n": 1e400}}', "filters"),
    "query filter key NUL": ("POST", "/v1/query", raw({"query": "q", "filters": {"a\x00": 1}}), "filters"),
    "query text NUL (SSE)": ("POST", "/v1/query", raw({"query": "a\x00b", "stream": True}), "query"),
    "top_k Infinity": ("POST", "/v1/query", '{"query": "q", "top_k": Infinity}', "top_k"),
    "LangServe filter NaN": (
        "POST",
        "/v1/rag/invoke",
        raw({"input": {"query": "q", "filters": {"n": float("nan")}}}),
        "filters",
    ),
    "LangServe stream filter NUL": (
        "POST",
        "/v1/rag/stream",
        raw({"input": {"query": "q", "filters": {"t": NUL}}}),
        "filters",
    ),
    "LangServe batch, second input": (
        "POST",
        "/v1/rag/batch",
        raw({"inputs": [{"query": "fine"}, {"query": "q", "filters": {"t": SURROGATE}}]}),
        "inputs.1.filters",
    ),
    "ingest text NUL": ("POST", "/v1/ingest", raw({"documents": [{"text": "a\x00b"}]}), "documents.0.text"),
    "ingest title NUL": ("POST", "/v1/ingest", raw({"documents": [{"text": "t", "title": NUL}]}), "documents.0.title"),
    "ingest metadata Infinity": (
        "POST",
        "/v1/ingest",
        '{"documents": [{"text": "t", "metadata": {"x": {"y": -Infinity}}}]}',
        "documents.0.metadata",
    ),
    "ingest external_id surrogate": (
        "POST",
        "/v1/ingest",
        raw({"documents": [{"text": "t", "external_id": SURROGATE}]}),
        "documents.0.external_id",
    ),
    "ingest URL with a bad port": (
        "POST",
        "/v1/ingest",
        raw({"documents": [{"url": "http://example.com:99999/x"}]}),
        "documents.0.url",
    ),
    "document metadata 1e400": ("PATCH", "/v1/documents/{doc}", '{"metadata": {"n": 1e400}}', "metadata"),
    "feedback comment NUL": (
        "POST",
        "/v1/feedback",
        raw({"query_id": str(uuid.uuid4()), "rating": 1, "comment": NUL}),
        "comment",
    ),
    "feedback rating NaN": (
        "POST",
        "/v1/feedback",
        raw({"query_id": str(uuid.uuid4()), "rating": float("nan")}),
        "rating",
    ),
    "API key name surrogate": ("POST", "/v1/api-keys", raw({"name": SURROGATE, "scopes": ["query"]}), "name"),
    "user e-mail NUL": ("POST", "/v1/users", raw({"email": f"a{NUL}@example.com", "password": "x" * 16}), "email"),
}


@pytest.fixture
async def indexed(client: httpx.AsyncClient, tenant: TenantHandle) -> str:
    return (await ingest_texts(client, tenant, "Holiday policy: 25 days a year."))[0]


@pytest.mark.parametrize("case", list(JSON_CASES))
async def test_unstorable_values_are_a_422_naming_the_field(
    client: httpx.AsyncClient, tenant: TenantHandle, indexed: str, case: str
) -> None:
    method, path, body, field = JSON_CASES[case]
    headers = {**tenant.headers, "content-type": "application/json"}
    response = await client.request(method, path.format(doc=indexed), headers=headers, content=body)
    problem = assert_problem(response, 422)
    assert field in problem["detail"], problem
    assert (await client.get(f"/v1/documents/{indexed}", headers=tenant.headers)).status_code == 200


async def test_unstorable_values_without_or_beyond_a_tenant(
    client: httpx.AsyncClient, superadmin: UserHandle, tenant: TenantHandle
) -> None:
    """Sign-in and sign-up (no credential at all) and the superadmin's tenant routes."""
    login = await client.post("/v1/auth/login", data={"username": f"x{NUL}@example.com", "password": "p"})
    assert "username" in assert_problem(login, 422)["detail"]
    register = await client.post(
        "/v1/auth/register",
        headers={"content-type": "application/json"},
        content=raw({"tenant_id": str(tenant.tenant_id), "email": f"{SURROGATE}@example.com", "password": "x" * 16}),
    )
    assert "email" in assert_problem(register, 422)["detail"]
    create = await client.post("/v1/tenants", headers=superadmin.headers, json={"name": f"Acme{NUL}"})
    assert "name" in assert_problem(create, 422)["detail"]
    rename = await client.patch(f"/v1/tenants/{tenant.tenant_id}", headers=superadmin.headers, json={"name": NUL})
    assert "name" in assert_problem(rename, 422)["detail"]


async def test_multipart_fields_follow_the_same_policy(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    files = [("files", ("a.txt", b"Some text.", "text/plain"))]
    for metadata, named in ((raw({"team": NUL}), "metadata.team"), ('{"n": NaN}', "metadata.n")):
        response = await client.post("/v1/ingest", headers=tenant.headers, files=files, data={"metadata": metadata})
        assert named in assert_problem(response, 422)["detail"]
    ids = await client.post("/v1/ingest", headers=tenant.headers, files=files, data={"external_ids": raw([NUL])})
    assert "external_ids" in assert_problem(ids, 422)["detail"]
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="a\x00.txt"\r\n'
        f"Content-Type: text/plain\r\n\r\nSome text.\r\n--{boundary}--\r\n"
    ).encode()
    headers = {**tenant.headers, "content-type": f"multipart/form-data; boundary={boundary}"}
    named = await client.post("/v1/ingest", headers=headers, content=body)
    assert "files.0.filename" in assert_problem(named, 422)["detail"]


async def test_too_many_files_is_the_documented_422(
    client: httpx.AsyncClient, tenant: TenantHandle, settings: Settings
) -> None:
    for count in (settings.max_files_per_request + 1, settings.max_files_per_request + 5):
        files = [("files", (f"{n}.txt", b"text", "text/plain")) for n in range(count)]
        response = await client.post("/v1/ingest", headers=tenant.headers, files=files)
        assert "MAX_FILES_PER_REQUEST" in assert_problem(response, 422)["detail"]


async def test_a_quota_above_2_gib_can_be_set(client: httpx.AsyncClient, superadmin: UserHandle) -> None:
    """The README's own example: a 10 GiB monthly ingest budget (a bigint column)."""
    ten_gib = 10 * 1024**3
    created = await client.post(
        "/v1/tenants", headers=superadmin.headers, json={"name": "Big Co", "monthly_ingest_bytes_quota": ten_gib}
    )
    assert created.status_code == 201, created.text
    tenant_id = created.json()["id"]
    changed = await client.patch(
        f"/v1/tenants/{tenant_id}",
        headers=superadmin.headers,
        json={"monthly_ingest_bytes_quota": 2 * ten_gib, "max_document_bytes": 3 * 1024**3},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["monthly_ingest_bytes_quota"] == 2 * ten_gib
    too_big = await client.patch(
        f"/v1/tenants/{tenant_id}", headers=superadmin.headers, json={"monthly_query_quota": 2**64}
    )
    assert "64-bit" in assert_problem(too_big, 422)["detail"]


async def call(app: FastAPI, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[Message, int]:
    """One request straight through the ASGI app: its response start, and how often the app read the body."""
    reads = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "server": ("ragapi.test", 80),
        "client": ("192.0.2.1", 50000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in {**headers, "content-length": str(len(body))}.items()],
    }
    await app(scope, receive, send)
    return sent[0], reads


@pytest.mark.parametrize(
    "credential",
    [{}, {"X-API-Key": "rag_00000000_" + "x" * 43}, {"Authorization": "Bearer not-a-token"}],
    ids=["none", "unknown key", "forged token"],
)
@pytest.mark.parametrize("path", ["/v1/query", "/v1/ingest", "/v1/rag/invoke", "/v1/feedback", "/v1/no-such-route"])
async def test_a_body_without_a_valid_credential_is_never_read(
    app: FastAPI, credential: dict[str, str], path: str
) -> None:
    body = b'{"query": "' + b"a" * 500_000 + b'"}'
    start, reads = await call(app, "POST", path, {"content-type": "application/json", **credential}, body)
    assert start["status"] == 401 and reads == 0
    assert dict(start["headers"])[b"connection"] == b"close"


async def test_a_valid_credential_then_reads_the_body(app: FastAPI, tenant: TenantHandle) -> None:
    start, reads = await call(app, "POST", "/v1/query", {"content-type": "application/json", **tenant.headers}, b"{}")
    assert start["status"] == 422 and reads == 1  # authenticated once: the body was read and found wanting


async def test_json_bodies_have_their_own_smaller_limit(
    client: httpx.AsyncClient, tenant: TenantHandle, settings: Settings
) -> None:
    assert settings.max_json_body_bytes < settings.max_upload_bytes
    padded = {"query": "q", "filters": {"pad": "x" * settings.max_json_body_bytes}}
    response = await client.post("/v1/query", headers=tenant.headers, json=padded)
    assert "MAX_JSON_BODY_BYTES" in assert_problem(response, 413)["detail"]
    login = await client.post("/v1/auth/login", data={"username": "u", "password": "p" * settings.max_json_body_bytes})
    assert "MAX_JSON_BODY_BYTES" in assert_problem(login, 413)["detail"]
    # an ingest request may be larger: its limit is the upload limit
    text = "Bulk text. " * (settings.max_json_body_bytes // 11 + 10)
    ingest = await client.post("/v1/ingest", headers=tenant.headers, json={"documents": [{"text": text}]})
    assert ingest.status_code == 202, ingest.text


async def test_metrics_name_no_tenant_while_open(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    """METRICS_BEARER_TOKEN is unset in these tests: /metrics is open, so tenants are not told apart."""
    await client.post("/v1/query", headers=tenant.headers, json={"query": "anything"})
    exposition = (await client.get("/metrics")).text
    assert str(tenant.tenant_id) not in exposition
    assert 'rag_queries_total{cache="none",outcome="ok",tenant="all"}' in exposition


def test_tenant_labels_need_a_metrics_token(settings: Settings) -> None:
    from pydantic import SecretStr

    closed: Callable[..., Settings] = lambda **kw: settings.model_copy(update=kw)  # noqa: E731
    assert closed(metrics_tenant_labels=20).tenant_metric_labels == 0
    assert closed(metrics_tenant_labels=20, metrics_bearer_token=SecretStr("t" * 32)).tenant_metric_labels == 20


async def test_a_credentialed_body_on_a_public_route_is_still_read(
    client: httpx.AsyncClient, make_user: MakeUser, tenant: TenantHandle
) -> None:
    user = await make_user(tenant.tenant_id)
    response = await client.post(
        "/v1/auth/refresh", headers=bearer(user.access_token), json={"refresh_token": user.refresh_token}
    )
    assert response.status_code == 200
