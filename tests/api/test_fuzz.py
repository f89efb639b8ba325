"""The API fuzzer: every operation of the OpenAPI document, called with real credentials of two tenants and
a superadmin, and hostile values in every field of every request body.

What runs
- `test_every_operation_answers_within_its_schema`: schemathesis reads the document the app serves at
  /openapi.json and, for every operation in it, makes its coverage cases (boundary values, nulls, wrong
  types, missing fields, other methods) and has hypothesis draw FUZZ_EXAMPLES valid and FUZZ_EXAMPLES
  invalid requests (derandomized: the same requests on every run, until the schema or a library changes).
  Two requests in three carry the credential the operation is meant for (tenant A's admin API key; a
  superadmin's access token for /v1/tenants; a tenant A admin user's token for /v1/auth), the third in
  turn tenant A's key, tenant B's key, the superadmin's token, the user's token or none. Path ids are
  random UUIDs, or (one request in two) real ones: tenant A's document, job, conversation, spare API key and
  spare user, a spare tenant, and LangServe's config hash of `{}`.
- `test_hostile_values_are_refused`: walks the request schema of every operation (and of the two bodies
  POST /v1/ingest, JSON and multipart, built here) and sends, one at a time, a NUL character and a lone
  surrogate in every string, NaN, Infinity, 1e400 and 2**64 in every number, and hostile keys, values and
  nesting in every free-form object (filters, metadata, LangServe config and kwargs), as raw JSON text
  (`\\ud800` escapes, `NaN` literals), form fields and multipart parts; every other field holds a valid value,
  so the hostile one is what the server has to deal with.
- `test_input_policy`: hypothesis draws JSON values with hostile leaves for the free-form fields (REST and
  SSE query filters, search filters, LangServe filters and chat_history, a conversation's question's filters, document and
  ingest metadata): a value `core.inputs` refuses must get a 422, any other must not get a 5xx.

What is checked
- No 5xx, and no `error` event with a 5xx status inside a 200 event stream (REST SSE and LangServe).
- Every 4xx is an RFC 9457 problem (`application/problem+json` with type, title, status and detail).
- Documented statuses: schemathesis' content type, headers and body schema conformance checks. (Its
  `negative_data_rejection` is left out: pydantic's lax mode takes `0.0` for a boolean or a number for a
  date-time, which the schema calls invalid; that is FastAPI's choice, not a failure.)
- Undocumented statuses: the app documents its successes and FastAPI's 422 only, while any route can
  answer 401, 403, 404, 409, 413, 415, 422 or 429 (core/errors.py) and LangServe 400; documenting those on
  every route would say nothing, so schemathesis' `status_code_conformance` runs on 2xx and 3xx only, and
  an undocumented 4xx only has to be a problem. A 4xx the document does describe is still held to it.
The first two tests do not stop at the first failure: they collect every one, deduplicated by class
(for a 5xx the exception the server logged and the app's frame that raised it; for a failed check, the
check and its message), keep the shortest reproduction of each, and fail once with the whole list.
`test_input_policy` fails the hypothesis way, with the shrunk value.

How it runs: schemathesis only generates the requests (`as_strategy`) and checks the answers
(`validate_response`); they are sent through an httpx ASGI client to the session's app, on pytest-asyncio's
event loop, where its database pool lives. (schemathesis' own ASGI transport, `from_asgi` and `case.call`,
would start the app's lifespan a second time and call it from another event loop in a thread.) Nothing
leaves the process, nothing is downloaded.

Bounds (2 cores): FUZZ_EXAMPLES=10 is ~3,000 schemathesis requests, ~600 hostile ones and 6 x 30 policy
examples, about a minute in all. To run it longer, with the statistics (requests per operation and status):

    FUZZ_EXAMPLES=200 uv run pytest tests/api/test_fuzz.py --no-cov --timeout=0 -o log_cli=true --log-cli-level=INFO
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import time
import traceback
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import requests
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from langserve.lzstring import LZString
from schemathesis import Case, GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ragapi.api.openai_compat import errors as openai_errors
from ragapi.core import inputs
from ragapi.core.database import Database
from ragapi.core.settings import Settings
from ragapi.schemas import IngestJson
from ragapi.tenants.context import Role
from ragapi.tenants.service import create_tenant
from ragapi.tenants.users import create_user
from tests.api.helpers import PASSWORD, login

pytestmark = pytest.mark.slow

# Requests hypothesis draws per operation, valid and invalid each (on top of the coverage cases)
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
POLICY_EXAMPLES = 3 * FUZZ_EXAMPLES  # hypothesis examples per free-form field in test_input_policy

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger(__name__)


# --- the world: credentials and real ids -----------------------------------------------------------------


@dataclass
class Principal:
    name: str
    headers: dict[str, str]
    email: str | None = None  # a user's, to sign in again after the fuzzer signed it out


@dataclass
class World:
    tenant_a: uuid.UUID
    principals: dict[str, Principal]
    known: dict[str, Any]  # parameter or property name -> a real value (ids of tenant A, a spare tenant)


async def build_world(client: httpx.AsyncClient, db: Database, settings: Settings) -> World:
    """Tenants A and B, a superadmin, a tenant A admin user; and, for ids in paths and bodies, tenant A's
    document, job, query, knowledge base, spare key, spare member and a user to delete, and a spare tenant
    that allows sign-up."""
    tag = uuid.uuid4().hex[:8]

    async def user(tenant_id: uuid.UUID | None, role: Role) -> Principal:
        email = f"fuzz-{role.value}-{uuid.uuid4().hex[:8]}@example.com"
        await create_user(db, settings, tenant_id, email, PASSWORD, role)
        token = (await login(client, email))["access_token"]
        name = "superadmin" if role is Role.SUPERADMIN else "tenant A admin user"
        return Principal(name, {"Authorization": f"Bearer {token}"}, email)

    a = await create_tenant(db, f"fuzz-a-{tag}")
    b = await create_tenant(db, f"fuzz-b-{tag}")
    spare = await create_tenant(db, f"fuzz-spare-{tag}", allow_registration=True)
    key_a = {"X-API-Key": a.api_key}
    principals = [
        Principal("tenant A key", key_a),
        Principal("tenant B key", {"X-API-Key": b.api_key}),
        await user(None, Role.SUPERADMIN),
        await user(a.tenant_id, Role.ADMIN),
        Principal("anonymous", {}),
    ]
    member = await create_user(db, settings, a.tenant_id, f"fuzz-member-{tag}@example.com", PASSWORD, Role.MEMBER)
    leaving = await create_user(db, settings, a.tenant_id, f"fuzz-leaving-{tag}@example.com", PASSWORD, Role.MEMBER)
    key = await client.post("/v1/api-keys", headers=key_a, json={"name": "spare", "scopes": ["query"]})
    text = "Fuzzing sends unexpected input to a program. The fuzzer looks for crashes and hangs."
    ingest = await client.post("/v1/ingest?wait=true", headers=key_a, json={"documents": [{"text": text}]})
    answer = await client.post("/v1/query", headers=key_a, json={"query": "What does a fuzzer look for?"})
    kb = await client.post("/v1/knowledge-bases", headers=key_a, json={"name": f"fuzz-kb-{tag}"})
    conversation = await client.post("/v1/conversations", headers=key_a, json={"title": "fuzzed"})
    group = await client.post("/v1/groups", headers=key_a, json={"name": f"fuzz-group-{tag}"})
    listed = await client.post("/v1/groups", headers=key_a, json={"name": f"fuzz-readers-{tag}"})
    assert group.status_code == 201 and listed.status_code == 201, group.text
    assert key.status_code == 201 and ingest.status_code == 200 and answer.status_code == 200, answer.text
    assert kb.status_code == 201, kb.text
    assert conversation.status_code == 201, conversation.text
    known = {
        "ref": kb.json()["id"],  # a knowledge base of tenant A (the valid DELETE removes it)
        "knowledge_base": "default",  # where ingest, documents, analytics and the export look
        "knowledge_bases": "default",  # what questions search
        "embedding_model": kb.json()["embedding_model"],  # the service's
        "tenant_id": str(spare.tenant_id),
        "user_id": str(leaving.id),  # a user of tenant A whom the valid DELETE removes (access lists keep member)
        "key_id": key.json()["id"],
        "document_id": ingest.json()["documents"][0]["document_id"],
        "job_id": ingest.json()["job_id"],
        "query_id": answer.json()["query_id"],
        "conversation_id": conversation.json()["id"],
        "group_id": group.json()["group_id"],  # the valid DELETE removes it
        # access lists and group members: ids of tenant A (an unknown one is a 422, tested elsewhere)
        "users": str(member.id),
        "user_ids": str(member.id),
        "groups": listed.json()["group_id"],
        "api_keys": key.json()["id"],
        "document_ids": ingest.json()["documents"][0]["document_id"],
        "chunk_ids": answer.json()["citations"][0]["chunk_id"],
        "config_hash": LZString.compressToEncodedURIComponent("{}"),  # type: ignore[no-untyped-call]
        "username": principals[2].email,  # sign-in: an account that exists
        # an identity provider's settings: an https issuer that answers nothing (sign-in starts are a 502)
        "issuer": "https://127.0.0.1:9",
        "allowed_domains": "example.com",
        "scopes": "openid",
    }
    return World(a.tenant_id, {p.name: p for p in principals}, known)


@pytest.fixture(scope="module")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The session's app, but a 500 comes back as a response (to check) instead of as the exception."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://ragapi.test") as c:
        yield c


@pytest.fixture(scope="module")
async def world(client: httpx.AsyncClient, db: Database, settings: Settings) -> World:
    return await build_world(client, db, settings)


# --- what the server logged ------------------------------------------------------------------------------


class ServerErrors(logging.Handler):
    """Every record logged with an exception while a request runs: the traceback behind a 5xx."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.records.append(record)

    def take(self) -> list[tuple[str, str]]:
        """(exception, the app's innermost frame) of each record since the last call."""
        taken = [_summary(r.exc_info[1]) for r in self.records if r.exc_info and r.exc_info[1]]
        self.records.clear()
        return taken


