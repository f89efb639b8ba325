"""Property: whatever access lists, group memberships and questions a tenant's principals produce, no
principal ever receives a document, chunk, citation or cached answer its view does not allow.

Two programs, against a simple model of who may read what (a document's access list of users, groups
and keys, or the whole tenant; admin users read everything; a user reads as itself and its groups; a key
as itself, the admin key included; a delegating key as the end user it names):

* the data layer, many cheap steps: each step changes one document's access (`ingestion.access`) or
  one membership (`tenants.groups`), or reads as one principal's view: the documents and chunks
  visible and a dense search (row-level security) must be exactly what the model allows;
* the HTTP surfaces, fewer steps: REST (cache on and off, so cache hits), SSE, LangServe, conversations,
  document list and get, with access changed through PUT /v1/documents/{id}/access and memberships
  through /v1/groups between them; every citation must be readable and no hidden document's code word
  may appear anywhere in a response.

A step is one call of `data_step` or `http_step`; `STEPS` counts them, and the last test asserts that
together they reached MIN_STEPS (10,000) in this run.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragapi.api.state import AppState
from ragapi.core.access import DocumentAccess, ReaderView
from ragapi.ingestion.access import set_access
from ragapi.retrieval.chunks import vector_literal
from ragapi.tenants import groups
from tests.api.helpers import sse_events
from tests.conftest import MakeTenant, MakeUser

pytestmark = pytest.mark.slow

MIN_STEPS = 10_000
STEPS = {"data": 0, "http": 0}
DOCUMENTS = 6
USERS = 3
GROUPS = 2
ADMIN_KEY = 2  # world.keys: two query keys, then the tenant's admin key
WORDS = ["apricot", "bergamot", "cardamom", "damson", "elderflower", "fenugreek"]


@dataclass
class World:
    """The tenant's principals and documents, and the model of who may read what."""

    tenant_id: uuid.UUID
    admin: dict[str, str]  # the tenant's admin key: it changes access, and reads only what it is granted
    admin_user: dict[str, str]  # a person with the admin role: reads everything
    users: list[uuid.UUID]
    user_headers: list[dict[str, str]]
    groups: list[uuid.UUID]
    keys: list[uuid.UUID]
    key_headers: list[dict[str, str]]
    delegating: dict[str, str]
    documents: list[uuid.UUID]
    access: dict[uuid.UUID, DocumentAccess | None] = field(default_factory=dict)
    members: dict[uuid.UUID, set[uuid.UUID]] = field(default_factory=dict)  # group -> users
    conversations: dict[str, str] = field(default_factory=dict)

    def groups_of(self, user: uuid.UUID) -> set[uuid.UUID]:
        return {g for g, users in self.members.items() if user in users}

    def view(self, who: tuple[str, int]) -> set[uuid.UUID] | None:
        """The ids a principal reads as (None: everything)."""
        kind, n = who
        if kind == "admin_user":
            return None
        if kind == "admin":
            return {self.keys[ADMIN_KEY]}
        if kind == "key":
            return {self.keys[n]}
        user = self.users[n]  # "user", or "delegate" acting for that user
        return {user} | self.groups_of(user)

    def visible(self, who: tuple[str, int]) -> set[uuid.UUID]:
        ids = self.view(who)
        return {
            d for d in self.documents if ids is None or (a := self.access.get(d)) is None or bool(set(a.readers) & ids)
        }

    def headers(self, who: tuple[str, int]) -> dict[str, str]:
        kind, n = who
        if kind == "admin":
            return self.admin
        if kind == "admin_user":
            return self.admin_user
        if kind == "key":
            return self.key_headers[n]
        if kind == "delegate":
            return {**self.delegating, "X-On-Behalf-Of": str(self.users[n])}
        return self.user_headers[n]


