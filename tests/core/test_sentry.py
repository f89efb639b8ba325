"""Sentry at its HTTP boundary: the real SDK and transport send an envelope to a loopback server playing
Sentry's ingest endpoint (`POST /api/<project>/envelope/`), and nothing secret is in it."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import brotli
import httpx
import pytest
import sentry_sdk
from fastapi import FastAPI

from ragapi.api import problems
from ragapi.api.middleware import RequestIdMiddleware
from ragapi.core import sentry
from tests.conftest import make_settings

API_KEY = "rag_0123abcd_" + "S" * 32
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJlc2lnbmF0dXJl"


@pytest.fixture
def sentry_ingest(tmp_path) -> Iterator[list[bytes]]:  # type: ignore[no-untyped-def]
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", 0)))
            encoding = self.headers.get("content-encoding")
            if encoding == "gzip":
                raw = gzip.decompress(raw)
            elif encoding == "br":
                raw = brotli.decompress(raw)
            if self.path == "/api/1/envelope/":
                received.append(raw)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = make_settings(tmp_path, sentry_dsn=f"http://publickey@127.0.0.1:{server.server_address[1]}/1")
    assert sentry.setup(settings)
    try:
        yield received
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init()  # no DSN: off for the rest of the session
        server.shutdown()


def events(envelopes: list[bytes]) -> list[dict[str, Any]]:
    out = []
    for envelope in envelopes:
        lines = envelope.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                out.append(json.loads(payload))
    return out


async def test_an_internal_error_reaches_sentry_without_secrets(sentry_ingest: list[bytes]) -> None:
    app = FastAPI()
    problems.install(app)
    app.add_middleware(RequestIdMiddleware)

    @app.post("/v1/boom")
    async def boom() -> None:
        raise RuntimeError(f"upstream said password=hunter2 for key {API_KEY}")

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://ragapi.test"
    ) as client:
        response = await client.post(
            "/v1/boom",
            headers={"Authorization": f"Bearer {JWT}", "X-API-Key": API_KEY, "Cookie": "session=abc"},
            json={"password": "hunter2", "query": "private question"},
        )
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    sentry_sdk.flush(timeout=5)
    raw = b"".join(sentry_ingest)
    for secret in (b"hunter2", API_KEY.encode(), JWT.encode(), b"private question", b"session=abc"):
        assert secret not in raw
    (event,) = [e for e in events(sentry_ingest) if e.get("exception")]
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert "[redacted]" in event["exception"]["values"][-1]["value"]
    assert event["tags"]["request_id"] == response.headers["x-request-id"]
    headers = {k.lower(): v for k, v in event["request"]["headers"].items()}
    assert headers["authorization"] == headers["x-api-key"] == headers["cookie"] == "[redacted]"
    assert "data" not in event["request"] and event["request"]["url"].endswith("/v1/boom")
