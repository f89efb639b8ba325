"""Groups, per-document access enforced by row-level security, delegated identity, and the caches."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from ragapi.answering.conversations.models import Owner
from ragapi.api.state import AppState
from ragapi.core.access import EVERYTHING, ReaderView, reading_as
from ragapi.core.database import Database
from ragapi.core.settings import Settings
from tests.api.helpers import assert_problem, sse_events
from tests.conftest import MakeTenant, MakeUser, TenantHandle

SECRET = "The zephyr budget for project quasar is eleven million."
PUBLIC = "The cafeteria opens at eight and serves zephyr coffee."


async def make_key(client: httpx.AsyncClient, admin: TenantHandle, *scopes: str) -> tuple[str, str]:
    r = await client.post("/v1/api-keys", headers=admin.headers, json={"name": "k", "scopes": list(scopes)})
    assert r.status_code == 201, r.text
    return r.json()["api_key"], r.json()["id"]


async def ingest(client: httpx.AsyncClient, headers: dict[str, str], text: str, access: Any = None) -> str:
    document: dict[str, Any] = {"text": text}
    if access is not None:
        document["access"] = access
    r = await client.post("/v1/ingest?wait=true", headers=headers, json={"documents": [document]})
    assert r.status_code == 200, r.text
    return str(r.json()["documents"][0]["document_id"])


async def cited(client: httpx.AsyncClient, headers: dict[str, str], question: str, **extra: Any) -> set[str]:
    r = await client.post("/v1/query", headers=headers, json={"query": question, "cache": False, **extra})
    assert r.status_code == 200, r.text
    return {c["document_id"] for c in r.json()["citations"]}


async def test_groups_crud_and_members(client: httpx.AsyncClient, tenant: TenantHandle, make_user: MakeUser) -> None:
    alice = await make_user(tenant.tenant_id)
    r = await client.post("/v1/groups", headers=tenant.headers, json={"name": "hr"})
    assert r.status_code == 201, r.text
    gid = r.json()["group_id"]
    assert_problem(await client.post("/v1/groups", headers=tenant.headers, json={"name": "hr"}), 409)
    r = await client.post(f"/v1/groups/{gid}/members", headers=tenant.headers, json={"user_ids": [str(alice.user_id)]})
    assert r.json()["members"] == [str(alice.user_id)]
    stranger = str(uuid.uuid4())
    body = assert_problem(
        await client.post(f"/v1/groups/{gid}/members", headers=tenant.headers, json={"user_ids": [stranger]}), 422
    )
    assert stranger in body["detail"]
    r = await client.patch(f"/v1/groups/{gid}", headers=tenant.headers, json={"name": "people"})
    assert r.json()["name"] == "people"
    listed = (await client.get("/v1/groups", headers=tenant.headers)).json()
    assert [g["name"] for g in listed] == ["people"]
    r = await client.delete(f"/v1/groups/{gid}/members/{alice.user_id}", headers=tenant.headers)
    assert r.json()["members"] == []
    assert (await client.delete(f"/v1/groups/{gid}", headers=tenant.headers)).status_code == 204
    assert_problem(await client.get(f"/v1/groups/{gid}", headers=tenant.headers), 404)
    # members may not manage groups
    assert_problem(await client.get("/v1/groups", headers=alice.headers), 403)


async def test_a_restricted_document_is_invisible_to_others_everywhere(
    client: httpx.AsyncClient, tenant: TenantHandle, make_user: MakeUser
) -> None:
    alice, bob = await make_user(tenant.tenant_id), await make_user(tenant.tenant_id)
    admin = await make_user(tenant.tenant_id, "admin")
    gid = (await client.post("/v1/groups", headers=tenant.headers, json={"name": "finance"})).json()["group_id"]
    await client.post(f"/v1/groups/{gid}/members", headers=tenant.headers, json={"user_ids": [str(alice.user_id)]})
    secret = await ingest(client, tenant.headers, SECRET, {"groups": [gid]})
    public = await ingest(client, tenant.headers, PUBLIC)

    got = (await client.get(f"/v1/documents/{secret}", headers=admin.headers)).json()
    assert got["access"] == {"users": [], "groups": [gid], "api_keys": []}
    assert (await client.get(f"/v1/documents/{public}", headers=alice.headers)).json()["access"] is None

    question = "what is the zephyr budget of project quasar?"
    assert secret in await cited(client, alice.headers, question)
    assert secret in await cited(client, admin.headers, question)  # admin users read everything
    assert secret not in await cited(client, tenant.headers, question)  # the admin key only what it is granted
    assert await cited(client, bob.headers, question) <= {public}
    assert_problem(await client.get(f"/v1/documents/{secret}", headers=bob.headers), 404)
    listed = (await client.get("/v1/documents", headers=bob.headers)).json()["items"]
    assert [d["document_id"] for d in listed] == [public]
    # SSE and LangServe read through the same view
    r = await client.post("/v1/query", headers=bob.headers, json={"query": question, "stream": True, "cache": False})
    assert secret not in r.text and "eleven million" not in r.text
    r = await client.post("/v1/rag/invoke", headers=bob.headers, json={"input": {"query": question}})
    assert r.status_code == 200 and secret not in r.text and "eleven million" not in r.text
    r = await client.post("/v1/rag/invoke", headers=alice.headers, json={"input": {"query": question}})
    assert secret in r.text

    # conversations answer through the same view
    conversation = (await client.post("/v1/conversations", headers=bob.headers, json={})).json()["id"]
    r = await client.post(
        f"/v1/conversations/{conversation}/messages", headers=bob.headers, json={"content": question, "cache": False}
    )
    assert r.status_code == 200, r.text
    assert secret not in r.text and "eleven million" not in r.text
    # a job's results name a document only to those who may read it
    r = await client.post(
        "/v1/ingest?wait=true",
        headers=bob.headers,
        json={"documents": [{"text": "Bob's zephyr note for alice only.", "access": {"users": [str(alice.user_id)]}}]},
    )
    assert r.status_code == 200, r.text
    made = r.json()["documents"][0]
    assert made["status"] == "created" and made["document_id"] is None
    job = (await client.get(f"/v1/ingest/jobs/{r.json()['job_id']}", headers=alice.headers)).json()
    assert job["documents"][0]["document_id"] is not None

    # membership changes take effect on the next request
    await client.delete(f"/v1/groups/{gid}/members/{alice.user_id}", headers=tenant.headers)
    assert secret not in await cited(client, alice.headers, question)


async def test_access_changes_apply_to_the_next_request_and_cached_answers(
    client: httpx.AsyncClient, tenant: TenantHandle, make_user: MakeUser
) -> None:
    alice, bob = await make_user(tenant.tenant_id), await make_user(tenant.tenant_id)
    secret = await ingest(client, tenant.headers, SECRET, {"users": [str(alice.user_id), str(bob.user_id)]})
    question = "how large is the zephyr budget of project quasar?"

    async def ask(who: dict[str, str]) -> dict[str, Any]:
        r = await client.post("/v1/query", headers=who, json={"query": question})
        assert r.status_code == 200, r.text
        await client_drain(client)
        return dict(r.json())

    first = await ask(alice.headers)
    assert not first["cached"] and secret in {c["document_id"] for c in first["citations"]}
    assert (await ask(alice.headers))["cached"] == "exact"
    # bob has the same rights but another view: his first question is answered, not served from alice's
    assert not (await ask(bob.headers))["cached"]
    r = await client.put(
        f"/v1/documents/{secret}/access", headers=tenant.headers, json={"access": {"users": [str(alice.user_id)]}}
    )
    assert r.status_code == 200, r.text
    assert r.json()["access"]["users"] == [str(alice.user_id)]
    after = await ask(bob.headers)
    assert not after["cached"] and secret not in {c["document_id"] for c in after["citations"]}
    # back to the whole tenant, in bulk
    r = await client.put(
        "/v1/documents/access", headers=tenant.headers, json={"document_ids": [secret], "access": None}
    )
    assert r.status_code == 200 and r.json()["items"][0]["access"] is None
    assert secret in {c["document_id"] for c in (await ask(bob.headers))["citations"]}


async def client_drain(client: httpx.AsyncClient) -> None:
    """Wait for the answer cache's background writes (the app of the ASGI transport)."""
    transport = client._transport
    app = transport.app  # type: ignore[attr-defined]
    await app.state.services.answers.cache.drain()


