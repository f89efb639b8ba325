"""A superadmin in the console: tenants (made with their first key shown once, suspended, reactivated)
and analytics over every tenant; no tenant's pages."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from tests.api.console.conftest import ConsoleServer, assert_accessible


def test_a_superadmin_manages_tenants(console_server: ConsoleServer, open_console) -> None:  # type: ignore[no-untyped-def]
    page, watched = open_console(console_server.superadmin)
    expect(page).to_have_url(f"{console_server.url}/console/tenants")
    expect(page.get_by_role("navigation", name="Console")).not_to_contain_text("Ask")
    assert_accessible(page)

    page.get_by_label("Name").fill("acme-console")
    page.get_by_label("Requests per minute").fill("300")
    page.get_by_role("button", name="Create tenant").click()
    secret = page.get_by_label("The new key")
    expect(secret).to_be_visible()
    key = secret.inner_text().strip()
    assert httpx.get(console_server.url + "/v1/tenant", headers={"X-API-Key": key}).json()["name"] == "acme-console"
    with page.expect_navigation():
        page.get_by_role("button", name="Done").click()
    row = page.get_by_role("row").filter(has_text="acme-console")
    expect(row).to_contain_text("300")
    row.get_by_role("button", name="Suspend acme-console").click()
    expect(page.get_by_role("row").filter(has_text="acme-console")).to_contain_text("suspended")
    assert httpx.get(console_server.url + "/v1/tenant", headers={"X-API-Key": key}).status_code == 403
    page.get_by_role("button", name="Reactivate acme-console").click()
    expect(page.get_by_role("row").filter(has_text="acme-console")).to_contain_text("active")

    page.get_by_role("link", name="Analytics").click()
    expect(page.get_by_label("Tenant")).to_have_value("")  # every tenant
    expect(page.get_by_role("img", name="Queries")).to_be_visible()
    assert_accessible(page)

    watched.allow("status of 403")
    response = page.goto("/console/ask")  # a superadmin reads no tenant's data
    assert response is not None and response.status == 403
