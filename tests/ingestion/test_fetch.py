"""URL documents: fetched by the server, never from an address it must not reach (SSRF), with size,
time and redirect limits; a blocked URL fails its own document only."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from ragapi.api.state import AppState
from ragapi.core.netguard import parse_networks
from ragapi.ingestion.fetch import BlockedUrl, check_url
from ragapi.ingestion.pipeline import IngestItem
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
    """Each refused: at once when the URL itself is unacceptable (another scheme), else by its job when the
    address it resolves to is not public."""
    urls = payloads(site.port)
    assert len(urls) >= 20
    at_once = 0
    for url in urls:
        response = await client.post("/v1/ingest?wait=true", headers=tenant.headers, json={"documents": [{"url": url}]})
        body = assert_problem(response, 422)
        if "documents" in body:  # the job ran, and its one document failed
            assert body["documents"][0]["error"]["title"] == "URL not allowed", url
        else:
            assert body["detail"].startswith("documents.0.url: only http and https"), url
            at_once += 1
    assert at_once == 4  # file, ftp, gopher, dict
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


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://[::1/doc.txt", "malformed: Invalid IPv6 URL"),
        ("http://[zz]/", "malformed"),
        ("http://docs.example:70000/", "Port out of range"),
        ("http://docs.example:0/", "between 1 and 65535"),
        ("http://docs.example:http/", "Port could not be cast"),
        ("http:///path-only", "no host"),
        ("http://:80/", "no host"),
        ("http://user@/", "no host"),
        ("http://exa mple.com/", "not a valid host name"),
        ("http://a..b/", "not a valid host name"),
        ("http://" + "a" * 64 + ".example/", "not a valid host name"),
        ("http://x\uff03y.example/", "malformed"),  # a host that NFKC-normalises to a delimiter
        ("http://\u2603.example/", "international domain name"),
        ("http://\ud800.example/", "international domain name"),
        ("http://docs.example/\ud800", "cannot be encoded"),
        ("ftp://docs.example/", "only http and https"),
        ("", "only http and https"),
    ],
)
def test_check_url_refuses_malformed_urls_with_a_reason(url: str, reason: str) -> None:
    with pytest.raises(BlockedUrl, match=re.escape(reason)) as raised:
        check_url(url)
    assert raised.value.status == 422


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("http://b\u00fccher.example/doc.txt", "http://xn--bcher-kva.example/doc.txt"),
        (
            "https://M\u00dcNCHEN.example:8443/Stra\u00dfe?q=\u00e4 b#frag",
            "https://xn--mnchen-3ya.example:8443/Stra%C3%9Fe?q=%C3%A4%20b",
        ),
        ("http://\u4f8b\u3048.\u30c6\u30b9\u30c8/", "http://xn--r8jz45g.xn--zckzah/"),
        ("HTTP://Docs.Example/a%20b?x=1&y=%2F", "http://docs.example/a%20b?x=1&y=%2F"),
        ("http://[::ffff:127.0.0.1]:8080/", "http://[::ffff:7f00:1]:8080/"),
        ("http://user:p%40ss@docs.example/", "http://user:p%40ss@docs.example/"),
        ("  http://localhost./x  ", "http://localhost./x"),
    ],
)
def test_check_url_normalises_what_it_accepts(url: str, normalised: str) -> None:
    assert check_url(url) == normalised
    assert check_url(normalised) == normalised  # idempotent: the API and every redirect hop agree


async def test_an_idn_url_is_fetched_by_its_punycode_name(app_state: AppState, tenant: TenantHandle) -> None:
    """No network here, so the IDN host does not resolve: it fails with a clear 422 that names the
    punycode host it tried, not a crash (`.invalid` never resolves anywhere, RFC 6761)."""
    report = await app_state.pipeline.run(
        tenant.tenant_id, [IngestItem(b"", url="http://b\u00fccher.invalid/doc.txt"), IngestItem(b"Sibling.", "s.txt")]
    )
    failed, sibling = report.results
    assert failed.error is not None and sibling.status == "created"
    assert (failed.error["status"], failed.error["title"]) == (422, "URL not allowed")
    assert failed.error["detail"] == "host 'xn--bcher-kva.invalid' does not resolve"