async def build_world(client: httpx.AsyncClient, make_tenant: MakeTenant, make_user: MakeUser) -> World:
    tenant = await make_tenant()
    users = [await make_user(tenant.tenant_id) for _ in range(USERS)]
    admin_user = await make_user(tenant.tenant_id, "admin")
    admin_key = uuid.UUID((await client.get("/v1/api-keys", headers=tenant.headers)).json()[0]["id"])
    group_ids = []
    for n in range(GROUPS):
        r = await client.post("/v1/groups", headers=tenant.headers, json={"name": f"g{n}"})
        group_ids.append(uuid.UUID(r.json()["group_id"]))
    keys, key_headers = [], []
    for n in range(2):
        r = await client.post("/v1/api-keys", headers=tenant.headers, json={"name": f"k{n}", "scopes": ["query"]})
        keys.append(uuid.UUID(r.json()["id"]))
        key_headers.append({"X-API-Key": r.json()["api_key"]})
    keys.append(admin_key)  # ADMIN_KEY: access lists may name it too
    r = await client.post("/v1/api-keys", headers=tenant.headers, json={"name": "app", "scopes": ["query", "delegate"]})
    delegating = {"X-API-Key": r.json()["api_key"]}
    texts = [f"Spice memo {n}: the secret code word of memo {n} is {w}." for n, w in enumerate(WORDS)]
    r = await client.post(
        "/v1/ingest?wait=true", headers=tenant.headers, json={"documents": [{"text": t} for t in texts]}
    )
    assert r.status_code == 200, r.text
    documents = [uuid.UUID(d["document_id"]) for d in r.json()["documents"]]
    return World(
        tenant.tenant_id,
        tenant.headers,
        admin_user.headers,
        [u.user_id for u in users],
        [u.headers for u in users],
        group_ids,
        keys,
        key_headers,
        delegating,
        documents,
        members={g: set() for g in group_ids},
    )


@pytest.fixture
async def world(client: httpx.AsyncClient, make_tenant: MakeTenant, make_user: MakeUser) -> World:
    return await build_world(client, make_tenant, make_user)


ACCESS = st.one_of(
    st.none(),
    st.tuples(
        st.sets(st.integers(0, USERS - 1), max_size=2),
        st.sets(st.integers(0, GROUPS - 1), max_size=2),
        st.sets(st.integers(0, ADMIN_KEY), max_size=1),
    ),
)
PRINCIPAL = st.one_of(
    st.just(("admin", 0)),
    st.just(("admin_user", 0)),
    st.tuples(st.sampled_from(["user", "delegate"]), st.integers(0, USERS - 1)),
    st.tuples(st.just("key"), st.integers(0, 1)),
)
CHANGE = st.one_of(
    st.tuples(st.just("access"), st.integers(0, DOCUMENTS - 1), ACCESS),
    st.tuples(st.just("join"), st.integers(0, GROUPS - 1), st.integers(0, USERS - 1)),
    st.tuples(st.just("leave"), st.integers(0, GROUPS - 1), st.integers(0, USERS - 1)),
)


def access_of(world: World, drawn: Any) -> DocumentAccess | None:
    if drawn is None:
        return None
    users, group_ns, keys = drawn
    return DocumentAccess.of(
        [world.users[n] for n in users], [world.groups[n] for n in group_ns], [world.keys[n] for n in keys]
    )


def reader_view(world: World, who: tuple[str, int]) -> ReaderView:
    """As the credential check builds it (`Principal.view`, `delegation.delegated_view`)."""
    ids = world.view(who)
    if ids is None:
        return ReaderView(everything=True, version=1)
    return ReaderView(frozenset(ids), version=1)


# --- the data layer ---------------------------------------------------------------------------------

# three reads to a change: reads are what can leak, changes are what make them interesting
DATA_STEP = st.integers(0, 3).flatmap(
    lambda n: st.tuples(st.just("change"), CHANGE) if n == 0 else st.tuples(st.just("read"), PRINCIPAL)
)