def _summary(exc: BaseException) -> tuple[str, str]:
    message = (str(exc).strip().splitlines() or [""])[0][:160]
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if f.filename.startswith(str(ROOT)) and "/.venv/" not in f.filename]
    where = f"{Path(ours[-1].filename).relative_to(ROOT)}:{ours[-1].lineno} in {ours[-1].name}" if ours else "?"
    if frames and frames[-1] not in ours:  # raised in a library: name its frame too
        where += f" (raised in {'/'.join(Path(frames[-1].filename).parts[-2:])}:{frames[-1].lineno})"
    return f"{type(exc).__name__}: {message}", where


@pytest.fixture
def server_errors() -> Iterator[ServerErrors]:
    handler = ServerErrors()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


# --- findings, deduplicated by class ---------------------------------------------------------------------


@dataclass
class Finding:
    what: str
    operations: set[str]
    reproduction: str
    count: int = 1


@dataclass
class Findings:
    by_class: dict[tuple[str, ...], Finding] = field(default_factory=dict)

    def add(self, key: tuple[str, ...], what: str, operation: str, reproduction: str) -> None:
        found = self.by_class.get(key)
        if found is None:
            self.by_class[key] = Finding(what, {operation}, reproduction)
            return
        found.operations.add(operation)
        found.count += 1
        if len(reproduction) < len(found.reproduction):
            found.reproduction = reproduction

    def check(self) -> None:
        if self.by_class:
            pytest.fail(self.report(), pytrace=False)

    def report(self) -> str:
        lines = [f"{len(self.by_class)} distinct failures:"]
        for n, f in enumerate(sorted(self.by_class.values(), key=lambda f: sorted(f.operations)), 1):
            lines += [
                f"{n}. {f.what} ({f.count}x; {', '.join(sorted(f.operations))})",
                f"   {f.reproduction}",
            ]
        return "\n".join(lines)


