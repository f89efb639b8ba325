"""The admin pages in Debian's Chromium: a knowledge base's settings (the API's 409 and 422 next to the
field they name)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from playwright.sync_api import Page, expect

from tests.api.console.conftest import Account, ConsoleServer, Watched, assert_accessible

OpenConsole = Callable[[Account | None], tuple[Page, Watched]]


def _api(server: ConsoleServer, account: Account) -> httpx.Client:
    assert account.api_key is not None
    return httpx.Client(base_url=server.url, headers={"X-API-Key": account.api_key}, timeout=60)


def _superadmin_api(server: ConsoleServer) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=60)
    login = client.post(
        "/v1/auth/login", data={"username": server.superadmin.email, "password": server.superadmin.password}
    )
    client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    return client


def _ingest(api: httpx.Client, kb: str, text: str) -> None:
    response = api.post(f"/v1/ingest?wait=true&knowledge_base={kb}", json={"documents": [{"text": text}]})
    assert response.status_code == 200, response.text


def _save(page: Page) -> None:
    page.get_by_role("button", name="Save").click()


def test_an_admin_changes_a_knowledge_bases_settings(console_server: ConsoleServer, open_console: OpenConsole) -> None:
    admin = console_server.new_tenant("kb-settings")
    api = _api(console_server, admin)
    assert api.post("/v1/knowledge-bases", json={"name": "archive"}).status_code == 201
    page, watched = open_console(admin)
    page.goto("/console/knowledge-bases")
    page.get_by_label("Name").fill("manuals")
    with page.expect_navigation():
        page.get_by_role("button", name="Create").click()
    page.get_by_role("link", name="Settings of manuals").click()
    kb_id = api.get("/v1/knowledge-bases/manuals").json()["id"]
    expect(page).to_have_url(f"{console_server.url}/console/knowledge-bases/{kb_id}")
    expect(page.get_by_label("Embedding model")).to_be_enabled()  # empty: the model may still change
    assert_accessible(page)

    watched.allow("status of 422")  # refused on purpose: the browser logs them, the page explains them
    watched.allow("status of 409")
    top_k = page.get_by_label("Sources per answer (top k)")
    top_k.fill("500")
    _save(page)
    expect(page.locator("#kb-top_k-error")).to_contain_text("settings.top_k: at most 50 (MAX_TOP_K)")
    expect(top_k).to_have_attribute("aria-invalid", "true")
    expect(top_k).to_be_focused()
    expect(page.locator("[data-errors]")).to_contain_text("Invalid input")

    top_k.fill("3")
    page.get_by_label("Chunk size (word pieces)").fill("150")
    page.get_by_label("Chunk overlap (word pieces)").fill("30")
    page.get_by_label("Dense weight in fusion (0 to 1)").fill("0.7")
    page.get_by_label("Reranking").select_option("false")
    page.get_by_label("Name", exact=True).fill("archive")
    _save(page)
    expect(page.locator("#kb-name-error")).to_contain_text("Conflict: this tenant already has a knowledge base named")
    expect(page.locator("#kb-top_k-error")).to_have_count(0)  # the earlier error is gone
    page.get_by_label("Dense weight in fusion (0 to 1)").fill("2")
    page.get_by_label("Name", exact=True).fill("operating manuals")
    _save(page)
    expect(page.locator("#kb-fusion_dense_weight-error")).to_contain_text("less than or equal to 1")

    page.get_by_label("Dense weight in fusion (0 to 1)").fill("0.7")
    with page.expect_navigation():
        _save(page)
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("operating manuals")
    expect(top_k).to_have_value("3")
    stored = api.get(f"/v1/knowledge-bases/{kb_id}").json()
    assert stored["name"] == "operating manuals"
    assert stored["settings"] == {
        "top_k": 3,
        "chunk_size_tokens": 150,
        "chunk_overlap_tokens": 30,
        "fusion_dense_weight": 0.7,
        "rerank": False,
    }

    top_k.fill("")  # empty: the service's setting again
    with page.expect_navigation():
        _save(page)
    assert "top_k" not in api.get(f"/v1/knowledge-bases/{kb_id}").json()["settings"]
    expect(top_k).to_have_attribute("placeholder", "service: 5")

    page.get_by_role("button", name="Delete operating manuals").click()  # the fixture accepts the confirm
    page.wait_for_url(f"{console_server.url}/console/knowledge-bases")
    assert api.get("/v1/knowledge-bases/operating manuals").status_code == 404  # its name is free at once

    _ingest(api, "archive", "The archive keeps every signed contract for ten years.")
    page.get_by_role("link", name="Settings of archive").click()
    expect(page.get_by_label("Embedding model")).to_be_disabled()  # it holds documents: its model stays
    expect(page.locator("#kb-chunks")).not_to_have_text("0")
