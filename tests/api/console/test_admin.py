"""The admin pages in Debian's Chromium: a knowledge base's settings (the API's 409 and 422 next to the
field they name), users' roles and deactivation, analytics over chosen dates and one knowledge base, and a
superadmin's tenant plans and limits."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.api.browser import Watched
from tests.api.console.conftest import Account, ConsoleServer, assert_accessible
from tests.api.helpers import PASSWORD

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


def test_an_admin_changes_roles_deactivates_and_deletes(
    console_server: ConsoleServer, open_console: OpenConsole
) -> None:
    admin = console_server.new_tenant("roles")
    api = _api(console_server, admin)
    email = f"writer-{uuid.uuid4().hex[:6]}@example.com"
    assert api.post("/v1/users", json={"email": email, "password": PASSWORD, "role": "member"}).status_code == 201
    page, _ = open_console(admin)
    page.goto("/console/users")
    assert_accessible(page)
    expect(page.get_by_label(f"Role of {admin.email}", exact=True)).to_have_count(0)  # not one's own
    page.get_by_label(f"Role of {email}", exact=True).select_option("readonly")
    with page.expect_navigation():
        page.get_by_role("button", name=f"Change the role of {email}").click()
    expect(page.get_by_label(f"Role of {email}", exact=True)).to_have_value("readonly")
    assert next(u for u in api.get("/v1/users").json() if u["email"] == email)["role"] == "readonly"

    writer, _ = open_console(Account(email, PASSWORD, admin.tenant_id))
    nav = writer.get_by_role("navigation", name="Console")
    expect(nav).to_contain_text("Documents")
    expect(nav).not_to_contain_text("Upload")  # a reader uploads nothing

    page.get_by_role("button", name=f"Deactivate {email}").click()
    expect(page.get_by_role("row").filter(has_text=email)).to_contain_text("deactivated")
    login = {"username": email, "password": PASSWORD}
    assert httpx.post(console_server.url + "/v1/auth/login", data=login).status_code == 401
    writer.goto("/console/documents")  # the session ended with the deactivation
    expect(writer).to_have_url(re.compile(r"/console/login\?next="))
    page.get_by_role("button", name=f"Reactivate {email}").click()
    expect(page.get_by_role("row").filter(has_text=email)).not_to_contain_text("deactivated")
    assert httpx.post(console_server.url + "/v1/auth/login", data=login).status_code == 200

    page.get_by_role("button", name=f"Delete {email}", exact=True).click()  # the fixture accepts the confirm
    expect(page.get_by_role("row").filter(has_text=email)).to_have_count(0)
    assert httpx.post(console_server.url + "/v1/auth/login", data=login).status_code == 401
    assert all(u["email"] != email for u in api.get("/v1/users").json())


def _total(page: Page) -> Any:
    return page.locator("#total-queries")


def test_analytics_over_chosen_dates_and_one_knowledge_base(
    console_server: ConsoleServer, open_console: OpenConsole
) -> None:
    admin = console_server.new_tenant("range-report")
    api = _api(console_server, admin)
    for name, text in (("alpha", "Alpha servers reboot every Sunday."), ("beta", "Beta builds ship on Fridays.")):
        assert api.post("/v1/knowledge-bases", json={"name": name}).status_code == 201
        _ingest(api, name, text)
    for kb, question in (("alpha", "When do alpha servers reboot?"), ("alpha", "Do alpha servers reboot?")):
        assert api.post("/v1/query", json={"query": question, "knowledge_bases": [kb]}).status_code == 200
    assert api.post("/v1/query", json={"query": "When do beta builds ship?", "knowledge_bases": ["beta"]}).is_success
    page, watched = open_console(admin)
    page.goto("/console/analytics")
    expect(_total(page)).to_have_text("3")
    assert_accessible(page)

    page.get_by_label("Knowledge base").select_option("alpha")
    page.get_by_role("button", name="Show").click()
    expect(_total(page)).to_have_text("2")
    expect(page.get_by_role("heading", level=1)).to_contain_text("alpha")
    top = page.get_by_role("table", name="Top queries")
    expect(top).to_contain_text("alpha servers")
    expect(top).not_to_contain_text("beta")

    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    page.get_by_label("Range").select_option("custom")
    page.get_by_label("From (UTC)").fill(str(yesterday))
    page.get_by_label("To, included").fill(str(today))
    page.get_by_role("button", name="Show").click()
    expect(_total(page)).to_have_text("2")  # the knowledge base is still chosen
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"{yesterday} to {today}")
    page.get_by_label("Knowledge base").select_option("")
    page.get_by_role("button", name="Show").click()
    expect(_total(page)).to_have_text("3")
    page.get_by_label("From (UTC)").fill(str(today - timedelta(days=10)))
    page.get_by_label("To, included").fill(str(today - timedelta(days=5)))
    page.get_by_role("button", name="Show").click()
    expect(_total(page)).to_have_text("0")  # nothing was asked then

    watched.allow("status of 422")
    for first, last, field, says in (
        (today, yesterday, "from", "the first day comes after the last one"),
        (yesterday, today + timedelta(days=1), "to", "has not happened yet"),
        (today - timedelta(days=400), today, "from", "the query log keeps 90 days (QUERY_LOG_RETENTION_DAYS)"),
        ("", today, "from", "choose a date"),
    ):
        page.get_by_label("From (UTC)").fill(str(first))
        page.get_by_label("To, included").fill(str(last))
        with page.expect_navigation() as loaded:
            page.get_by_role("button", name="Show").click()
        assert loaded.value is not None and loaded.value.status == 422
        expect(page.locator(f"#{field}-error")).to_contain_text(says)
        expect(page.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
        expect(_total(page)).to_have_count(0)  # no numbers for a range that is not one
    response = page.goto("/console/analytics?range=forever")
    assert response is not None and response.status == 422
    expect(page.locator("#range-error")).to_contain_text("one of 24h, 7d, 30d, 90d, custom")


def test_a_superadmin_edits_a_tenants_plan(console_server: ConsoleServer, open_console: OpenConsole) -> None:
    customer = console_server.new_tenant(f"plans-{uuid.uuid4().hex[:6]}")
    assert customer.tenant_id is not None
    page, watched = open_console(console_server.superadmin)
    page.goto("/console/tenants")
    tenant_name = _superadmin_api(console_server).get(f"/v1/tenants/{customer.tenant_id}").json()["name"]
    page.get_by_role("link", name=f"Plan and limits of {tenant_name}").click()
    expect(page).to_have_url(f"{console_server.url}/console/tenants/{customer.tenant_id}")
    assert_accessible(page)

    watched.allow("status of 422")
    rate = page.get_by_label("Requests per minute")
    rate.fill("0")
    _save(page)
    expect(page.locator("#tenant-rate_limit_per_minute-error")).to_contain_text("greater than or equal to 1")
    expect(rate).to_be_focused()
    page.get_by_label("Plan", exact=True).fill("")
    rate.fill("120")
    _save(page)
    expect(page.locator("#tenant-plan-error")).to_contain_text("at least 1 character")

    page.get_by_label("Plan", exact=True).fill("gold")
    page.get_by_label("Queries per month").fill("1000")
    page.get_by_label("Anyone may register").check()
    with page.expect_navigation():
        _save(page)
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    limits = _api(console_server, customer).get("/v1/tenant").json()["limits"]
    assert (limits["plan"], limits["rate_limit_per_minute"], limits["monthly_query_quota"]) == ("gold", 120, 1000)
    stored = _superadmin_api(console_server).get(f"/v1/tenants/{customer.tenant_id}").json()
    assert stored["allow_registration"] is True

    page.get_by_label("Queries per month").fill("")  # empty: the service's again
    with page.expect_navigation():
        _save(page)
    assert (
        _superadmin_api(console_server).get(f"/v1/tenants/{customer.tenant_id}").json()["monthly_query_quota"] is None
    )
    page.get_by_role("link", name="Tenants", exact=True).first.click()
    row = page.get_by_role("row").filter(has_text=tenant_name)
    expect(row).to_contain_text("gold")
    expect(row).to_contain_text("120")