def reproduction(principal: str, request: httpx.Request, response: httpx.Response) -> str:
    body = request.content.decode("utf-8", "backslashreplace")
    body = body if len(body) <= 400 else body[:400] + "..."
    answer = response.text if len(response.text) <= 200 else response.text[:200] + "..."
    return f"[{principal}] {request.method} {request.url.raw_path.decode()} {body} -> {response.status_code} {answer}"


def judge(
    findings: Findings, errors: ServerErrors, operation: str, label: str, principal: str, response: httpx.Response
) -> None:
    """The checks every response gets, whatever the request: no 5xx (its class: the exception the server
    logged and the app's frame that raised it), no 5xx `error` event in a stream, a problem body for every
    4xx. `label` is what the finding lists: the operation, and the field for hostile values."""
    repro = reproduction(principal, response.request, response)
    logged = errors.take()
    status = response.status_code
    if status >= 500 or any(s >= 500 for s in stream_error_statuses(response)):
        for exception, where in logged or [(f"{status} without a logged exception", "?")]:
            kind = re.sub(r"[0-9a-f-]{8,}|\d+", "#", exception)[:80]
            what = f"server error {status}: {exception} at {where}"
            findings.add(("5xx", kind, where) if where != "?" else ("5xx", operation), what, label, repro)
    elif 400 <= status < 500:
        for problem in problem_errors(response):
            findings.add(("problem", problem, str(status)), problem, label, repro)


