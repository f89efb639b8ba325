"""The MCP server at /mcp as the MCP SDK's own client uses it, over real HTTP against `ragapi serve`: the
tools list and answer for the key's tenant only, a search is in its tenant's query log, a document's text
comes as its reader may read it and cut at MCP_DOCUMENT_MAX_CHARS, bad arguments are tool errors, and a
client without a valid credential gets no session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent

from tests.api.helpers import served_tenant
from tests.conftest import Served

pytestmark = pytest.mark.slow

DOCUMENT_MAX_CHARS = 1000  # MCP_DOCUMENT_MAX_CHARS of the served API (tests.conftest.served)

POLICY = [
    "Parental leave is 16 weeks at full pay for every parent.",
    "Laptops are replaced every three years; request one through the service desk.",
]


@pytest.fixture(scope="module")
def initech(served: Served) -> dict[str, str]:
    return served_tenant(served, "Initech MCP", {"default": POLICY, "security": ["Badges must be worn at all times."]})


@pytest.fixture(scope="module")
def stranger(served: Served) -> dict[str, str]:
    return served_tenant(served, "Stranger MCP", {"default": ["Stranger Things Inc sells waffles."]})


@asynccontextmanager
async def session(url: str, **headers: str) -> AsyncIterator[ClientSession]:
    async with (
        httpx.AsyncClient(headers=headers, timeout=60) as http,
        streamable_http_client(url + "/mcp", http_client=http) as (read, write, _),
        ClientSession(read, write) as mcp,
    ):
        with anyio.fail_after(60):
            await mcp.initialize()
        yield mcp


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.isError, result.content
    assert result.structuredContent is not None
    return result.structuredContent


def error_text(result: CallToolResult) -> str:
    assert result.isError
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


async def test_the_tools_answer_for_the_keys_tenant(served: Served, initech: dict[str, str]) -> None:
    async with session(served.url, authorization=f"Bearer {initech['api_key']}") as mcp:
        tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
        assert set(tools) == {"search", "ask", "list_knowledge_bases", "get_document"}
        assert tools["search"].inputSchema["required"] == ["query"]

        listed = structured(await mcp.call_tool("list_knowledge_bases", {}))["knowledge_bases"]
        assert {kb["name"] for kb in listed} == {"default", "security"}

        found = structured(await mcp.call_tool("search", {"query": "How long is parental leave?", "top_k": 2}))
        passages = found["passages"]
        assert 1 <= len(passages) <= 2 and "16 weeks" in passages[0]["text"] and passages[0]["n"] == 1
        badge = structured(await mcp.call_tool("search", {"query": "badges", "knowledge_bases": ["security"]}))
        assert "Badges" in badge["passages"][0]["text"]

        answer = structured(await mcp.call_tool("ask", {"question": "How often are laptops replaced?"}))
        assert "three years" in answer["answer"] and "[1]" in answer["answer"] and answer["query_id"]
        assert answer["citations"][0]["title"]

        document = structured(await mcp.call_tool("get_document", {"document_id": passages[0]["document_id"]}))
        assert document["document_id"] == passages[0]["document_id"] and document["chunks"] >= 1
    async with httpx.AsyncClient(base_url=served.url) as http:
        usage = (await http.get("/v1/tenant", headers={"X-API-Key": initech["api_key"]})).json()["usage"]
    assert usage["queries"] == 3  # two searches and a question, charged as any query


async def test_bad_arguments_are_tool_errors(served: Served, initech: dict[str, str]) -> None:
    async with session(served.url, authorization=f"Bearer {initech['api_key']}") as mcp:
        assert "top_k" in error_text(await mcp.call_tool("search", {"query": "leave", "top_k": "many"}))
        assert "query" in error_text(await mcp.call_tool("search", {"query": "   "}))
        assert "query" in error_text(await mcp.call_tool("search", {}))
        assert "Not found" in error_text(await mcp.call_tool("search", {"query": "x", "knowledge_bases": ["nope"]}))
        assert "filters" in error_text(await mcp.call_tool("ask", {"question": "leave?", "filters": {"bad key!": 1}}))
        assert "document_id" in error_text(await mcp.call_tool("get_document", {"document_id": "not-a-uuid"}))
        # still serving after all of them
        assert structured(await mcp.call_tool("list_knowledge_bases", {}))["knowledge_bases"]


async def test_another_tenants_key_sees_nothing_of_it(
    served: Served, initech: dict[str, str], stranger: dict[str, str]
) -> None:
    async with session(served.url, authorization=f"Bearer {initech['api_key']}") as mcp:
        found = structured(await mcp.call_tool("search", {"query": "parental leave"}))
        document_id = found["passages"][0]["document_id"]
    async with session(served.url, **{"x-api-key": stranger["api_key"]}) as mcp:
        listed = structured(await mcp.call_tool("list_knowledge_bases", {}))["knowledge_bases"]
        assert [kb["name"] for kb in listed] == ["default"]
        assert "Not found" in error_text(await mcp.call_tool("get_document", {"document_id": document_id}))
        assert "Not found" in error_text(
            await mcp.call_tool("search", {"query": "badges", "knowledge_bases": ["security"]})
        )
        mine = structured(await mcp.call_tool("search", {"query": "parental leave"}))["passages"]
        assert all("Parental" not in p["text"] for p in mine)
        answer = structured(await mcp.call_tool("ask", {"question": "How long is parental leave?"}))
        assert "16 weeks" not in answer["answer"]


async def test_a_client_without_a_valid_credential_gets_no_session(served: Served) -> None:
    for headers in ({}, {"authorization": "Bearer rk_not_a_key"}):
        with pytest.raises(Exception) as refused:  # noqa: B017 - the SDK surfaces the 401 as it can
            async with session(served.url, **headers):
                pass
        assert "401" in repr(refused.value) or "Unauthorized" in repr(refused.value)
    async with httpx.AsyncClient(base_url=served.url) as http:
        response = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")


async def test_mcp_requests_spend_the_keys_rate_limit(served: Served, initech: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=served.url, headers={"X-API-Key": initech["api_key"]}) as admin:

        async def key(**fields: Any) -> str:
            made = await admin.post("/v1/api-keys", json={"name": "mcp", **fields})
            assert made.status_code == 201, made.text
            return str(made.json()["api_key"])

        slow = await key(scopes=["query"], rate_limit_per_minute=2)
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(base_url=served.url, headers={"authorization": f"Bearer {slow}", **accept}) as http:
        statuses = [(await http.post("/mcp", json=listing)) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert "search" in statuses[0].text and int(statuses[2].headers["retry-after"]) >= 1


async def analytics(http: httpx.AsyncClient, api_key: str, queries: int) -> dict[str, Any]:
    """The tenant's report of the last minutes, once it counts `queries` (the log is written in batches)."""
    now = datetime.now(UTC)
    window = {"start": (now - timedelta(minutes=5)).isoformat(), "end": (now + timedelta(minutes=5)).isoformat()}
    with anyio.fail_after(30):
        while True:
            report = await http.get("/v1/analytics", headers={"X-API-Key": api_key}, params=window)
            assert report.status_code == 200, report.text
            body: dict[str, Any] = report.json()
            if body["queries"] >= queries:
                return body
            await anyio.sleep(0.2)