async def test_access_lists_are_checked(
    client: httpx.AsyncClient, tenant: TenantHandle, make_tenant: MakeTenant, make_user: MakeUser
) -> None:
    other = await make_tenant()
    foreign_user = await make_user(other.tenant_id)
    foreign_group = (await client.post("/v1/groups", headers=other.headers, json={"name": "x"})).json()["group_id"]
    nobody = str(uuid.uuid4())
    for access in ({"users": [nobody]}, {"users": [str(foreign_user.user_id)]}, {"groups": [foreign_group]}):
        r = await client.post(
            "/v1/ingest", headers=tenant.headers, json={"documents": [{"text": PUBLIC, "access": access}]}
        )
        body = assert_problem(r, 422)
        named = next(iter(access.values()))[0]
        assert named in body["detail"] and "another tenant" not in body["detail"]
    doc = await ingest(client, tenant.headers, PUBLIC)
    r = await client.put(f"/v1/documents/{doc}/access", headers=tenant.headers, json={"access": {"api_keys": [nobody]}})
    assert nobody in assert_problem(r, 422)["detail"]
    r = await client.put(f"/v1/documents/{doc}/access", headers=tenant.headers, json={"access": {"users": ["x"]}})
    assert_problem(r, 422)
    # multipart: one access list for every file
    key, key_id = await make_key(client, tenant, "query")
    files = {"files": ("a.txt", SECRET.encode(), "text/plain")}
    r = await client.post(
        "/v1/ingest?wait=true",
        headers=tenant.headers,
        files=files,
        data={"access": json.dumps({"api_keys": [key_id]})},
    )
    assert r.status_code == 200, r.text
    document_id = r.json()["documents"][0]["document_id"]  # shown to the admin key, which manages access
    assert_problem(await client.get(f"/v1/documents/{document_id}", headers=tenant.headers), 404)
    got = (await client.get(f"/v1/documents/{document_id}", headers={"X-API-Key": key})).json()
    assert got["access"]["api_keys"] == [key_id]
    r = await client.post("/v1/ingest", headers=tenant.headers, files=files, data={"access": "[1]"})
    assert_problem(r, 422)