def stream_error_statuses(response: httpx.Response) -> list[int]:
    """Statuses of the `error` events of an event stream (ours carry `status`, LangServe's `status_code`)."""
    if not response.headers.get("content-type", "").startswith("text/event-stream"):
        return []
    statuses = []
    for block in response.text.replace("\r\n", "\n").split("\n\n"):
        lines = block.split("\n")
        if any(line.startswith('data: {"error"') for line in lines):  # OpenAI's: a server_error is a 5xx
            statuses.append(500 if '"server_error"' in block else 400)
            continue
        if "event: error" not in lines and "event:error" not in lines:
            continue
        data = "\n".join(line[5:].strip() for line in lines if line.startswith("data:"))
        try:
            event = json.loads(data)
            statuses.append(int(event.get("status", event.get("status_code", 500))))
        except (ValueError, AttributeError, TypeError):
            statuses.append(500)
    return statuses


def openai_error_errors(response: httpx.Response) -> list[str]:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return ["4xx not an OpenAI error: the body is not a JSON object"]
    if not isinstance(error, dict) or {"message", "type", "param", "code"} - error.keys():
        return ["4xx not an OpenAI error: no error with message, type, param and code"]
    return []


def problem_errors(response: httpx.Response) -> list[str]:
    if response.request.url.path.startswith(openai_errors.PATHS):  # for OpenAI's SDKs
        return openai_error_errors(response)
    content_type = response.headers.get("content-type", "")
    if not content_type.startswith("application/problem+json"):
        return [f"4xx not a problem: {response.status_code} with content type {content_type or 'none'}"]
    try:
        body = response.json()
    except ValueError:
        return ["4xx not a problem: the body is not JSON"]
    if not isinstance(body, dict):
        return ["4xx not a problem: the body is not an object"]
    missing = sorted({"type", "title", "status", "detail"} - body.keys())
    if missing:
        return [f"4xx not a problem: no {', '.join(missing)}"]
    if body["status"] != response.status_code:
        return [f"4xx not a problem: status {body['status']} in a {response.status_code} response"]
    return []


def principal_for(path: str, operation: dict[str, Any]) -> str:
    """The credential an operation (its OpenAPI definition) is meant for."""
    if path.startswith("/v1/tenants"):
        return "superadmin"
    if path.startswith("/v1/auth/"):
        return "tenant A admin user" if operation.get("security") else "anonymous"
    return "tenant A key"


# --- schemathesis: every operation, generated requests ---------------------------------------------------

GENERATION = settings(
    max_examples=FUZZ_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)
CONFORMANCE = [content_type_conformance, response_headers_conformance, response_schema_conformance]
REQUESTS_ARGS = {"method", "url", "headers", "files", "data", "json", "params", "cookies"}


def cases_for(schema: Any, operation: Any) -> list[Case[Any]]:
    """schemathesis' coverage cases (boundary values, nulls, wrong types, missing fields, other methods:
    deterministic, the same list every run), then FUZZ_EXAMPLES valid and FUZZ_EXAMPLES invalid cases drawn
    by hypothesis."""
    generation = schema.config.generation_for(operation=operation)
    cases: list[Case[Any]] = list(
        schema.iter_coverage_cases(operation, generation_modes=list(GenerationMode), generation_config=generation)
    )
    for mode in GenerationMode:

        @GENERATION
        @given(case=operation.as_strategy(generation_mode=mode))
        def collect(case: Case[Any]) -> None:
            cases.append(case)

        with contextlib.suppress(Unsatisfiable):  # nothing to make invalid: no parameters, no body
            collect()
    return cases


def wire(case: Case[Any], base_url: str) -> httpx.Request:
    """The request schemathesis would send (`requests` prepares it, multipart included), for httpx."""
    kwargs = case.as_transport_kwargs(base_url=base_url)
    prepared = requests.Request(**{k: v for k, v in kwargs.items() if k in REQUESTS_ARGS}).prepare()
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    headers = {k: v for k, v in prepared.headers.items() if k.lower() not in ("x-api-key", "authorization")}
    return httpx.Request(prepared.method or "GET", prepared.url or base_url, headers=headers, content=body)


def conformance_failures(case: Case[Any], response: httpx.Response) -> list[tuple[str, str]]:
    """(title, message) of schemathesis' checks that apply to this status (see the module docstring)."""
    status = response.status_code
    documented = case.operation.responses.find_by_status_code(status) is not None
    checks = [status_code_conformance] if status < 400 else []
    checks += CONFORMANCE if documented else []
    if not checks:
        return []
    try:
        case.validate_response(response, checks=checks)
    except FailureGroup as group:
        return [(failure.title, failure.message) for failure in group.exceptions]
    return []


