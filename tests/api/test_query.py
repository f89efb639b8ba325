from __future__ import annotations

import httpx

from tests.api.helpers import assert_problem, ingest_texts, sse_events
from tests.conftest import TenantHandle
from tests.documents import pdf_bytes
from tests.wire import Reply, openai_stream


async def test_pdf_answer_cites_its_page(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    pdf = pdf_bytes(
        ["Company handbook, general part.", "Annual leave: every employee gets 27 days of paid leave."],
        title="Handbook",
    )
    upload = await client.post(
        "/v1/ingest?wait=true", headers=tenant.headers, files=[("files", ("handbook.pdf", pdf, "application/pdf"))]
    )
    document_id = upload.json()["documents"][0]["document_id"]
    response = await client.post(
        "/v1/query", headers=tenant.headers, json={"query": "How many days of paid leave do employees get?"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["mode"] == "extractive" and body["cached"] is False
    assert "27 days" in body["answer"] and "[1]" in body["answer"]
    first = body["citations"][0]
    assert first["document_id"] == document_id and first["page"] == 2 and first["title"] == "Handbook"
    assert set(body["timings_ms"]) == {"embed", "retrieve", "rerank", "generate", "total"}
    assert body["usage"] == {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "embedding_tokens": body["usage"]["embedding_tokens"],
        "estimated": False,
    }
    assert body["usage"]["embedding_tokens"] >= 5


async def test_sse_stream_events(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    await ingest_texts(client, tenant, "The cafeteria opens at 8am. It closes at 3pm.")
    for request in (
        {"json": {"query": "when does the cafeteria open", "stream": True}},
        {"json": {"query": "when does the cafeteria open"}, "headers": {"Accept": "text/event-stream"}},
    ):
        headers = {**tenant.headers, **request.get("headers", {})}
        response = await client.post("/v1/query", headers=headers, json=request["json"])
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-accel-buffering"] == "no"
        events = sse_events(response.text)
        names = [e for e, _ in events]
        assert names[0] == "sources" and names[-1] == "done" and "token" in names
        sources, done = events[0][1], events[-1][1]
        assert sources["citations"][0]["snippet"].startswith("The cafeteria")
        streamed = "".join(d["text"] for e, d in events if e == "token")
        assert streamed == done["answer"] and "8am" in streamed
        assert done["query_id"] == sources["query_id"]


async def test_query_limits(client: httpx.AsyncClient, tenant: TenantHandle, settings) -> None:  # type: ignore[no-untyped-def]
    h = tenant.headers
    long = await client.post("/v1/query", headers=h, json={"query": "x" * (settings.max_query_chars + 1)})
    assert "MAX_QUERY_CHARS" in assert_problem(long, 422)["detail"]
    assert_problem(await client.post("/v1/query", headers=h, json={"query": "x", "top_k": settings.max_top_k + 1}), 422)
    assert_problem(await client.post("/v1/query", headers=h, json={"query": ""}), 422)
    assert_problem(await client.post("/v1/query", headers=h, json={"query": "   "}), 422)
    assert_problem(await client.post("/v1/query", headers=h, json={"query": "x", "filters": {"$bad": 1}}), 422)
    assert_problem(await client.post("/v1/query", headers=h, json={"query": "x", "unknown": 1}), 422)
    stream_bad = await client.post("/v1/query", headers=h, json={"query": "x", "stream": True, "filters": {"$bad": 1}})
    assert_problem(stream_bad, 422)
    assert (await client.get("/v1/tenant", headers=h)).json()["usage"]["queries"] == 0  # refused before the charge


async def test_empty_knowledge_base_answers_politely(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    response = await client.post("/v1/query", headers=tenant.headers, json={"query": "anything at all?"})
    assert response.status_code == 200
    assert response.json()["citations"] == [] and "could not find" in response.json()["answer"]


async def test_top_k_and_filters_are_applied(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    await ingest_texts(
        client, tenant, "Laptop policy for engineers.", "Laptop policy for sales.", metadata={"kind": "policy"}
    )
    await ingest_texts(client, tenant, "Laptop stickers are fun.", metadata={"kind": "trivia"})
    response = await client.post(
        "/v1/query", headers=tenant.headers, json={"query": "laptop policy", "top_k": 2, "filters": {"kind": "policy"}}
    )
    assert len(response.json()["citations"]) == 2
    assert all("policy" in c["snippet"] for c in response.json()["citations"])


async def test_generative_answer_streams_over_sse(
    client: httpx.AsyncClient, tenant: TenantHandle, openai_chain
) -> None:  # type: ignore[no-untyped-def]
    replies, server = openai_chain
    await ingest_texts(client, tenant, "Parental leave is 16 weeks at full pay.")
    replies.append(Reply(sse=openai_stream(["Parental leave ", "is 16 weeks ", "[1]."])))
    response = await client.post(
        "/v1/query", headers=tenant.headers, json={"query": "How long is parental leave?", "stream": True}
    )
    events = sse_events(response.text)
    # the first token goes out alone; tokens arriving within 50 ms of each other travel together
    assert [e for e, _ in events] == ["sources", "token", "token", "done"]
    assert events[1][1]["text"] == "Parental leave " and events[2][1]["text"] == "is 16 weeks [1]."
    done = events[-1][1]
    assert (
        done["answer"] == "Parental leave is 16 weeks [1]."
        and done["mode"] == "generative"
        and done["model"] == "gpt-4o"
    )
    assert "Parental leave is 16 weeks at full pay." in server.requests[0].body["messages"][1]["content"]


async def test_llm_failure_is_502_or_an_error_event(
    client: httpx.AsyncClient, tenant: TenantHandle, openai_chain
) -> None:  # type: ignore[no-untyped-def]
    replies, _ = openai_chain
    await ingest_texts(client, tenant, "Some indexed fact.")
    error = Reply(status=400, body={"error": {"message": "bad", "type": "invalid_request_error", "code": None}})
    replies.append(error)
    plain = await client.post("/v1/query", headers=tenant.headers, json={"query": "fact?"})
    assert "language model" in assert_problem(plain, 502)["detail"]
    replies.append(error)
    streamed = await client.post("/v1/query", headers=tenant.headers, json={"query": "fact?", "stream": True})
    events = sse_events(streamed.text)
    assert [e for e, _ in events] == ["sources", "error"]
    assert events[-1][1]["status"] == 502


async def test_an_extractive_answer_stays_on_the_question(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    goods = ["copper wire", "spare tyres", "frozen fish", "office paper", "road salt", "timber", "cement", "toner"]
    records = [f"Depot {n} stores {goods[n % len(goods)]}. Depot {n} is open from {6 + n % 4}am." for n in range(60)]
    await ingest_texts(client, tenant, *records[:30])  # MAX_DOCUMENTS_PER_REQUEST is 50 in the tests
    await ingest_texts(client, tenant, *records[30:])
    response = await client.post("/v1/query", headers=tenant.headers, json={"query": "What does depot 5 store?"})
    body = response.json()
    n = next(c["n"] for c in body["citations"] if c["snippet"].startswith("Depot 5 "))
    assert body["answer"] == f"Depot 5 stores timber. [{n}]"