async def test_a_member_restricts_a_document_away_from_itself(
    client: httpx.AsyncClient, tenant: TenantHandle, make_user: MakeUser
) -> None:
    alice, bob = await make_user(tenant.tenant_id), await make_user(tenant.tenant_id)
    document = await ingest(client, alice.headers, PUBLIC)
    r = await client.put(
        f"/v1/documents/{document}/access", headers=alice.headers, json={"access": {"users": [str(bob.user_id)]}}
    )
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"document_id", "knowledge_base_id", "access"}  # no longer hers to read
    assert_problem(await client.get(f"/v1/documents/{document}", headers=alice.headers), 404)
    assert (await client.get(f"/v1/documents/{document}", headers=bob.headers)).status_code == 200


async def test_an_admin_key_reads_what_is_granted_to_it_and_manages_the_rest_by_id(
    client: httpx.AsyncClient, tenant: TenantHandle, make_user: MakeUser
) -> None:
    """Keys read tenant-wide documents and those granted to the key, admin keys included; with the admin
    scope a key still sets the access of, and deletes, any document by id, and sees none of its content."""
    alice = await make_user(tenant.tenant_id)
    admin = await make_user(tenant.tenant_id, "admin")
    admin_key_id = (await client.get("/v1/api-keys", headers=tenant.headers)).json()[0]["id"]
    question = "what is the zephyr budget of project quasar?"
    r = await client.post(
        "/v1/ingest?wait=true",
        headers=tenant.headers,
        json={"documents": [{"text": SECRET, "title": "Quasar budget", "access": {"users": [str(alice.user_id)]}}]},
    )
    assert r.status_code == 200, r.text
    made = r.json()["documents"][0]
    secret = made["document_id"]  # the admin key needs the id to manage the document
    assert secret is not None
    assert_problem(await client.get(f"/v1/documents/{secret}", headers=tenant.headers), 404)
    assert (await client.get("/v1/documents", headers=tenant.headers)).json()["items"] == []
    r = await client.post("/v1/query", headers=tenant.headers, json={"query": question, "cache": False})
    assert "eleven million" not in r.text and secret not in r.text
    assert secret in await cited(client, admin.headers, question)  # an admin user reads everything

    # the admin key changes the access: the answer is the access, not the document
    r = await client.put(
        f"/v1/documents/{secret}/access",
        headers=tenant.headers,
        json={"access": {"users": [str(alice.user_id), str(admin.user_id)]}},
    )
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"document_id", "knowledge_base_id", "access"}
    assert "Quasar" not in r.text and r.json()["access"]["users"] == sorted([str(alice.user_id), str(admin.user_id)])
    r = await client.put(
        "/v1/documents/access", headers=tenant.headers, json={"document_ids": [secret], "access": {"users": []}}
    )
    assert r.status_code == 200 and set(r.json()["items"][0]) == {"document_id", "knowledge_base_id", "access"}
    assert secret not in await cited(client, alice.headers, question)
    # granted to the admin key itself: now it reads it, and the answer to a change is the whole document
    r = await client.put(
        f"/v1/documents/{secret}/access", headers=tenant.headers, json={"access": {"api_keys": [admin_key_id]}}
    )
    assert r.json()["title"] == "Quasar budget"
    assert secret in await cited(client, tenant.headers, question)
    assert_problem(await client.get(f"/v1/documents/{secret}", headers=alice.headers), 404)

    # a key without the admin scope manages only what it reads
    ingest_key, _ = await make_key(client, tenant, "ingest")
    assert_problem(
        await client.put(f"/v1/documents/{secret}/access", headers={"X-API-Key": ingest_key}, json={"access": None}),
        404,
    )
    assert_problem(await client.delete(f"/v1/documents/{secret}", headers={"X-API-Key": ingest_key}), 404)
    # restricted away from the admin key again, it still deletes it by id
    await client.put(f"/v1/documents/{secret}/access", headers=tenant.headers, json={"access": {"users": []}})
    assert (await client.delete(f"/v1/documents/{secret}", headers=tenant.headers)).status_code == 204
    assert_problem(await client.get(f"/v1/documents/{secret}", headers=admin.headers), 404)


