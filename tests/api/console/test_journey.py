"""A tenant admin's first session in the console, in Debian's Chromium: sign in, a knowledge base, two
files uploaded with their progress, a streamed answer with a citation, a follow-up, a rating, the
analytics, a key made and revoked; then a user of another tenant, who sees none of it."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.api.browser import Watched
from tests.api.console.conftest import ConsoleServer, assert_accessible

HANDBOOK = {
    "vacation.md": "# Vacation policy\n\nEvery employee receives 25 days of paid vacation per year. Unused vacation "
    "days carry over until the 31st of March of the following year, then they lapse.",
    "expenses.txt": "Expense reports\n\nExpense reports are due within 30 days of the purchase. Receipts above 50 "
    "euros must be attached to the report, and the manager approves them.",
}


def test_a_tenant_admin_works_through_the_console(console_server: ConsoleServer, open_console, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    admin = console_server.new_tenant("journey")
    page, watched = open_console(admin)
    expect(page).to_have_url(f"{console_server.url}/console/ask")

    _knowledge_base(page, watched)
    assert_accessible(page)
    _upload(page, tmp_path)
    assert_accessible(page)
    conversation = _ask(page)
    assert_accessible(page)
    _analytics(page)
    assert_accessible(page)
    _api_key(page, console_server)
    assert_accessible(page)
    _users(page)
    assert_accessible(page)

    stranger = console_server.new_tenant("stranger")
    other, other_watched = open_console(stranger)
    other_watched.allow("status of 404")  # the first tenant's conversation, opened on purpose
    _sees_none_of_it(other, conversation)
    other_watched.check()

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/login")
    page.goto("/console/knowledge-bases")
    expect(page).to_have_url(f"{console_server.url}/console/login?next=/console/knowledge-bases")
    watched.check()


def _knowledge_base(page: Page, watched: Watched) -> None:
    page.get_by_role("link", name="Knowledge bases").click()
    page.get_by_label("Name").fill("handbook")
    page.get_by_label("Description").fill("The staff handbook")
    with page.expect_navigation():  # created: the page reloads with it
        page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("link", name="handbook", exact=True)).to_be_visible()
    page.get_by_label("Name").fill("handbook")
    page.get_by_role("button", name="Create").click()
    watched.allow("status of 409")  # the browser logs the refused request; the page says why
    expect(page.locator("[data-errors]")).to_contain_text("Conflict")


def _upload(page: Page, tmp_path: Path) -> None:
    paths = []
    for name, text in HANDBOOK.items():
        (tmp_path / name).write_text(text)
        paths.append(tmp_path / name)
    page.get_by_role("link", name="Upload").click()
    page.get_by_label("Knowledge base").select_option("handbook")
    page.get_by_label("Files", exact=True).set_input_files(paths)
    page.get_by_role("button", name="Upload").click()
    progress = page.get_by_role("progressbar", name="Files processed")
    expect(page.locator("#uploads [role=status]")).to_contain_text("succeeded: 2 of 2 files done, 0 failed")
    expect(progress).to_have_attribute("value", "2")
    files = page.get_by_role("table", name="Files")
    for name in HANDBOOK:
        expect(files.get_by_role("row").filter(has_text=name)).to_contain_text("done")
    page.get_by_role("link", name="Documents").click()
    page.wait_for_load_state()  # htmx is listening
    page.get_by_label("Search titles and sources").fill("vacation")
    table = page.get_by_role("table", name="Documents")
    expect(table.get_by_role("row")).to_have_count(2)  # the header and the one match, swapped in by htmx
    expect(table).to_contain_text("handbook")


def _ask(page: Page) -> str:
    page.get_by_role("link", name="Ask").click()
    page.get_by_label("Knowledge bases to search").select_option("handbook")
    page.get_by_label("Question", exact=True).fill("How many days of paid vacation does an employee get?")
    page.get_by_role("button", name="Ask").click()
    answer = page.get_by_role("article", name="Answer").first
    expect(answer).to_have_attribute("aria-busy", "false")
    expect(answer).to_contain_text("25 days")
    citation = answer.get_by_role("list", name="Sources").get_by_role("button").first
    expect(citation).to_contain_text("Vacation policy")
    citation.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Cited passage")).to_contain_text("carry over until the 31st of March")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    expect(page).to_have_url(re.compile(r"/console/ask\?conversation=[0-9a-f-]{36}$"))

    page.get_by_label("Follow-up question").fill("Until when do the unused ones carry over?")
    page.get_by_role("button", name="Ask").click()
    follow_up = page.get_by_role("article", name="Answer").nth(1)
    expect(follow_up).to_have_attribute("aria-busy", "false")
    expect(follow_up).to_contain_text("March")
    follow_up.get_by_role("button", name="Good answer").click()
    expect(follow_up.get_by_role("status")).to_have_text("Thanks: rating saved.")
    expect(follow_up.get_by_role("button", name="Good answer")).to_have_attribute("aria-pressed", "true")

    page.reload()  # the conversation as stored: both turns, in the list of conversations
    expect(page.get_by_role("article", name="Question")).to_have_count(2)
    expect(page.get_by_role("navigation", name="Conversations")).to_contain_text("How many days of paid vacation")
    return page.url


def _analytics(page: Page) -> None:
    page.get_by_role("link", name="Analytics").click()
    expect(page.locator("#total-queries")).to_have_text("2")
    queries = page.get_by_role("img", name="Queries")
    expect(queries).to_be_visible()
    heights = queries.locator("rect.bar").evaluate_all("bars => bars.map((b) => Number(b.getAttribute('height')))")
    assert max(heights) > 0
    for name in ("Latency per stage", "p95 latency", "Cache hit rate", "Tokens", "Cost", "Feedback"):
        expect(page.get_by_role("img", name=name)).to_be_visible()
    expect(page.get_by_role("table", name="Top queries")).to_contain_text("how many days of paid vacation")
    page.get_by_label("Range").select_option("24h")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"range=24h"))
    expect(page.locator("#total-queries")).to_have_text("2")


def _api_key(page: Page, server: ConsoleServer) -> None:
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("ci robot")
    page.get_by_role("button", name="Create key").click()  # no reload: the key is shown in the page
    secret = page.get_by_label("The new key")
    expect(secret).to_be_visible()
    key = secret.inner_text().strip()
    headers = {"X-API-Key": key}
    assert httpx.get(server.url + "/v1/knowledge-bases", headers=headers).status_code == 200
    with page.expect_navigation():  # the page reloads; its script listens again once loaded
        page.get_by_role("button", name="Done").click()
    row = page.get_by_role("row").filter(has_text="ci robot")
    expect(row).to_contain_text("active")
    assert key not in page.content()  # shown once: the list has its prefix only
    row.get_by_role("button", name="Revoke ci robot").click()
    expect(page.get_by_role("row").filter(has_text="ci robot")).to_contain_text("revoked")
    assert httpx.get(server.url + "/v1/knowledge-bases", headers=headers).status_code == 401


def _users(page: Page) -> None:
    page.get_by_role("link", name="Users").click()
    page.get_by_label("E-mail").fill("reader@example.com")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_label("Role").select_option("readonly")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_label("Role of reader@example.com", exact=True)).to_have_value("readonly")


def _sees_none_of_it(page: Page, conversation_url: str) -> None:
    """Another tenant's admin: none of the first tenant's knowledge bases, documents, conversations,
    queries or keys; the first tenant's conversation is a 404."""
    page.goto("/console/knowledge-bases")
    expect(page.get_by_role("table", name="Knowledge bases")).not_to_contain_text("handbook")
    page.goto("/console/documents")
    expect(page.get_by_role("table", name="Documents")).to_contain_text("No documents")
    page.goto("/console/ask")
    expect(page.get_by_role("navigation", name="Conversations")).not_to_contain_text("vacation")
    page.goto("/console/analytics")
    expect(page.locator("#total-queries")).to_have_text("0")
    expect(page.get_by_role("table", name="Top queries")).to_contain_text("No queries")
    page.goto("/console/api-keys")
    expect(page.get_by_role("table", name="API keys")).not_to_contain_text("ci robot")
    page.goto("/console/users")
    expect(page.get_by_role("table", name="Users")).not_to_contain_text("reader@example.com")
    response = page.goto(conversation_url)
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
