"""Property: whatever sequence of API calls two tenants make, neither ever reads the other's data.

Hypothesis draws programs of calls (ingest, list, read, delete, query over REST and LangServe, key
management, usage) by either tenant, aimed at ids of either tenant. After every call the response is
checked: no id or marker word of the other tenant, foreign ids answer 404, and each tenant's document
list equals what a simple model says it should hold.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TenantHandle

pytestmark = pytest.mark.slow

WORDS = {"A": "aardvark", "B": "bumblebee"}


@dataclass
class Side:
    handle: TenantHandle
    word: str
    docs: set[str] = field(default_factory=set)
    jobs: set[str] = field(default_factory=set)
    keys: set[str] = field(default_factory=set)
    seq: int = 0


def ids_in(value: Any) -> set[str]:
    """Every UUID-looking string anywhere in a JSON value."""
    found: set[str] = set()
    if isinstance(value, dict):
        for v in value.values():
            found |= ids_in(v)
    elif isinstance(value, list):
        for v in value:
            found |= ids_in(v)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            found.add(str(uuid.UUID(value)))
    return found


OPS = st.sampled_from(
    ["ingest", "list", "get", "delete", "query", "rag", "job", "key_create", "key_revoke", "key_list", "usage"]
)
PROGRAM = st.lists(
    st.tuples(st.sampled_from("AB"), OPS, st.sampled_from("AB"), st.integers(0, 50)), min_size=3, max_size=12
)


@pytest.fixture
async def sides(make_tenant) -> dict[str, Side]:  # type: ignore[no-untyped-def]
    return {name: Side(await make_tenant(f"prop-{name}"), word) for name, word in WORDS.items()}


def pick(pool: set[str], n: int) -> str:
    return sorted(pool)[n % len(pool)] if pool else str(uuid.uuid4())


async def step(client: httpx.AsyncClient, sides: dict[str, Side], actor: str, op: str, target: str, n: int) -> None:
    me, other = sides[actor], sides["B" if actor == "A" else "A"]
    aim = sides[target]
    h = me.handle.headers
    if op == "ingest":
        me.seq += 1
        text = f"Note {me.seq} about the {me.word}: the {me.word} number {me.seq} likes item {n}."
        r = await client.post("/v1/ingest?wait=true", headers=h, json={"documents": [{"text": text}]})
        assert r.status_code == 200, r.text
        me.docs |= {d["document_id"] for d in r.json()["documents"] if d["document_id"]}
        me.jobs.add(r.json()["job_id"])
    elif op == "list":
        r = await client.get("/v1/documents", headers=h, params={"limit": 100})
        assert {d["document_id"] for d in r.json()["items"]} == me.docs
    elif op in ("get", "delete"):
        doc = pick(aim.docs, n)
        r = await client.request("GET" if op == "get" else "DELETE", f"/v1/documents/{doc}", headers=h)
        if doc in me.docs:
            assert r.status_code in (200, 204)
            if op == "delete":
                me.docs.discard(doc)
        else:
            assert r.status_code == 404, (op, r.status_code)
    elif op in ("query", "rag"):
        question = f"What does the {aim.word} like?"
        if op == "query":
            r = await client.post("/v1/query", headers=h, json={"query": question, "cache": n % 2 == 0})
            body = r.json()
        else:
            config = {"configurable": {"tenant_id": str(other.handle.tenant_id)}}
            r = await client.post("/v1/rag/invoke", headers=h, json={"input": {"query": question}, "config": config})
            body = r.json()["output"]
        assert r.status_code == 200, r.text
        cited = {c["document_id"] for c in body["citations"]}
        assert cited <= me.docs
        assert other.word not in body["answer"] and all(other.word not in c["snippet"] for c in body["citations"])
    elif op == "job":
        job = pick(aim.jobs, n)
        r = await client.get(f"/v1/ingest/jobs/{job}", headers=h)
        assert r.status_code == (200 if job in me.jobs else 404)
    elif op == "key_create":
        r = await client.post("/v1/api-keys", headers=h, json={"name": f"k{n}", "scopes": ["query"]})
        assert r.status_code == 201
        me.keys.add(r.json()["id"])
    elif op == "key_revoke":
        key = pick(aim.keys, n)
        r = await client.delete(f"/v1/api-keys/{key}", headers=h)
        assert r.status_code == (204 if key in me.keys else 404)
    elif op == "key_list":
        r = await client.get("/v1/api-keys", headers=h)
        assert {k["id"] for k in r.json()} - me.keys <= {k["id"] for k in r.json() if k["name"] == "initial admin key"}
    elif op == "usage":
        r = await client.get("/v1/tenant", headers=h)
        assert r.json()["id"] == str(me.handle.tenant_id)
    foreign = other.docs | other.jobs | other.keys | {str(other.handle.tenant_id)}
    assert not ids_in(r.json() if r.content else None) & foreign, f"{actor} {op} leaked the other tenant's ids"
    assert other.word not in r.text, f"{actor} {op} leaked the other tenant's text"


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(program=PROGRAM)
async def test_no_sequence_of_calls_crosses_tenants(
    client: httpx.AsyncClient, sides: dict[str, Side], program: list[tuple[str, str, str, int]]
) -> None:
    for actor, op, target, n in program:
        await step(client, sides, actor, op, target, n)
