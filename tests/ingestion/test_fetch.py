"""URL documents: fetched by the server, never from an address it must not reach (SSRF), with size,
time and redirect limits; a blocked URL fails its own document only."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from api.state import AppState
from ingestion.fetch import parse_networks
from tests.api.helpers import assert_problem
from tests.conftest import TenantHandle


class Site:
    """A loopback web server: a document, redirects to forbidden places, a loop, a big and a slow page."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

            def do_GET(self) -> None:
                site.hits.append(self.path)
                routes = {
                    "/redirect-metadata": "http://169.254.169.254/latest/meta-data/",
                    "/redirect-private": "http://10.0.0.1/admin",
                    "/redirect-file": "file:///etc/passwd",
                    "/loop": "/loop",
                    "/hop": "/doc.txt",
                }
                if self.path in routes:
                    self.send_response(302)
                    self.send_header("Location", routes[self.path])
                    self.end_headers()
                    return
                if self.path == "/slow":
                    time.sleep(3)
                body = b"Fetched handbook: the north office opens at 7:30." if self.path != "/big" else b"x" * 300_000
                self.send_response(200 if self.path in ("/doc.txt", "/big", "/slow") else 404)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up on purpose
                    self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    yield s
    s.close()


def payloads(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/doc.txt",
        f"http://localhost:{port}/doc.txt",
        f"http://localhost.:{port}/doc.txt",
        f"http://[::1]:{port}/doc.txt",
        f"http://0.0.0.0:{port}/doc.txt",
        f"http://[::]:{port}/doc.txt",
        f"http://127.1:{port}/doc.txt",
        f"http://2130706433:{port}/doc.txt",
        f"http://0x7f000001:{port}/doc.txt",
        f"http://017700000001:{port}/doc.txt",
        f"http://[::ffff:127.0.0.1]:{port}/doc.txt",
        f"http://[0:0:0:0:0:ffff:7f00:1]:{port}/doc.txt",
        f"http://user:pass@127.0.0.1:{port}/doc.txt",
        f"https://127.0.0.1:{port}/doc.txt",
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.0.1/",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://100.64.0.1/",
        "http://198.18.0.1/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://255.255.255.255/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://127.0.0.1.nip.io/",
        "file:///etc/passwd",
        f"ftp://127.0.0.1:{port}/",
        f"gopher://127.0.0.1:{port}/_GET%20/",
        f"dict://127.0.0.1:{port}/",
    ]


async def test_ssrf_payloads_are_all_refused(client: httpx.AsyncClient, tenant: TenantHandle, site: Site) -> None:
    urls = payloads(site.port)
    assert len(urls) >= 20
    response = await client.post(
        "/v1/ingest?wait=true", headers=tenant.headers, json={"documents": [{"url": u} for u in urls]}
    )
    body = assert_problem(response, 422)
    failures = {d["index"]: d for d in body["documents"]}
    assert len(failures) == len(urls) and all(d["status"] == "failed" for d in failures.values())
    assert {d["error"]["title"] for d in failures.values()} == {"URL not allowed"}
    assert site.hits == []  # nothing reached the loopback server


async def test_a_public_looking_fetch_works_and_redirects_are_rechecked(
    client: httpx.AsyncClient, tenant: TenantHandle, site: Site, app_state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Open loopback on purpose (as URL_FETCH_ALLOWED_NETWORKS would for an intranet) to have a server.
    monkeypatch.setattr(app_state.pipeline, "allowed_networks", parse_networks(["127.0.0.1/32"]))
    monkeypatch.setattr(app_state.settings, "url_fetch_timeout_s", 1.0)
    docs = [
        {"url": site.url + "/hop", "title": "Handbook"},
        {"url": site.url + "/redirect-metadata"},
        {"url": site.url + "/redirect-private"},
        {"url": site.url + "/redirect-file"},
        {"url": site.url + "/loop"},
        {"url": site.url + "/missing"},
        {"url": site.url + "/slow"},
    ]
    response = await client.post("/v1/ingest?wait=true", headers=tenant.headers, json={"documents": docs})
    assert response.status_code == 207, response.text
    results = response.json()["documents"]
    assert results[0]["status"] == "created"
    assert [r["error"]["title"] for r in results[1:4]] == ["URL not allowed"] * 3
    assert "redirects" in results[4]["error"]["detail"]
    assert "404" in results[5]["error"]["detail"]
    assert "URL_FETCH_TIMEOUT_S" in results[6]["error"]["detail"]
    assert not any("169.254" in h or "10.0.0.1" in h for h in site.hits)
    answer = (
        await client.post("/v1/query", headers=tenant.headers, json={"query": "when does the north office open"})
    ).json()
    assert "7:30" in answer["answer"]
    doc = (await client.get(f"/v1/documents/{results[0]['document_id']}", headers=tenant.headers)).json()
    assert doc["metadata"]["url"] == site.url + "/hop" and doc["title"] == "Handbook"


async def test_url_documents_respect_the_size_limit(
    client: httpx.AsyncClient,
    superadmin,
    site: Site,
    app_state: AppState,
    make_tenant,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setattr(app_state.pipeline, "allowed_networks", parse_networks(["127.0.0.1/32"]))
    small = await make_tenant()
    await client.patch(
        f"/v1/tenants/{small.tenant_id}", headers=superadmin.headers, json={"max_document_bytes": 100_000}
    )
    response = await client.post(
        "/v1/ingest?wait=true", headers=small.headers, json={"documents": [{"url": site.url + "/big"}]}
    )
    assert assert_problem(response, 413)["documents"][0]["error"]["title"] == "Payload too large"
    for bad in ({"documents": [{"text": "x", "url": site.url}]}, {"documents": [{}]}, {"documents": [{"url": "nope"}]}):
        assert_problem(await client.post("/v1/ingest?wait=true", headers=small.headers, json=bad), 422)
