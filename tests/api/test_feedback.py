"""Feedback: linked to the query and its sources, one per person (updatable), 404 across tenants, and
exported as an evaluation set that `ragapi eval --tenant` replays as a gate."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import httpx
from typer.testing import CliRunner

from ragapi.api.cli import app as cli
from tests.api.helpers import assert_problem, ingest_texts
from tests.conftest import MakeUser, TenantHandle


async def ask(client: httpx.AsyncClient, tenant: TenantHandle, question: str) -> dict:  # type: ignore[type-arg]
    response = await client.post("/v1/query", headers=tenant.headers, json={"query": question, "cache": False})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_feedback_is_one_per_person_and_updatable(
    client: httpx.AsyncClient, tenant: TenantHandle, make_user: MakeUser
) -> None:
    await ingest_texts(client, tenant, "Expenses are reimbursed within 30 days.", "Travel must be booked via Portal.")
    answer = await ask(client, tenant, "When are expenses reimbursed?")
    body = {"query_id": answer["query_id"], "rating": 1, "comment": "spot on"}
    first = await client.post("/v1/feedback", headers=tenant.headers, json=body)  # right away: not yet flushed
    assert first.status_code == 201, first.text
    again = await client.post("/v1/feedback", headers=tenant.headers, json={**body, "rating": 0.25})
    assert again.status_code == 200 and again.json()["feedback_id"] == first.json()["feedback_id"]
    assert again.json()["score"] == 0.25
    member = await make_user(tenant.tenant_id, "member")
    other_person = await client.post("/v1/feedback", headers=member.headers, json={**body, "rating": -1})
    assert other_person.status_code == 201 and other_person.json()["score"] == 0.0
    reader = await make_user(tenant.tenant_id, "readonly")
    assert_problem(await client.post("/v1/feedback", headers=reader.headers, json=body), 403)

    for bad in ({**body, "rating": 2}, {**body, "rating": -0.5}, {**body, "chunk_ids": [str(uuid.uuid4())]},
                {**body, "comment": "x" * 4001}, {**body, "tenant_id": str(tenant.tenant_id)}):  # fmt: skip
        assert_problem(await client.post("/v1/feedback", headers=tenant.headers, json=bad), 422)
    source = answer["citations"][0]["chunk_id"]
    scoped = await client.post("/v1/feedback", headers=tenant.headers, json={**body, "chunk_ids": [source]})
    assert scoped.status_code == 200


async def test_feedback_on_another_tenants_query_is_404(
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    other = await make_tenant()
    await ingest_texts(client, other, "Other tenant's fact.")
    theirs = await ask(client, other, "fact?")
    for query_id in (theirs["query_id"], str(uuid.uuid4())):
        response = await client.post("/v1/feedback", headers=tenant.headers, json={"query_id": query_id, "rating": 1})
        assert assert_problem(response, 404)["detail"] == "no such query"


async def test_export_replays_as_a_regression_gate(
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    cli_env: CliRunner,
    tmp_path: Path,
) -> None:
    ids = await ingest_texts(
        client,
        tenant,
        "Expenses are reimbursed within 30 days of submission.",
        "Laptops are replaced every three years.",
        "The cafeteria serves lunch from noon.",
    )
    good = await ask(client, tenant, "How fast are expenses reimbursed?")
    bad = await ask(client, tenant, "When is lunch?")
    await client.post("/v1/feedback", headers=tenant.headers, json={"query_id": good["query_id"], "rating": 1})
    await client.post("/v1/feedback", headers=tenant.headers, json={"query_id": bad["query_id"], "rating": -1})
    exported = (await client.get("/v1/feedback/export", headers=tenant.headers)).json()
    assert exported["queries"] == [{"_id": good["query_id"], "text": "How fast are expenses reimbursed?"}]
    assert {r["corpus-id"] for r in exported["qrels"]} <= set(ids) and exported["qrels"]

    folder = tmp_path / "feedback-set"
    tid = str(tenant.tenant_id)
    out = await asyncio.to_thread(cli_env.invoke, cli, ["feedback", "export", "--tenant", tid, str(folder)])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == {"queries": 1, "qrels": len(exported["qrels"])}
    gate = ["eval", str(folder), "--tenant", tid, "--min-ndcg", "0.9"]
    passed = await asyncio.to_thread(cli_env.invoke, cli, gate)
    assert passed.exit_code == 0, passed.output
    assert json.loads(passed.stdout)["ndcg@10"] == 1.0
    # The relevant document disappears: the same gate now fails.
    doc = exported["qrels"][0]["corpus-id"]
    assert (await client.delete(f"/v1/documents/{doc}", headers=tenant.headers)).status_code == 204
    failed = await asyncio.to_thread(cli_env.invoke, cli, gate)
    assert failed.exit_code == 1 and "below the gate" in failed.output