async def data_step(state: AppState, driver: asyncpg.Connection, world: World, vector: list[float], op: Any) -> None:
    STEPS["data"] += 1
    db, tenant_id = state.db, world.tenant_id
    kind, arg = op
    if kind == "change":
        what, a, b = arg
        if what == "access":
            given = access_of(world, b)
            await set_access(db, tenant_id, [world.documents[a]], given, 1000, manage=True)  # as an admin
            world.access[world.documents[a]] = given
        elif what == "join":
            await groups.add_members(db, tenant_id, world.groups[a], [world.users[b]])
            world.members[world.groups[a]].add(world.users[b])
        else:
            await groups.remove_members(db, tenant_id, world.groups[a], [world.users[b]])
            world.members[world.groups[a]].discard(world.users[b])
        return
    allowed = world.visible(arg)
    # one transaction on a connection of its own, as `Database.tenant_session` sets it up: the reads run
    # thousands of times, and a SQLAlchemy session costs more than the statements
    async with driver.transaction():
        await driver.execute(
            "SELECT set_config('role', $1, true), set_config('app.tenant_id', $2, true), "
            "set_config('app.readers', $3, true)",
            state.db.app_role,
            str(tenant_id),
            reader_view(world, arg).setting,
        )
        rows = await driver.fetch(READ, tenant_id, vector_literal(vector), DOCUMENTS)
    seen: dict[str, set[uuid.UUID]] = {"d": set(), "c": set(), "v": set()}
    for kind_, doc in rows:
        seen[kind_].add(uuid.UUID(bytes=doc.bytes))
    assert seen["d"] == allowed, (arg, seen["d"], allowed)
    assert seen["c"] == allowed, (arg, seen["c"], allowed)
    assert seen["v"] == allowed, (arg, seen["v"], allowed)  # one chunk per document: k covers them all


# documents, chunks, and the dense search's statement (`retrieval.chunks.dense_search`), as the view sees them
READ = """
SELECT 'd', id FROM documents WHERE tenant_id = $1
UNION ALL SELECT DISTINCT 'c', document_id FROM chunks WHERE tenant_id = $1
UNION ALL SELECT 'v', document_id FROM (
    SELECT c.document_id FROM chunks c WHERE c.tenant_id = $1 AND c.embedding_dim = 384
    ORDER BY c.embedding::vector(384) <=> CAST($2 AS vector(384)) LIMIT $3
) nearest
"""