async def test_every_operation_answers_within_its_schema(
    client: httpx.AsyncClient, db: Database, settings: Settings, server_errors: ServerErrors
) -> None:
    fresh = await build_world(client, db, settings)  # its own: the fuzzer deletes, revokes and signs out
    document = (await client.get("/openapi.json")).json()
    config = schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}})
    schema = schemathesis.openapi.from_dict(document, config=config)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    findings, statuses, unsent, started = Findings(), Counter[tuple[str, int]](), 0, time.monotonic()
    rotation = list(fresh.principals.values())
    for operation in operations:
        cases = cases_for(schema, operation)
        main = fresh.principals[principal_for(operation.path, operation.definition.raw)]
        for n in range(max(len(cases), 3 * len(rotation))):  # every credential at least once
            case = cases[n % len(cases)]
            principal = rotation[n // 3 % len(rotation)] if n % 3 == 0 else main
            if n % 2:  # ids that exist, in one request of two
                known = {k: v for k, v in fresh.known.items() if k in (case.path_parameters or {})}
                case.path_parameters = {**(case.path_parameters or {}), **known}
            try:
                request = wire(case, str(client.base_url))
            except (ValueError, TypeError, UnicodeError):
                unsent += 1  # not expressible on the wire (requests refuses it)
                continue
            request.headers.update(principal.headers)
            response = await client.send(request)
            statuses[operation.label, response.status_code] += 1
            judge(findings, server_errors, operation.label, operation.label, principal.name, response)
            for title, message in conformance_failures(case, response):
                what = f"{title}: {' '.join(message.split())[:300]}"
                key = ("schema", title, str(response.status_code), what)  # the same mismatch anywhere
                findings.add(key, what, operation.label, reproduction(principal.name, request, response))
            if operation.path == "/v1/auth/logout" and response.status_code == 204 and principal.email:
                token = (await login(client, principal.email))["access_token"]
                principal.headers = {"Authorization": f"Bearer {token}"}
    exercised = {label for label, _ in statuses}
    log.info(
        "fuzzed %d operations with %d requests (%d cases not sendable) in %.1f s: %s",
        len(exercised),
        statuses.total(),
        unsent,
        time.monotonic() - started,
        sorted(statuses.items()),
    )
    assert exercised == {operation.label for operation in operations}, "operations never called"
    assert {f"{m.upper()} {p}" for p, ops in document["paths"].items() for m in ops} == exercised
    findings.check()


# --- hostile values in every field -----------------------------------------------------------------------

ONE_E400 = "__fuzz_1e400__"  # replaced by the literal 1e400 in the JSON text (a float cannot hold it)
INGEST = "/v1/ingest?wait=true"  # the job's outcome, not just its acceptance
SSE = "text/event-stream"
BASELINE = "no hostile value"  # the valid request each operation's hostile ones are made from


@dataclass(frozen=True)
class Hostile:
    name: str
    value: Any


def nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"d": value}
    return value


TEXTS = (Hostile("NUL", "fuzz\x00value"), Hostile("lone surrogate", "fuzz\ud800value"))
NUMBERS = (Hostile("NaN", math.nan), Hostile("Infinity", math.inf), Hostile("1e400", ONE_E400))
INTEGERS = (*NUMBERS, Hostile("2**64", 2**64))
VALUES = (*TEXTS, *INTEGERS, Hostile(f"nesting {inputs.MAX_DEPTH + 8} deep", nested(inputs.MAX_DEPTH + 8)))
FREE_FORM = (
    *(Hostile(f"value {h.name}", {"fuzz": h.value}) for h in VALUES),
    *(Hostile(f"key {h.name}", {h.value: "x"}) for h in TEXTS),
)
# Operations no request made here can satisfy: the single sign-on callback wants a state and code from a
# sign-in begun at an identity provider (tests/api/test_sso.py drives it through a real one).
UNMAKEABLE = {"GET /v1/auth/oidc/{tenant_id}/callback"}
SKIPPED_PROPERTIES = {"url"}  # DocumentIn.url: the server would fetch it; `text` is the source here
UNCHECKED_FORMATS = {"uuid", "date-time", "date", "binary"}  # parsed by pydantic before anything else


