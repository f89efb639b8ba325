"""Every problem's `type` is a page of the server that answered: /problems/<type> explains it (RFC 9457
section 3.1.1), for every domain error and the web layer's own refusals."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from ragapi.api.app import create_app
from ragapi.api.problem_pages import EXPLAINED
from ragapi.core.errors import RagApiError
from ragapi.core.settings import Settings
from tests.api.helpers import assert_problem


def every_error() -> set[type[RagApiError]]:
    found, todo = set(), [RagApiError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return found


async def test_every_domain_error_has_a_page(client: httpx.AsyncClient) -> None:
    for error in every_error():
        assert error.title in EXPLAINED, error
        page = await client.get("/problems/" + error.title.lower().replace(" ", "-"))
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert f"<h1>{error.title}</h1>" in page.text and f"HTTP status {error.status}" in page.text


async def test_the_type_of_a_real_problem_resolves(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get("/v1/documents"),  # 401, from a dependency
        await client.post("/v1/query", content=b"{}", headers={"content-type": "application/json"}),  # 401, middleware
        await client.put("/healthz"),  # 405, from the router
    ):
        body = assert_problem(response, response.status_code)
        page = await client.get(urlsplit(body["type"]).path)
        assert page.status_code == 200 and body["title"] in page.text, body


async def test_the_index_lists_every_type_and_an_unknown_one_is_a_problem(client: httpx.AsyncClient) -> None:
    index = await client.get("/problems/")
    assert index.status_code == 200
    assert all(f'href="/problems/{t.lower().replace(" ", "-")}"' in index.text for t in EXPLAINED)
    assert_problem(await client.get("/problems/no-such-thing"), 404)


async def test_behind_a_proxy_the_type_is_under_the_public_url(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"public_url": "https://rag.example.com/api"}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://10.0.0.7:8000") as client,
    ):
        refused = await client.get("/v1/documents")
    body = refused.json()
    assert refused.status_code == 401 and body["title"]
    assert body["type"] == "https://rag.example.com/api/problems/" + body["title"].lower().replace(" ", "-")
