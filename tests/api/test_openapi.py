"""The OpenAPI document as a reader meets it in /docs and /redoc: tags in reading order with LangServe's
plumbing last, every body with a schema and an example that fits it, and the multipart ingest described
so that "Try it out" offers a file picker."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

READING_ORDER = [
    "ingest",
    "documents",
    "query",
    "conversations",
    "feedback",
    "analytics",
    "openai-compatible",
    "knowledge bases",
    "groups",
    "api keys",
    "users",
    "tenants",
    "single sign-on",
    "auth",
    "health",
    "langserve",
    "langserve config",
]
# Success responses without a body: deletions and the like (204), and the reset-token request, which
# answers 202 alike whether or not the account exists.
EMPTY = {"204"}
EMPTY_OPERATIONS = {("post", "/v1/auth/forgot-password")}


@pytest.fixture(scope="module")
async def spec(client: httpx.AsyncClient) -> dict[str, Any]:
    document: dict[str, Any] = (await client.get("/openapi.json")).json()
    return document


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in spec["paths"].items() for method, op in ops.items()]


def check(spec: dict[str, Any], schema: dict[str, Any], example: Any, where: str) -> None:
    # OpenAPI 3.1 schemas are JSON Schema 2020-12; the components ride along for the $refs to resolve.
    validator = Draft202012Validator(
        {"allOf": [schema], "components": spec["components"]}, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(example)]
    assert not errors, f"{where}: the example does not fit its schema: {errors[:3]}"


def events(stream: str) -> list[dict[str, str]]:
    """The events of a server-sent event stream, as {event, data}."""
    found = []
    for block in stream.split("\n\n")[:-1]:
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        found.append(fields)
    return found


async def test_tags_are_in_reading_order_with_langserve_last(spec: dict[str, Any]) -> None:
    assert [tag["name"] for tag in spec["tags"]] == READING_ORDER
    assert all(tag["description"] for tag in spec["tags"])
    seen: list[str] = []
    for _, _, operation in operations(spec):
        assert len(operation["tags"]) == 1 and operation["tags"][0] in READING_ORDER, operation["tags"]
        if operation["tags"][0] not in seen:
            seen.append(operation["tags"][0])
    assert seen == READING_ORDER  # paths follow the tags, so a renderer that lists them in order agrees
    assert next(iter(spec["paths"])) == "/v1/ingest"


async def test_every_operation_answers_a_body_with_a_schema_and_a_fitting_example(spec: dict[str, Any]) -> None:
    checked = 0
    for method, path, operation in operations(spec):
        successes = {status: r for status, r in operation["responses"].items() if status[0] in "23"}
        assert successes, f"{method} {path} documents no success"
        for status, response in successes.items():
            where = f"{method.upper()} {path} {status}"
            if status.startswith("3"):  # a redirect (the sign-in through an identity provider): no body
                assert not response.get("content"), f"{where} documents a body on a redirect"
                continue
            if status in EMPTY or (method, path) in EMPTY_OPERATIONS:
                assert not response.get("content"), f"{where} documents a body it does not send"
                continue
            assert response.get("content"), f"{where} has no body"
            for media_type, media in response["content"].items():
                assert media.get("schema"), f"{where} {media_type} has no schema"
                assert "example" in media, f"{where} {media_type} has no example"
                if media_type == "text/event-stream":  # the schema is one event's
                    assert media["example"].endswith("\n\n"), where
                    for event in events(media["example"]):
                        check(spec, media["schema"], event, f"{where} {media_type}")
                else:
                    check(spec, media["schema"], media["example"], f"{where} {media_type}")
                checked += 1
    assert checked >= 55


async def test_an_example_that_does_not_fit_is_caught(spec: dict[str, Any]) -> None:
    user = spec["components"]["schemas"]["UserOut"]["examples"][0]
    with pytest.raises(AssertionError, match="id"):
        check(spec, {"$ref": "#/components/schemas/UserOut"}, {**user, "id": "not a uuid"}, "UserOut")
    with pytest.raises(AssertionError, match="email"):
        check(
            spec, {"$ref": "#/components/schemas/UserOut"}, {k: v for k, v in user.items() if k != "email"}, "UserOut"
        )


async def test_every_json_request_body_has_a_schema_and_a_fitting_example(spec: dict[str, Any]) -> None:
    checked = 0
    for method, path, operation in operations(spec):
        if method in ("post", "put", "patch") and not path.endswith(("/logout", "/cancel")):
            assert "requestBody" in operation, f"{method.upper()} {path} has no request body"
        for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
            where = f"{method.upper()} {path} {media_type}"
            assert media.get("schema"), f"{where} has no schema"
            if media_type == "multipart/form-data":
                continue  # files cannot be given as an example
            assert "example" in media, f"{where} has no example"
            check(spec, media["schema"], media["example"], where)
            checked += 1
    assert checked >= 25


async def test_ingest_takes_files_as_binary_parts_or_json_documents(spec: dict[str, Any]) -> None:
    body = spec["paths"]["/v1/ingest"]["post"]["requestBody"]
    assert body["required"] is True
    form = body["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["files"]
    assert form["properties"]["files"] == {**form["properties"]["files"], "type": "array"}
    assert form["properties"]["files"]["items"] == {"type": "string", "format": "binary"}
    documents = body["content"]["application/json"]
    assert documents["schema"] == {"$ref": "#/components/schemas/IngestJson"}
    assert spec["components"]["schemas"]["IngestJson"]["properties"]["documents"]["items"] == {
        "$ref": "#/components/schemas/DocumentIn"
    }


async def test_the_ingest_example_is_accepted_as_documented(
    client: httpx.AsyncClient, spec: dict[str, Any], tenant: Any
) -> None:
    """The JSON ingest example, sent as is (its URL document refused offline, the text one indexed)."""
    example = spec["paths"]["/v1/ingest"]["post"]["requestBody"]["content"]["application/json"]["example"]
    text_only = {"documents": [d for d in example["documents"] if "text" in d]}
    response = await client.post("/v1/ingest?wait=true", headers=tenant.headers, json=text_only)
    assert response.status_code == 200, response.text
    assert [d["status"] for d in response.json()["documents"]] == ["created"]
    query = spec["paths"]["/v1/query"]["post"]["requestBody"]["content"]["application/json"]["example"]
    answer = await client.post("/v1/query", headers=tenant.headers, json={**query, "knowledge_bases": None})
    assert answer.status_code == 200, answer.text
    assert "25 days" in answer.json()["answer"]