async def test_keys_and_delegation(client: httpx.AsyncClient, tenant: TenantHandle, make_user: MakeUser) -> None:
    alice = await make_user(tenant.tenant_id)
    gid = (await client.post("/v1/groups", headers=tenant.headers, json={"name": "legal"})).json()["group_id"]
    plain, plain_id = await make_key(client, tenant, "query")
    other, _ = await make_key(client, tenant, "query")
    app_key, _ = await make_key(client, tenant, "query", "delegate")
    for_key = await ingest(client, tenant.headers, SECRET, {"api_keys": [plain_id]})
    for_group = await ingest(client, tenant.headers, "Zephyr contract clause nine binds quasar.", {"groups": [gid]})
    question = "zephyr quasar budget contract"
    assert for_key in await cited(client, {"X-API-Key": plain}, question)
    assert not ({for_key, for_group} & await cited(client, {"X-API-Key": other}, question))
    # a key without the delegate scope may not name anyone
    r = await client.post(
        "/v1/query", headers={"X-API-Key": plain, "X-On-Behalf-Of": alice.email}, json={"query": question}
    )
    assert_problem(r, 403)
    delegating = {"X-API-Key": app_key, "X-On-Behalf-Of": alice.email, "X-On-Behalf-Of-Groups": "legal"}
    seen = await cited(client, delegating, question)
    assert for_group in seen and for_key not in seen
    seen = await cited(client, {**delegating, "X-On-Behalf-Of-Groups": ""}, question)
    assert for_group not in seen  # the app says: no groups
    seen = await cited(client, {"X-API-Key": app_key, "X-On-Behalf-Of": str(alice.user_id)}, question)
    assert for_group not in seen  # alice is in no group yet
    await client.post(f"/v1/groups/{gid}/members", headers=tenant.headers, json={"user_ids": [str(alice.user_id)]})
    assert for_group in await cited(client, {"X-API-Key": app_key, "X-On-Behalf-Of": str(alice.user_id)}, question)
    r = await client.post(
        "/v1/query", headers={**delegating, "X-On-Behalf-Of": "nobody@example.com"}, json={"query": "x"}
    )
    assert "nobody@example.com" in assert_problem(r, 422)["detail"]
    r = await client.post(
        "/v1/query", headers={**delegating, "X-On-Behalf-Of-Groups": "legal,ghosts"}, json={"query": "x"}
    )
    assert "ghosts" in assert_problem(r, 422)["detail"]
    r = await client.post(
        "/v1/query", headers={"X-API-Key": app_key, "X-On-Behalf-Of-Groups": "legal"}, json={"query": "x"}
    )
    assert_problem(r, 422)