async def test_a_search_is_in_its_tenants_query_log(served: Served) -> None:
    logged = served_tenant(served, "Logged MCP", {"default": POLICY})
    other = served_tenant(served, "Unlogged MCP", {"default": ["Waffles are served on Fridays."]})
    async with session(served.url, authorization=f"Bearer {logged['api_key']}") as mcp:
        found = structured(await mcp.call_tool("search", {"query": "How long is parental leave?", "top_k": 1}))
    (passage,) = found["passages"]
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        report = await analytics(http, logged["api_key"], 1)
        assert report["queries"] == 1 and report["errors"] == 0 and report["cache"]["exact_hits"] == 0
        assert report["top_queries"] == [{"query": "how long is parental leave?", "count": 1}]
        assert report["tokens"]["embedding"] > 0 and report["tokens"]["prompt"] == 0
        assert report["latency_ms"]["retrieve"]["p50"] is not None and report["latency_ms"]["generate"]["p50"] is None

        # its passages rated by its query_id, as an answer's sources are, into the evaluation set
        rating = {"query_id": found["query_id"], "rating": 1, "chunk_ids": [passage["chunk_id"]]}
        headers = {"X-API-Key": logged["api_key"]}
        assert (await http.post("/v1/feedback", headers=headers, json=rating)).status_code == 201
        exported = (await http.get("/v1/feedback/export", headers=headers)).json()
        assert exported["queries"] == [{"_id": found["query_id"], "text": "How long is parental leave?"}]
        assert exported["qrels"] == [{"query-id": found["query_id"], "corpus-id": passage["document_id"], "score": 1}]

        elsewhere = {"X-API-Key": other["api_key"]}
        assert (await http.post("/v1/feedback", headers=elsewhere, json=rating)).status_code == 404
        assert (await analytics(http, other["api_key"], 0))["queries"] == 0


async def test_get_document_gives_its_text_to_who_may_read_it(served: Served) -> None:
    reading = served_tenant(served, "Reading MCP", {"default": POLICY})
    admin = {"X-API-Key": reading["api_key"]}
    # a document of many chunks (120 tokens each), longer than the limit
    long_text = " ".join(f"Rule {n}: the {n}th floor kitchen is cleaned on day {n} of each month." for n in range(60))
    async with httpx.AsyncClient(base_url=served.url, headers=admin, timeout=60) as http:
        made = await http.post("/v1/api-keys", json={"name": "reader", "scopes": ["query"]})
        assert made.status_code == 201, made.text
        reader, reader_id = made.json()["api_key"], made.json()["id"]
        documents = [
            {"text": long_text},
            {"text": "The vault code is 4711.", "access": {"api_keys": [reader_id]}},
        ]
        ingested = await http.post("/v1/ingest", params={"wait": "true"}, json={"documents": documents})
        assert ingested.status_code == 200, ingested.text
        long_id, secret_id = (d["document_id"] for d in ingested.json()["documents"])

    async with session(served.url, authorization=f"Bearer {reading['api_key']}") as mcp:
        policy = structured(await mcp.call_tool("search", {"query": "parental leave", "top_k": 1}))["passages"][0]
        short = structured(await mcp.call_tool("get_document", {"document_id": policy["document_id"]}))
        assert (short["text"], short["truncated"]) == (POLICY[0], False)
        cut = structured(await mcp.call_tool("get_document", {"document_id": long_id}))
        assert cut["truncated"] and cut["chunks"] > 2 and len(cut["text"]) == DOCUMENT_MAX_CHARS
        assert cut["text"].startswith("Rule 0: the 0th floor kitchen") and "\n\n" in cut["text"]  # chunk by chunk
        assert "Rule 59" not in cut["text"]
        # restricted to the reader key: the tenant's admin key may not read it, nor its text
        assert "Not found" in error_text(await mcp.call_tool("get_document", {"document_id": secret_id}))
    async with session(served.url, authorization=f"Bearer {reader}") as mcp:
        secret = structured(await mcp.call_tool("get_document", {"document_id": secret_id}))
        assert (secret["text"], secret["truncated"]) == ("The vault code is 4711.", False)
