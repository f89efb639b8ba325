"""HTTP metrics as Prometheus scrapes them: route templates (bounded labels), status classes, sizes."""

from __future__ import annotations

import re
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TenantHandle

Sample = tuple[str, tuple[tuple[str, str], ...]]


async def scrape(client: httpx.AsyncClient) -> dict[Sample, float]:
    text = (await client.get("/metrics/")).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def grew(before: dict[Sample, float], after: dict[Sample, float], name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


async def test_requests_are_counted_by_route_template_and_status_class(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    before = await scrape(client)
    for _ in range(2):
        missing = await client.get("/v1/documents/00000000-0000-0000-0000-000000000000", headers=tenant.headers)
        assert missing.status_code == 404
    body = b'{"query": "anything at all?"}'
    answered = await client.post(
        "/v1/query", headers=tenant.headers | {"content-type": "application/json"}, content=body
    )
    assert answered.status_code == 200
    assert (await client.get("/no/such/route")).status_code == 404
    await client.get("/healthz")
    after = await scrape(client)

    document = "/v1/documents/{document_id}"
    assert grew(before, after, "http_requests_total", handler=document, method="GET", status="4xx") == 2
    assert grew(before, after, "http_requests_total", handler="/v1/query", method="POST", status="2xx") == 1
    assert grew(before, after, "http_requests_total", handler="none", method="GET", status="4xx") == 1
    assert not [k for k in after if k[0] == "http_requests_total" and ("handler", "/healthz") in k[1]]
    assert not [k for k in after if "00000000-0000-0000-0000-000000000000" in str(k)]  # no raw paths
    assert grew(before, after, "http_request_duration_seconds_count", handler="/v1/query", method="POST") == 1
    assert grew(before, after, "http_request_size_bytes_sum", handler="/v1/query") == len(body)
    sent = grew(before, after, "http_response_size_bytes_sum", handler="/v1/query")
    assert sent == len(answered.content)


async def test_every_response_says_how_long_the_service_took(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    """Server-Timing: the steps done before the response started, then app;dur=<ms> for all of it (no
    more than the client waited), also on problems and unmatched routes."""
    for method, path, body, steps in [
        ("POST", "/v1/query", {"query": "anything at all?"}, {"auth", "limits", "admission", "cache", "retrieve"}),
        ("GET", "/v1/documents/00000000-0000-0000-0000-000000000000", None, {"auth", "limits"}),
    ]:
        started = time.perf_counter()
        response = await client.request(method, path, headers=tenant.headers, json=body)
        waited_ms = (time.perf_counter() - started) * 1000
        entries = [re.fullmatch(r"(\w+);dur=(\d+\.\d)", e) for e in response.headers["server-timing"].split(", ")]
        assert all(entries), response.headers["server-timing"]
        timings = {m[1]: float(m[2]) for m in entries if m is not None}
        assert steps | {"app"} <= timings.keys(), timings
        assert list(timings)[-1] == "app"
        assert 0 < max(timings.values()) == timings["app"] <= waited_ms + 0.1
    assert (await client.get("/no/such/route")).headers["server-timing"].startswith("app;dur=")