async def test_a_delegating_key_names_its_end_user_by_external_id(
    client: httpx.AsyncClient, tenant: TenantHandle, make_tenant: MakeTenant, settings: Settings
) -> None:
    made = await client.post(
        "/v1/users",
        headers=tenant.headers,
        json={"email": f"crm-{uuid.uuid4().hex[:6]}@example.com", "password": "x" * 16, "external_id": "crm-7781"},
    )
    assert made.status_code == 201, made.text
    assert made.json()["external_id"] == "crm-7781"
    user_id = made.json()["id"]
    secret = await ingest(client, tenant.headers, SECRET, {"users": [user_id]})
    app_key, _ = await make_key(client, tenant, "query", "delegate")
    question = "what is the zephyr budget of project quasar?"
    assert secret in await cited(client, {"X-API-Key": app_key, "X-On-Behalf-Of": "crm-7781"}, question)
    # external ids are exact (not folded like e-mail addresses), unique in the tenant, and checked
    r = await client.post(
        "/v1/query", headers={"X-API-Key": app_key, "X-On-Behalf-Of": "CRM-7781"}, json={"query": "x"}
    )
    assert "CRM-7781" in assert_problem(r, 422)["detail"]
    twin = {"email": f"twin-{uuid.uuid4().hex[:6]}@example.com", "password": "x" * 16, "external_id": "crm-7781"}
    assert (
        "external id"
        in assert_problem(await client.post("/v1/users", headers=tenant.headers, json=twin), 409)["detail"]
    )
    for bad in (" crm", "crm\u00e9", "x" * (settings.user_external_id_max_chars + 1), ""):
        r = await client.post("/v1/users", headers=tenant.headers, json={**twin, "external_id": bad})
        assert "external_id" in assert_problem(r, 422)["detail"], bad
    # another tenant may use the same external id for its own user; it does not name this tenant's
    other = await make_tenant()
    r = await client.post("/v1/users", headers=other.headers, json={**twin, "email": "o" + twin["email"]})
    assert r.status_code == 201, r.text
    other_key, _ = await make_key(client, other, "query", "delegate")
    assert secret not in await cited(client, {"X-API-Key": other_key, "X-On-Behalf-Of": "crm-7781"}, question)
    # changed and removed by an admin
    r = await client.patch(f"/v1/users/{user_id}", headers=tenant.headers, json={"external_id": "crm-9000"})
    assert r.status_code == 200 and r.json()["external_id"] == "crm-9000"
    r = await client.patch(f"/v1/users/{user_id}", headers=tenant.headers, json={"role": "readonly"})
    assert r.json()["external_id"] == "crm-9000"  # omitted: kept
    r = await client.post(
        "/v1/query", headers={"X-API-Key": app_key, "X-On-Behalf-Of": "crm-7781"}, json={"query": "x"}
    )
    assert "crm-7781" in assert_problem(r, 422)["detail"]
    assert secret in await cited(client, {"X-API-Key": app_key, "X-On-Behalf-Of": "crm-9000"}, question)
    r = await client.patch(f"/v1/users/{user_id}", headers=tenant.headers, json={"external_id": None})
    assert r.status_code == 200 and r.json()["external_id"] is None
    r = await client.post(
        "/v1/query", headers={"X-API-Key": app_key, "X-On-Behalf-Of": "crm-9000"}, json={"query": "x"}
    )
    assert_problem(r, 422)
    # one user's e-mail as another's external id: refused, not guessed
    email = made.json()["email"]
    r = await client.post("/v1/users", headers=tenant.headers, json={**twin, "external_id": email})
    assert r.status_code == 201, r.text
    r = await client.post("/v1/query", headers={"X-API-Key": app_key, "X-On-Behalf-Of": email}, json={"query": "x"})
    assert "by id" in assert_problem(r, 422)["detail"]


