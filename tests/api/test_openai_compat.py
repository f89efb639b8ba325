"""The OpenAI-compatible routes as OpenAI's own SDK (sync, async, streaming) and LangChain's ChatOpenAI use
them, against `ragapi serve` over real HTTP: models are the knowledge bases a key may use, answers carry
citations, follow-ups are rewritten, errors raise the SDK's usual exceptions, and another tenant's key
sees none of it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI

from tests.api.helpers import served_tenant
from tests.conftest import Served

pytestmark = pytest.mark.slow

HANDBOOK = [
    "The VPN endpoint is vpn.example.com. It accepts connections on port 4433 over UDP.",
    "The cafeteria opens at 8 am and closes at 3 pm on weekdays.",
    "Expense reports are due on the fifth working day of each month.",
]
WIKI = ["The build server is ci.example.com; it keeps build logs for 30 days."]


@pytest.fixture(scope="module")
def acme(served: Served) -> dict[str, str]:
    return served_tenant(
        served, "Acme OpenAI", {"handbook": HANDBOOK, "wiki": WIKI, "default": ["Acme was founded in 1999."]}
    )


@pytest.fixture(scope="module")
def other(served: Served) -> dict[str, str]:
    return served_tenant(served, "Other OpenAI", {"default": ["Other Corp sells umbrellas."]})


@pytest.fixture
def sdk(served: Served, acme: dict[str, str]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=served.url + "/v1", api_key=acme["api_key"], max_retries=0) as c:
        yield c


def extra(model: Any) -> dict[str, Any]:
    fields: dict[str, Any] = model.model_extra or {}
    return fields


def test_models_are_the_knowledge_bases_the_key_may_use(
    sdk: openai.OpenAI, served: Served, other: dict[str, str]
) -> None:
    ids = {m.id for m in sdk.models.list()}
    assert ids == {"default", "handbook", "wiki"}
    handbook = sdk.models.retrieve("handbook")
    assert handbook.id == "handbook" and handbook.object == "model" and handbook.created > 0
    assert uuid.UUID(extra(handbook)["knowledge_base_id"])
    by_id = sdk.models.retrieve(extra(handbook)["knowledge_base_id"])
    assert extra(by_id)["knowledge_base_id"] == extra(handbook)["knowledge_base_id"]
    assert sdk.models.retrieve("handbook+wiki").id == "handbook+wiki"
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.models.retrieve("nonexistent")
    assert missing.value.code == "model_not_found"

    with openai.OpenAI(base_url=served.url + "/v1", api_key=other["api_key"], max_retries=0) as stranger:
        assert {m.id for m in stranger.models.list()} == {"default"}
        with pytest.raises(openai.NotFoundError):
            stranger.models.retrieve("handbook")
        with pytest.raises(openai.NotFoundError) as refused:
            stranger.chat.completions.create(model="handbook", messages=[{"role": "user", "content": "VPN endpoint?"}])
        assert refused.value.code == "model_not_found" and refused.value.status_code == 404
        with pytest.raises(openai.NotFoundError):
            stranger.models.retrieve(extra(handbook)["knowledge_base_id"])


def test_a_completion_is_a_cited_answer_with_usage(sdk: openai.OpenAI, served: Served, acme: dict[str, str]) -> None:
    headers = {"X-API-Key": acme["api_key"]}
    before = httpx.get(served.url + "/v1/tenant", headers=headers).json()["usage"]["queries"]
    completion = sdk.chat.completions.create(
        model="handbook",
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "When does the cafeteria open?"},
        ],
        temperature=0.2,  # accepted, ignored
        max_tokens=50,
    )
    text = completion.choices[0].message.content or ""
    assert "8 am" in text and "[1]" in text and "\n\nSources:\n[1] " in text
    assert completion.choices[0].finish_reason == "stop" and completion.model == "handbook"
    assert completion.object == "chat.completion" and completion.choices[0].message.role == "assistant"
    citations = extra(completion)["citations"]
    assert citations[0]["n"] == 1 and "cafeteria" in citations[0]["snippet"]
    details = extra(completion)["ragapi"]
    assert completion.id == "chatcmpl-" + uuid.UUID(details["query_id"]).hex
    assert details["mode"] == "extractive" and details["cached"] is False
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    # the query went the way every query goes: charged to the quota, logged (feedback finds it)
    assert httpx.get(served.url + "/v1/tenant", headers=headers).json()["usage"]["queries"] == before + 1
    rated = httpx.post(
        served.url + "/v1/feedback", headers=headers, json={"query_id": details["query_id"], "rating": 1}
    )
    assert rated.status_code in (200, 201), rated.text

    again = sdk.chat.completions.create(
        model="handbook", messages=[{"role": "user", "content": "When does the cafeteria open?"}]
    )
    assert extra(again)["ragapi"]["cached"] == "exact" and again.usage is not None and again.usage.total_tokens == 0
    assert again.choices[0].message.content == text
    bare = sdk.chat.completions.create(
        model="handbook",
        messages=[{"role": "user", "content": "When are expense reports due?"}],
        extra_body={"references": False, "top_k": 2},
    )
    assert "Sources:" not in (bare.choices[0].message.content or "") and len(extra(bare)["citations"]) <= 2


def test_several_knowledge_bases_are_one_model(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(
        model="handbook+wiki", messages=[{"role": "user", "content": "How long are build logs kept?"}]
    )
    assert "30 days" in (completion.choices[0].message.content or "")
    only_handbook = sdk.chat.completions.create(
        model="handbook", messages=[{"role": "user", "content": "How long are build logs kept?"}]
    )
    assert all("build" not in c["snippet"] for c in extra(only_handbook)["citations"])


def test_messages_are_a_conversation(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(
        model="handbook",
        messages=[
            {"role": "user", "content": "What is the VPN endpoint?"},
            {"role": "assistant", "content": "The VPN endpoint is vpn.example.com. [1]"},
            {"role": "user", "content": [{"type": "text", "text": "And what is its port?"}]},
        ],
    )
    details = extra(completion)["ragapi"]
    assert details["standalone_question"] == "What is the VPN endpoint? And what is its port?"
    assert "4433" in (completion.choices[0].message.content or "")


def test_a_stream_is_chunks_then_done(sdk: openai.OpenAI, served: Served, acme: dict[str, str]) -> None:
    question = [{"role": "user", "content": "What is the VPN endpoint?"}]
    chunks = list(
        sdk.chat.completions.create(
            model="handbook", messages=question, stream=True, stream_options={"include_usage": True}
        )
    )
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert extra(chunks[0])["citations"][0]["n"] == 1 and extra(chunks[0])["ragapi"]["query_id"]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "vpn.example.com" in text and "Sources:\n[1]" in text
    finished = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert len(finished) == 1
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens > 0
    assert len({c.id for c in chunks}) == 1

    # on the wire: server-sent `data:` lines, the last one [DONE]
    body = {"model": "handbook", "messages": question, "stream": True, "cache": False}
    with httpx.stream(
        "POST", served.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {acme['api_key']}"}, json=body
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]" and all(line.startswith("data: ") for line in lines)
    assert '"usage"' not in "".join(lines)  # not asked for


async def test_the_async_client_answers_and_streams(served: Served, acme: dict[str, str]) -> None:
    async with openai.AsyncOpenAI(base_url=served.url + "/v1", api_key=acme["api_key"], max_retries=0) as aclient:
        completion = await aclient.chat.completions.create(
            model="wiki", messages=[{"role": "user", "content": "Which host is the build server?"}]
        )
        assert "ci.example.com" in (completion.choices[0].message.content or "")
        stream = await aclient.chat.completions.create(
            model="wiki", messages=[{"role": "user", "content": "Which host is the build server?"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == completion.choices[0].message.content  # the second came from the cache, whole


def test_bad_requests_raise_the_sdks_exceptions(sdk: openai.OpenAI, served: Served) -> None:
    user = [{"role": "user", "content": "When does the cafeteria open?"}]
    cases: list[tuple[dict[str, Any], str | None]] = [
        ({"n": 2}, "n"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, "tools"),
        ({"logprobs": True}, "logprobs"),
        ({"stop": ["\n"]}, "stop"),
        ({"n": 1, "stop": [], "tools": [], "response_format": {"type": "json_schema"}}, "response_format"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"extra_body": {"frobnicate": True}}, "frobnicate"),
        ({"temperature": 7}, "temperature"),
    ]
    for arguments, param in cases:
        with pytest.raises(openai.BadRequestError) as refused:
            sdk.chat.completions.create(model="handbook", messages=user, **arguments)  # type: ignore[call-overload]
        error = refused.value.body
        assert isinstance(error, dict) and error["type"] == "invalid_request_error", arguments
        assert error["param"] == param and error["message"], arguments
    for messages in (
        [],
        [{"role": "assistant", "content": "hi"}],
        [{"role": "wizard", "content": "hi"}],
        [{"role": "user", "content": "nul \u0000 in it"}],
        [{"role": "user", "content": "earlier \u0000"}, {"role": "user", "content": "now"}],
    ):
        with pytest.raises(openai.BadRequestError) as refused:
            sdk.chat.completions.create(model="handbook", messages=messages)  # type: ignore[arg-type]
        assert isinstance(refused.value.body, dict) and refused.value.body["param"].startswith("messages"), messages
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(
            model="handbook", messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
        )
    with openai.OpenAI(base_url=served.url + "/v1", api_key="rk_not_a_key", max_retries=0) as stranger:
        with pytest.raises(openai.AuthenticationError) as unauthenticated:
            stranger.chat.completions.create(model="handbook", messages=user)  # refused before the body is read
        assert unauthenticated.value.code == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            stranger.models.list()


def test_rate_limits_send_openais_headers(sdk: openai.OpenAI, served: Served, acme: dict[str, str]) -> None:
    made = httpx.post(
        served.url + "/v1/api-keys",
        headers={"X-API-Key": acme["api_key"]},
        json={"name": "slow", "scopes": ["query"], "rate_limit_per_minute": 2},
    )
    assert made.status_code == 201, made.text
    with openai.OpenAI(base_url=served.url + "/v1", api_key=made.json()["api_key"], max_retries=0) as slow:
        first = slow.models.with_raw_response.list()
        assert first.headers["x-ratelimit-limit-requests"] == "2"
        assert first.headers["x-ratelimit-remaining-requests"] == "1"
        assert first.headers["x-ratelimit-reset-requests"].endswith("s")
        slow.models.list()
        with pytest.raises(openai.RateLimitError) as limited:
            slow.chat.completions.create(model="handbook", messages=[{"role": "user", "content": "VPN?"}])
    assert limited.value.code == "rate_limit_exceeded"
    assert int(limited.value.response.headers["retry-after"]) >= 1
    assert limited.value.response.headers["x-ratelimit-remaining-requests"] == "0"


def test_langchain_chat_openai_asks_a_knowledge_base(served: Served, acme: dict[str, str]) -> None:
    chat = ChatOpenAI(
        base_url=served.url + "/v1", api_key=acme["api_key"], model="handbook", max_retries=0, stream_usage=True
    )  # type: ignore[call-arg]
    reply = chat.invoke([SystemMessage("Be brief."), HumanMessage("When are expense reports due?")])
    assert "fifth working day" in str(reply.content)
    assert reply.usage_metadata is not None and reply.usage_metadata["input_tokens"] > 0
    history = [HumanMessage("What is the VPN endpoint?"), AIMessage(str(reply.content)), HumanMessage("And its port?")]
    pieces = list(chat.stream(history[:1] + [AIMessage("vpn.example.com [1]"), history[2]]))
    assert "4433" in "".join(str(p.content) for p in pieces)


def test_a_restricted_key_asks_only_its_knowledge_bases(
    sdk: openai.OpenAI, served: Served, acme: dict[str, str]
) -> None:
    admin = {"X-API-Key": acme["api_key"]}

    def key(**fields: Any) -> str:
        made = httpx.post(served.url + "/v1/api-keys", headers=admin, json={"name": "scoped", **fields})
        assert made.status_code == 201, made.text
        return str(made.json()["api_key"])

    with openai.OpenAI(base_url=served.url + "/v1", api_key=key(scopes=["query"], knowledge_bases=["wiki"])) as wiki:
        assert [m.id for m in wiki.models.list()] == ["wiki"]
        with pytest.raises(openai.NotFoundError):
            wiki.chat.completions.create(model="handbook", messages=[{"role": "user", "content": "VPN endpoint?"}])


def test_a_body_over_the_limit_is_refused_in_openais_shape(served: Served, acme: dict[str, str]) -> None:
    huge = {"model": "wiki", "messages": [{"role": "user", "content": "x" * (1024 * 1024 + 1)}]}
    response = httpx.post(
        served.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {acme['api_key']}"}, json=huge
    )
    assert response.status_code == 413 and response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "request_too_large" and "MAX_JSON_BODY_BYTES" in response.text


async def test_a_spent_quota_and_a_superadmin_are_refused_in_openais_shape(
    client: httpx.AsyncClient, make_tenant: Any, superadmin: Any
) -> None:
    """In-process (a superadmin sets the quota): the quota's 429 is OpenAI's insufficient_quota, and a
    superadmin (who reads no tenant's data) gets OpenAI's 403, here and on /mcp."""
    question = {"model": "default", "messages": [{"role": "user", "content": "anything?"}]}
    forbidden = await client.post("/v1/chat/completions", headers=superadmin.headers, json=question)
    assert forbidden.status_code == 403 and forbidden.json()["error"]["type"] == "permission_error"
    assert (await client.get("/v1/models", headers=superadmin.headers)).status_code == 403
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    assert (await client.post("/mcp", headers=superadmin.headers, json=listing)).status_code == 403

    tenant = await make_tenant()
    await client.patch(f"/v1/tenants/{tenant.tenant_id}", headers=superadmin.headers, json={"monthly_query_quota": 0})
    response = await client.post(
        "/v1/chat/completions",
        headers={"Authorization": f"Bearer {tenant.api_key}"},
        json=question,
    )
    assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1
    assert response.json()["error"] == {
        "message": response.json()["error"]["message"],
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }
