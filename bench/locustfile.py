"""Load test: a realistic mix per simulated user, across several tenants with their own keys.

Per user (1-5 s think time): mostly questions (popular ones asked again, i.e. cache hits, some of
them reworded, which the semantic cache may match, and fresh ones), a third of them streamed over SSE
with the time to the first event (sources) and to the first token measured, some feedback on answers,
a few analytics reads, and a trickle of ingests.

Run through `bench/run_load.py`, which starts the service and the LLM latency model, seeds the tenants
and writes LOAD_FIXTURE (tenants, keys, questions).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterator
from typing import Any

from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser

FIXTURE: dict[str, Any] = json.loads(open(os.environ["LOAD_FIXTURE"]).read())  # noqa: SIM115, PTH123
POPULAR = 20  # per tenant: the questions everyone asks (the cache's work)
_next_tenant = 0


def _lower_first(claim: str) -> str:
    first = claim.split(" ", 1)[0]
    keep = first.isupper() or any(c.isdigit() for c in first) or first[1:2].isupper()  # names, genes, numbers
    return claim if keep else claim[:1].lower() + claim[1:]


REWORDINGS = (  # how people re-ask a claim; about half of these reach the semantic cache's 0.95 and guards
    lambda c: f"Claim: {c}",
    lambda c: f"True or false: {_lower_first(c)}",
    lambda c: f"{c.rstrip('.')} - is this so?",
    lambda c: f"Is it so that {_lower_first(c.rstrip('.'))}?",
)


def reworded(claim: str) -> str:
    return str(random.choice(REWORDINGS)(claim))


def _record(kind: str, name: str, ms: float, length: int = 0, exc: Exception | None = None) -> None:
    """A row of locust's report for something its HTTP client does not time itself."""
    events.request.fire(
        request_type=kind, name=name, response_time=ms, response_length=length, exception=exc, context={}
    )


def _fire(name: str, started: float, length: int = 0, exc: Exception | None = None) -> None:
    _record("SSE", name, (time.perf_counter() - started) * 1000, length, exc)


def _server(name: str, ms: float) -> None:
    _record("server", name, ms)


HIT_STEPS = {  # Server-Timing entries of a cache hit, as the report names them
    "app": "whole request",
    "auth": "authentication",
    "admission": "admission",
    "cache": "cache lookup",
    "embed": "query embedding",
}


def server_timing(headers: Any) -> dict[str, float]:
    """The service's own clock for a request's steps, from its `Server-Timing` header (`app`: all of it)."""
    entries = (entry.partition(";dur=") for entry in headers.get("server-timing", "").split(", "))
    return {name: float(ms) for name, _, ms in entries if ms}


def sse_lines(response: Any) -> Iterator[bytes]:
    """Lines of an event stream as they arrive. geventhttpclient's read(n) waits for n bytes, so the
    first event would be timed late; readline returns each line as soon as it is complete."""
    raw = response._response  # noqa: SLF001 - locust exposes no line reader on FastResponse
    while line := raw.readline(b"\n"):
        yield line.rstrip(b"\r\n")


class TenantUser(FastHttpUser):
    """geventhttpclient rather than requests: the load generator shares the 2 cores with the service, and
    requests costs it several times the CPU per call."""

    wait_time = between(1, 5)
    network_timeout = 30.0

    def on_start(self) -> None:
        global _next_tenant
        self.tenant = FIXTURE["tenants"][_next_tenant % len(FIXTURE["tenants"])]
        _next_tenant += 1
        self.headers = {"X-API-Key": self.tenant["key"]}
        self.last_query: str | None = None

    def question(self) -> str:
        """30 % a popular question as asked before, 10 % one of them reworded, 60 % a fresh one."""
        questions = self.tenant["questions"]
        draw = random.random()
        if draw < 0.3:
            return str(random.choice(questions[:POPULAR]))
        if draw < 0.4:
            return reworded(str(random.choice(questions[:POPULAR])))
        return str(random.choice(questions[POPULAR:]))

    @task(6)
    def ask(self) -> None:
        with self.client.post(
            "/v1/query", json={"query": self.question()}, headers=self.headers, name="query", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}: {response.text[:200]}")
                return
            body = response.json()
            self.last_query = body["query_id"]
            # report cache hits and misses as separate rows
            response.request_meta["name"] = f"query ({body['cached'] or 'miss'})"
            if body["cached"]:  # the server's own clock: its whole request, and the steps within it
                steps = server_timing(response.headers)
                for step, label in HIT_STEPS.items():
                    if step in steps:
                        _server(f"server: {body['cached']} hit, {label}", steps[step])

    @task(3)
    def ask_streaming(self) -> None:
        """Timed by hand: locust's own timer stops when the headers arrive, not when the stream ends."""
        started = time.perf_counter()
        seen: set[str] = set()
        try:
            with self.client.post(
                "/v1/query",
                json={"query": self.question(), "stream": True},
                headers=self.headers,
                stream=True,
                name="query (sse, headers)",
                catch_response=True,
            ) as response:
                if response.status_code != 200:
                    response.failure(f"status {response.status_code}")
                    return
                size = 0
                for line in sse_lines(response):
                    size += len(line)
                    if line.startswith(b"event: sources") and "sources" not in seen:
                        seen.add("sources")
                        _fire("sse: first event (sources)", started)
                    elif line.startswith(b"event: token") and "token" not in seen:
                        seen.add("token")
                        _fire("sse: first token", started)
                    elif line.startswith(b"event: error"):
                        raise RuntimeError("error event")
                    elif line.startswith(b"data:") and b'"query_id"' in line and "id" not in seen:
                        seen.add("id")
                        self.last_query = json.loads(line[5:])["query_id"]
                _fire("sse: complete", started, size)
        except Exception as exc:  # a broken stream is a failure, not a crash of the load test
            _fire("sse: complete", started, exc=exc)

    @task(1)
    def give_feedback(self) -> None:
        if self.last_query is None:
            return
        body = {"query_id": self.last_query, "rating": random.choice([1, 1, 1, -1])}
        self.client.post("/v1/feedback", json=body, headers=self.headers, name="feedback")
        self.last_query = None

    @task(1)
    def read_analytics(self) -> None:
        if random.random() < 0.3:
            self.client.get("/v1/analytics", headers={"X-API-Key": self.tenant["admin_key"]}, name="analytics")

    @task(1)
    def ingest_a_note(self) -> None:
        if random.random() < 0.1:
            note = f"Load-test note {random.getrandbits(48)}: " + " ".join(random.choices(FIXTURE["words"], k=120))
            self.client.post("/v1/ingest", json={"documents": [{"text": note}]}, headers=self.headers, name="ingest")