async def test_the_same_bytes_ingested_again_take_the_access_they_come_with(
    client: httpx.AsyncClient, tenant: TenantHandle, make_user: MakeUser
) -> None:
    alice, bob = await make_user(tenant.tenant_id), await make_user(tenant.tenant_id)
    admin = await make_user(tenant.tenant_id, "admin")
    question = "what is the zephyr budget of project quasar?"
    document = await ingest(client, tenant.headers, SECRET)  # the whole tenant's

    async def access_now() -> Any:
        return (await client.get(f"/v1/documents/{document}", headers=admin.headers)).json()["access"]

    # JSON: the admin key (which manages access) restricts it by sending the bytes again
    r = await client.post(
        "/v1/ingest?wait=true",
        headers=tenant.headers,
        json={"documents": [{"text": SECRET, "access": {"users": [str(alice.user_id)]}}]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["documents"][0]["status"] == "duplicate"
    assert r.json()["documents"][0]["document_id"] == document
    assert (await access_now())["users"] == [str(alice.user_id)]
    assert document in await cited(client, alice.headers, question)
    assert document not in await cited(client, bob.headers, question)

    # multipart: one access list for the files of the request
    files = {"files": ("quasar.txt", SECRET.encode(), "text/plain")}
    r = await client.post(
        "/v1/ingest?wait=true",
        headers=tenant.headers,
        files=files,
        data={"access": json.dumps({"users": [str(bob.user_id)]})},
    )
    assert r.status_code == 200 and r.json()["documents"][0]["status"] == "duplicate", r.text
    assert (await access_now())["users"] == [str(bob.user_id)]
    assert document in await cited(client, bob.headers, question)
    assert document not in await cited(client, alice.headers, question)

    # a member who cannot read the document changes nothing by sending its bytes (PUT's rule)
    r = await client.post("/v1/ingest?wait=true", headers=alice.headers, files=files)
    assert r.status_code == 200 and r.json()["documents"][0]["document_id"] is None, r.text
    assert (await access_now())["users"] == [str(bob.user_id)]
    # one who reads it does: sent without an access list, it is the whole tenant's again
    r = await client.post("/v1/ingest?wait=true", headers=bob.headers, files=files)
    assert r.status_code == 200 and r.json()["documents"][0]["document_id"] == document, r.text
    assert await access_now() is None
    assert document in await cited(client, alice.headers, question)

    # other bytes under the external id of a document the caller may not read do not replace it
    memo = {
        "text": "Quasar memo, first version.",
        "external_id": "quasar-memo",
        "access": {"users": [str(bob.user_id)]},
    }
    r = await client.post("/v1/ingest?wait=true", headers=tenant.headers, json={"documents": [memo]})
    original = r.json()["documents"][0]["document_id"]
    again = {"text": "Quasar memo, forged version.", "external_id": "quasar-memo"}
    r = await client.post("/v1/ingest?wait=true", headers=alice.headers, json={"documents": [again]})
    assert "quasar-memo" in assert_problem(r, 403)["detail"]
    assert (await client.get(f"/v1/documents/{original}", headers=bob.headers)).status_code == 200
    r = await client.post("/v1/ingest?wait=true", headers=bob.headers, json={"documents": [again]})
    assert r.json()["documents"][0]["status"] == "replaced", r.text


async def test_a_conversation_read_after_a_revocation_shows_nothing_of_what_was_revoked(
    client: httpx.AsyncClient, tenant: TenantHandle, make_user: MakeUser, app_state: AppState
) -> None:
    alice = await make_user(tenant.tenant_id)
    secret = await ingest(client, tenant.headers, SECRET, {"users": [str(alice.user_id)]})
    public = await ingest(client, tenant.headers, "The cafeteria opens at eight and closes at three.")
    conversation = (await client.post("/v1/conversations", headers=alice.headers, json={})).json()["id"]
    path = f"/v1/conversations/{conversation}"
    for question, top_k in (("When does the cafeteria open?", 1), ("What is the zephyr budget of project quasar?", 5)):
        body = {"content": question, "cache": False, "top_k": top_k}
        r = await client.post(f"{path}/messages", headers=alice.headers, json=body)
        assert r.status_code == 200, r.text
    before = (await client.get(path, headers=alice.headers)).json()["messages"]
    assert {c["document_id"] for c in before[1]["citations"]} == {public}
    assert secret in {c["document_id"] for c in before[3]["citations"]} and "eleven million" in before[3]["content"]
    assert not any(m["withheld"] for m in before)
    cafeteria = before[1]

    r = await client.put(f"/v1/documents/{secret}/access", headers=tenant.headers, json={"access": {"users": []}})
    assert r.status_code == 200, r.text
    after = await client.get(path, headers=alice.headers)
    assert after.status_code == 200, after.text
    assert secret not in after.text and "eleven million" not in after.text
    messages = after.json()["messages"]
    assert messages[2]["content"] == before[2]["content"]  # her own question stays hers
    assert messages[3]["withheld"] and "withheld" in messages[3]["content"]
    assert all(c["document_id"] == public for c in messages[3]["citations"])  # what she still reads stays cited
    assert messages[1] == cafeteria  # an answer from what she still reads is untouched
    # a follow-up is condensed without the withheld answer
    owner = Owner(tenant.tenant_id, "user", alice.user_id)
    with reading_as(ReaderView.of(alice.user_id, version=1)):
        found = await app_state.conversations.store.exchanges(owner, uuid.UUID(conversation), 10)
    assert found is not None
    assert [e.answer for e in found[1]] == [cafeteria["content"], ""]
    # the stored answer is unchanged: given back her access, she reads it again
    await client.put(f"/v1/documents/{secret}/access", headers=tenant.headers, json={"access": None})
    again = (await client.get(path, headers=alice.headers)).json()["messages"]
    assert again[3]["content"] == before[3]["content"] and not again[3]["withheld"]


async def test_a_revocation_during_a_stream_applies_to_the_next_request(
    client: httpx.AsyncClient, tenant: TenantHandle, make_user: MakeUser
) -> None:
    alice = await make_user(tenant.tenant_id)
    secret = await ingest(client, tenant.headers, SECRET, {"users": [str(alice.user_id)]})
    question = "what is the zephyr budget of project quasar?"
    body = {"query": question, "stream": True, "cache": False}
    async with client.stream("POST", "/v1/query", headers=alice.headers, json=body) as streaming:
        revoke = {"access": {"users": []}}
        r = await client.put(f"/v1/documents/{secret}/access", headers=tenant.headers, json=revoke)
        assert r.status_code == 200
        text = "".join([chunk async for chunk in streaming.aiter_text()])
    events = sse_events(text)
    assert events[-1][0] == "done"
    assert secret not in await cited(client, alice.headers, question)


async def test_sync_memberships(db: Database, tenant: TenantHandle, make_user: MakeUser) -> None:
    from ragapi.tenants import groups

    alice = await make_user(tenant.tenant_id)
    synced = await groups.sync_memberships(db, tenant.tenant_id, alice.user_id, ["eng", " ops ", "eng", ""])
    assert [g.name for g in synced] == ["eng", "ops"]
    assert all(alice.user_id in g.member_ids for g in synced)
    synced = await groups.sync_memberships(db, tenant.tenant_id, alice.user_id, ["ops", "sales"])
    assert [g.name for g in synced] == ["ops", "sales"]
    every = {g.name: g for g in await groups.list_groups(db, tenant.tenant_id)}
    assert set(every) == {"eng", "ops", "sales"} and every["eng"].member_ids == ()
    assert await groups.sync_memberships(db, tenant.tenant_id, alice.user_id, []) == []
    assert all(alice.user_id not in g.member_ids for g in await groups.list_groups(db, tenant.tenant_id))
    with pytest.raises(Exception, match="no such user"):
        await groups.sync_memberships(db, tenant.tenant_id, uuid.uuid4(), ["eng"])


async def test_the_query_log_of_a_restricted_answer_is_as_restricted(
    client: httpx.AsyncClient, tenant: TenantHandle, make_user: MakeUser, app_state: AppState
) -> None:
    """Analytics' top queries and sources and the feedback export read the query log: a question that
    retrieved a restricted chunk is logged readable only by those who read all of them."""
    alice, bob = await make_user(tenant.tenant_id), await make_user(tenant.tenant_id)
    await ingest(client, tenant.headers, SECRET, {"users": [str(alice.user_id)]})
    question = f"zephyr quasar budget {uuid.uuid4().hex[:6]}"
    await cited(client, alice.headers, question)
    assert app_state.query_log is not None
    await app_state.query_log.flush()

    async def logged(view: ReaderView) -> int:
        async with app_state.db.tenant_session(tenant.tenant_id, view=view) as session:
            rows = await session.execute(text("SELECT count(*) FROM query_log WHERE query = :q"), {"q": question})
            return int(rows.scalar_one())

    assert await logged(ReaderView.of(alice.user_id)) == 1
    assert await logged(ReaderView.of(bob.user_id)) == 0
    assert await logged(EVERYTHING) == 1


async def test_semantic_hits_are_served_only_within_one_view(
    client: httpx.AsyncClient, tenant: TenantHandle, make_user: MakeUser, app_state: AppState
) -> None:
    alice, bob = await make_user(tenant.tenant_id), await make_user(tenant.tenant_id)
    gid = (await client.post("/v1/groups", headers=tenant.headers, json={"name": "leave"})).json()["group_id"]
    await client.post(f"/v1/groups/{gid}/members", headers=tenant.headers, json={"user_ids": [str(alice.user_id)]})
    doc = await ingest(client, tenant.headers, "Employees receive 27 days of annual leave per year.", {"groups": [gid]})

    async def ask(who: dict[str, str], question: str) -> dict[str, Any]:
        r = await client.post("/v1/query", headers=who, json={"query": question})
        assert r.status_code == 200, r.text
        await app_state.answers.cache.drain()
        return dict(r.json())

    first = await ask(alice.headers, "How many days of annual leave do employees get?")
    assert not first["cached"] and doc in {c["document_id"] for c in first["citations"]}
    paraphrase = "How many days of annual leave does an employee get?"
    other = await ask(bob.headers, paraphrase)
    assert not other["cached"] and doc not in json.dumps(other)
    assert (await ask(alice.headers, paraphrase))["cached"] == "semantic"
    # alice leaves the group: her view changed, so the stored answer is not hers any more
    await client.delete(f"/v1/groups/{gid}/members/{alice.user_id}", headers=tenant.headers)
    after = await ask(alice.headers, "How many days of annual leave does an employee get ?")
    assert not after["cached"] and doc not in json.dumps(after)