@settings(
    max_examples=240,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(program=st.lists(DATA_STEP, min_size=42, max_size=44))
async def test_the_data_layer_never_shows_a_principal_more_or_less_than_it_may_read(
    app_state: AppState, world: World, driver: asyncpg.Connection, program: list[Any]
) -> None:
    vector = await app_state.embeddings.aembed_query("secret code word of the spice memo")
    for op in program:
        await data_step(app_state, driver, world, vector, op)


@pytest.fixture
async def driver(app_state: AppState) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(app_state.db.url)
    yield connection
    await connection.close()


# --- the HTTP surfaces ------------------------------------------------------------------------------

SURFACE = st.sampled_from(["rest", "rest_cached", "sse", "langserve", "conversation", "list", "get"])
HTTP_STEP = st.one_of(
    st.tuples(st.just("change"), CHANGE), st.tuples(st.just("ask"), PRINCIPAL, SURFACE, st.integers(0, 5))
)
QUESTION = "What is the secret code word of the spice memo?"


async def http_change(client: httpx.AsyncClient, world: World, arg: Any) -> httpx.Response:
    what, a, b = arg
    if what == "access":
        given = access_of(world, b)
        body = {"access": None if given is None else given.as_json()}
        r = await client.put(f"/v1/documents/{world.documents[a]}/access", headers=world.admin, json=body)
        world.access[world.documents[a]] = given
        return r
    group, user = world.groups[a], world.users[b]
    if what == "join":
        r = await client.post(f"/v1/groups/{group}/members", headers=world.admin, json={"user_ids": [str(user)]})
        world.members[group].add(user)
    else:
        r = await client.delete(f"/v1/groups/{group}/members/{user}", headers=world.admin)
        world.members[group].discard(user)
    return r


async def ask(
    client: httpx.AsyncClient, world: World, who: tuple[str, int], surface: str, n: int
) -> tuple[str, set[str]]:
    """The response's text and the document ids it cites or lists."""
    h = world.headers(who)
    if surface in ("rest", "rest_cached"):
        body = {"query": QUESTION, "top_k": DOCUMENTS, "cache": surface == "rest_cached"}
        r = await client.post("/v1/query", headers=h, json=body)
        assert r.status_code == 200, r.text
        return r.text, {c["document_id"] for c in r.json()["citations"]}
    if surface == "sse":
        body = {"query": QUESTION, "top_k": DOCUMENTS, "stream": True, "cache": n % 2 == 0}
        r = await client.post("/v1/query", headers=h, json=body)
        events = sse_events(r.text)
        assert events[-1][0] == "done", r.text
        return r.text, {c["document_id"] for name, data in events if name == "done" for c in data["citations"]}
    if surface == "langserve":
        r = await client.post("/v1/rag/invoke", headers=h, json={"input": {"query": QUESTION, "top_k": DOCUMENTS}})
        assert r.status_code == 200, r.text
        return r.text, {c["document_id"] for c in r.json()["output"]["citations"]}
    if surface == "conversation":
        key = f"{who[0]}{who[1]}"
        if key not in world.conversations:
            world.conversations[key] = (await client.post("/v1/conversations", headers=h, json={})).json()["id"]
        path = f"/v1/conversations/{world.conversations[key]}/messages"
        r = await client.post(path, headers=h, json={"content": QUESTION, "top_k": DOCUMENTS})
        if r.status_code == 409:  # full: start another
            del world.conversations[key]
            return r.text, set()
        assert r.status_code == 200, r.text
        return r.text, {c["document_id"] for c in r.json()["citations"]}
    if surface == "list":
        r = await client.get("/v1/documents", headers=h, params={"limit": 100})
        listed = {d["document_id"] for d in r.json()["items"]}
        assert listed == {str(d) for d in world.visible(who)}
        return r.text, listed
    document = world.documents[n % DOCUMENTS]
    r = await client.get(f"/v1/documents/{document}", headers=h)
    assert r.status_code == (200 if document in world.visible(who) else 404), r.text
    if r.status_code == 404:  # the problem names the path the caller asked for, nothing more
        return "", set()
    return r.text, {r.json()["document_id"]}


async def http_step(client: httpx.AsyncClient, world: World, op: Any) -> None:
    STEPS["http"] += 1
    if op[0] == "change":
        r = await http_change(client, world, op[1])
        assert r.status_code == 200, r.text
        return
    _, who, surface, n = op
    allowed = world.visible(who)
    body, shown = await ask(client, world, who, surface, n)
    assert shown <= {str(d) for d in allowed}, (who, surface, shown, allowed)
    for d, word in zip(world.documents, WORDS, strict=True):
        if d not in allowed:
            assert word not in body, (who, surface, word)
            assert str(d) not in body, (who, surface, d)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(program=st.lists(HTTP_STEP, min_size=10, max_size=12))
async def test_no_surface_ever_serves_a_principal_what_it_may_not_read(
    client: httpx.AsyncClient, app_state: AppState, world: World, program: list[Any]
) -> None:
    for op in program:
        await http_step(client, world, op)
        await app_state.answers.cache.drain()  # a stored answer is there for the next step's cache hit


def test_the_suite_ran_its_steps() -> None:
    """Runs after the two properties (file order): their steps together reach MIN_STEPS."""
    assert STEPS["data"] + STEPS["http"] >= MIN_STEPS, STEPS