def raw_json(value: Any) -> bytes:
    """JSON text as a hostile client writes it: `\\ud800` escapes, `NaN` and `Infinity`, `1e400`."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True).replace(f'"{ONE_E400}"', "1e400").encode()


@dataclass
class Sample:
    """A valid value for a schema (every optional property filled in, fresh names and e-mail addresses),
    and the places in it where hostile values can go."""

    root: dict[str, Any]  # what `$ref`s point into
    known: dict[str, Any]
    serial: Iterator[int]
    slots: list[tuple[tuple[str | int, ...], tuple[Hostile, ...]]] = field(default_factory=list)

    def deref(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            target: Any = self.root
            for part in schema["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            schema = {**{k: v for k, v in schema.items() if k != "$ref"}, **target}
        return schema

    def build(self, schema: dict[str, Any], name: str = "", path: tuple[str | int, ...] = ()) -> Any:
        schema = self.deref(schema)
        for key in ("anyOf", "oneOf", "allOf"):
            if key in schema:
                options = [self.deref(s) for s in schema[key]]
                chosen = next((o for o in options if o.get("type") != "null"), options[0])
                return self.build({**{k: v for k, v in schema.items() if k != key}, **chosen}, name, path)
        if "enum" in schema or "const" in schema:
            return schema["enum"][0] if "enum" in schema else schema["const"]
        kind = schema.get("type")
        if kind == "object" or "properties" in schema:
            properties = schema.get("properties") or {}
            if not properties:
                self.slots.append((path, FREE_FORM))
                return {}
            return {k: self.build(v, k, (*path, k)) for k, v in properties.items() if k not in SKIPPED_PROPERTIES}
        if kind == "array":
            return [self.build(schema.get("items", {}), name, (*path, 0))]
        if kind in ("integer", "number"):
            self.slots.append((path, INTEGERS if kind == "integer" else NUMBERS))
            minimum = schema.get("minimum", 1)
            return int(minimum) if kind == "integer" else float(minimum)
        if kind == "boolean":
            return False
        if kind == "string":
            if schema.get("format") not in UNCHECKED_FORMATS:
                self.slots.append((path, TEXTS))
            return self.text(schema, name)
        return None

    def text(self, schema: dict[str, Any], name: str) -> str:
        if name in self.known:
            return str(self.known[name])
        pattern = schema.get("pattern", "")
        if pattern.startswith("^") and pattern.endswith("$") and pattern[1:-1].isalnum():
            return str(pattern[1:-1])  # a fixed word, such as an OAuth2 grant type
        if schema.get("format") == "uuid":
            return str(uuid.uuid4())
        if schema.get("format") == "date-time":
            return "2099-01-01T00:00:00Z"
        if "password" in name:
            return PASSWORD
        n = next(self.serial)
        if "email" in name:
            return f"fuzz-{n}-{uuid.uuid4().hex[:6]}@example.com"
        return f"fuzz-{n}-{uuid.uuid4().hex[:6]}"[: int(schema.get("maxLength", 64))]


def with_value(document: Any, path: tuple[str | int, ...], value: Any) -> Any:
    """A copy of `document` with `value` at `path` (merged into a free-form object)."""
    if not path:
        return {**document, **value} if isinstance(document, dict) and isinstance(value, dict) else value
    copy = list(document) if isinstance(document, list) else dict(document)
    copy[path[0]] = with_value(document[path[0]], path[1:], value)  # type: ignore[index]
    return copy


@dataclass(frozen=True)
class Attempt:
    operation: str
    field: str
    hostile: str
    method: str
    url: str
    content: bytes = b""
    content_type: str | None = None
    accept: str | None = None

    @property
    def label(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{self.operation} [{where}{self.hostile}]"


def query_string(values: Mapping[str, str | bytes]) -> str:
    return "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in values.items())


def encoded(text: str) -> bytes:
    """Text as a client that does not check it sends it: a lone surrogate becomes invalid UTF-8."""
    return text.encode("utf-8", "surrogatepass")


def operation_attempts(path: str, method: str, operation: dict[str, Any], world: World, root: Any) -> Iterator[Attempt]:
    """One request per hostile value and place: every string or number parameter in the path or query,
    every string, number and free-form object in the body; everything else valid."""
    label, serial = f"{method.upper()} {path}", count(1)
    parameters = [Sample(root, world.known, serial).deref(p) for p in operation.get("parameters", [])]
    content: dict[str, Any] = operation.get("requestBody", {}).get("content", {})
    media_type: str | None = next(iter(content), None)
    schema: dict[str, Any] = content[media_type].get("schema", {}) if media_type else {}

    def body(slot: tuple[str | int, ...] | None = None, value: Any = None) -> bytes:
        if media_type is None:
            return b""
        document = Sample(root, world.known, serial).build(schema)
        document = document if slot is None else with_value(document, slot, value)
        if media_type == "application/x-www-form-urlencoded":
            return query_string({k: encoded(v) for k, v in document.items() if v is not None}).encode()
        return raw_json(document)

    def url(hostile: dict[str, bytes]) -> str:
        filled, query = path, dict(hostile)
        for p in parameters:
            if p["in"] == "path":
                value = hostile.get(p["name"]) or world.known.get(p["name"], str(uuid.uuid4()))
                filled = filled.replace("{" + p["name"] + "}", quote(value, safe=""))
                query.pop(p["name"], None)
        return filled + ("?" + query_string(query) if query else "")

    yield Attempt(label, "", BASELINE, method, url({}), body(), media_type)
    for p in parameters:
        kind = Sample(root, world.known, serial).deref(p.get("schema", {}))
        types = {kind.get("type")} | {o.get("type") for o in kind.get("anyOf", [])}
        if kind.get("format") in UNCHECKED_FORMATS:
            continue
        where = f"{p['in']} {p['name']}"
        if "string" in types:
            for h in TEXTS:
                yield Attempt(label, where, h.name, method, url({p["name"]: encoded(h.value)}), body(), media_type)
        if types & {"integer", "number"}:
            for text in ("NaN", "Infinity", "1e400", str(2**64)):
                yield Attempt(label, where, text, method, url({p["name"]: text.encode()}), body(), media_type)
    if media_type is None:
        return
    probe = Sample(root, world.known, serial)
    probe.build(schema)
    streams = "text/event-stream" in operation["responses"].get("200", {}).get("content", {})
    for slot, hostiles in probe.slots:
        for h in hostiles:
            if media_type == "application/json" or isinstance(h.value, str):
                where = ".".join(map(str, slot))
                yield Attempt(label, where, h.name, method, url({}), body(slot, h.value), media_type)
                if streams:  # and once more as server-sent events
                    raw = body(slot, h.value)
                    yield Attempt(f"{label} (SSE)", where, h.name, method, url({}), raw, media_type, SSE)


def ingest_attempts(world: World) -> Iterator[Attempt]:
    """POST /v1/ingest reads its body itself, JSON documents or multipart: hostile values in both."""
    schema = IngestJson.model_json_schema()
    probe = Sample(schema, world.known, count(1))
    baseline = probe.build(schema)
    yield Attempt("POST /v1/ingest", "", BASELINE, "POST", INGEST, raw_json(baseline), "application/json")
    for slot, hostiles in probe.slots:
        for h in hostiles:
            raw = raw_json(with_value(baseline, slot, h.value))
            where = ".".join(map(str, slot))
            yield Attempt("POST /v1/ingest", where, h.name, "POST", INGEST, raw, "application/json")
    for h in FREE_FORM:
        yield multipart("metadata", h.name, {"metadata": raw_json(h.value)})
    for h in (*TEXTS, *NUMBERS):
        yield multipart("external_ids", h.name, {"external_ids": raw_json([h.value])})
    yield multipart("metadata", "raw NUL byte", {"metadata": b'{"fuzz": "a\x00b"}'})
    yield multipart("metadata", "invalid UTF-8", {"metadata": b'{"fuzz": "\xed\xa0\x80"}'})
    for h in TEXTS:
        yield multipart("filename", h.name, {}, encoded(h.value))


def multipart(where: str, hostile: str, fields: dict[str, bytes], filename: bytes = b"fuzz.txt") -> Attempt:
    boundary = "fuzz-boundary-7d1c"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode() + v for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="'.encode()
        + filename
        + b'"\r\nContent-Type: text/plain\r\n\r\nFuzzing finds crashes.'
    )
    content = b"\r\n".join(parts) + f"\r\n--{boundary}--\r\n".encode()
    media_type = f"multipart/form-data; boundary={boundary}"
    return Attempt("POST /v1/ingest (multipart)", where, hostile, "POST", INGEST, content, media_type)


def ingest_failures(response: httpx.Response) -> list[int]:
    """?wait=true answers with every document's outcome: a 5xx inside a finished job is a server error."""
    if response.status_code not in (200, 207) or '"documents"' not in response.text:
        return []
    return [int(d["error"]["status"]) for d in response.json().get("documents", []) if d.get("error")]


async def test_hostile_values_are_refused(
    client: httpx.AsyncClient, db: Database, settings: Settings, server_errors: ServerErrors
) -> None:
    world = await build_world(client, db, settings)  # its own: the valid requests delete and sign out
    document = (await client.get("/openapi.json")).json()
    attempts = [
        (principal_for(path, operation), attempt)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
        for attempt in operation_attempts(path, method, operation, world, document)
        if (method, path) != ("post", "/v1/ingest")  # ingest_attempts: its JSON and its multipart body
    ]
    attempts += [("tenant A key", attempt) for attempt in ingest_attempts(world)]

    findings, outcomes, started = Findings(), Counter[tuple[str, int]](), time.monotonic()
    for who, attempt in attempts:
        headers = dict(world.principals[who].headers)
        if who == "tenant A admin user":  # a password change ends its sessions: a new user each time
            email = f"fuzz-{uuid.uuid4().hex[:10]}@example.com"
            user = await create_user(db, settings, world.tenant_a, email, PASSWORD, Role.ADMIN)
            headers = {"Authorization": f"Bearer {(await login(client, user.email))['access_token']}"}
        if attempt.content_type:
            headers["Content-Type"] = attempt.content_type
        if attempt.accept:
            headers["Accept"] = attempt.accept
        request = client.build_request(attempt.method.upper(), attempt.url, headers=headers, content=attempt.content)
        response = await client.send(request)
        outcomes[attempt.operation, response.status_code] += 1
        judge(findings, server_errors, attempt.operation, attempt.label, who, response)
        if attempt.hostile == BASELINE and response.status_code in (400, 422) and attempt.operation not in UNMAKEABLE:
            what = "the fuzzer's valid request is refused: the hostile ones there test nothing (see Sample)"
            findings.add(("baseline", attempt.operation), what, attempt.label, reproduction(who, request, response))
        for status in ingest_failures(response):
            if status >= 500:
                what = f"the ingest job failed with {status}"
                repro = reproduction(who, request, response)
                findings.add(("job", attempt.operation, str(status)), what, attempt.label, repro)
        if response.status_code < 300:
            log.info("accepted: %s -> %d", attempt.label, response.status_code)
    log.info("%d hostile requests in %.1f s: %s", len(attempts), time.monotonic() - started, sorted(outcomes.items()))
    findings.check()


# --- hypothesis: the input policy at every free-form field -----------------------------------------------

HOSTILE_STRINGS = ["\x00", "a\x00b", "\ud800", "x\udfffy", "\udbff\udc00"]
KEYS = st.text(max_size=4) | st.sampled_from(HOSTILE_STRINGS)
LEAVES = (
    st.none()
    | st.booleans()
    | st.text(max_size=6)
    | st.sampled_from(HOSTILE_STRINGS)
    | st.floats()
    | st.integers()
    | st.sampled_from([ONE_E400, 2**63, -(2**63) - 1, 2**64, nested(inputs.MAX_DEPTH + 1)])
)
JSON_VALUES = st.recursive(
    LEAVES, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3), max_leaves=8
)
QUESTION = "What does a fuzzer look for?"
TARGETS: dict[str, tuple[str, str, Any]] = {
    "query filters": ("POST", "/v1/query", lambda v: {"query": QUESTION, "filters": {"fuzz": v}, "cache": False}),
    "SSE query filters": (
        "POST",
        "/v1/query",
        lambda v: {"query": QUESTION, "filters": {"fuzz": v}, "cache": False, "stream": True},
    ),
    "search filters": ("POST", "/v1/search", lambda v: {"query": QUESTION, "filters": {"fuzz": v}}),
    "LangServe invoke filters": (
        "POST",
        "/v1/rag/invoke",
        lambda v: {"input": {"query": QUESTION, "filters": {"fuzz": v}, "cache": False}},
    ),
    "LangServe stream filters": (
        "POST",
        "/v1/rag/stream",
        lambda v: {"input": {"query": QUESTION, "filters": {"fuzz": v}, "cache": False}},
    ),
    "LangServe chat_history": (
        "POST",
        "/v1/rag/invoke",
        lambda v: {"input": {"query": QUESTION, "cache": False, "chat_history": [{"type": "human", "content": v}]}},
    ),
    "conversation filters": (
        "POST",
        "/v1/conversations/{conversation_id}/messages",
        lambda v: {"content": QUESTION, "filters": {"fuzz": v}, "cache": False},
    ),
    "document metadata": ("PATCH", "/v1/documents/{document_id}", lambda v: {"metadata": {"fuzz": v}}),
    "ingest metadata": (
        "POST",
        "/v1/ingest?wait=true",
        lambda v: {"documents": [{"text": "Fuzzing finds crashes.", "metadata": {"fuzz": v}}]},
    ),
}


@pytest.mark.parametrize("target", sorted(TARGETS))
@settings(
    max_examples=POLICY_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(value=JSON_VALUES)
async def test_input_policy(client: httpx.AsyncClient, world: World, target: str, value: Any) -> None:
    method, path, body = TARGETS[target]
    raw = raw_json(body(value))
    refused = inputs.problem(json.loads(raw))  # what the policy says of the value as the server reads it
    headers = {**world.principals["tenant A key"].headers, "Content-Type": "application/json"}
    url = path.format(**world.known)
    response = await client.request(method, url, headers=headers, content=raw)
    statuses = [response.status_code, *stream_error_statuses(response), *ingest_failures(response)]
    assert max(statuses) < 500, (raw, response.text[:500])
    if response.status_code >= 400:
        assert not problem_errors(response), (raw, response.text[:500])
    if refused is not None:
        assert response.status_code == 422, (refused, raw, response.status_code, response.text[:300])
