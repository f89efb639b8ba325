"""A document's page and access in the console, in Debian's Chromium: reached from the documents list, it
shows what the document is; its metadata is edited (JSON that is not an object is refused on the page, a
value the API refuses is shown); an admin gives it to a user and a group, or several documents at once
to a group, and the readers see exactly that; it is deleted after a confirmation. Another tenant's admin
gets a 404."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.api.browser import Watched
from tests.api.console.conftest import Account, ConsoleServer, assert_accessible
from tests.api.helpers import PASSWORD

TEXTS = {
    "Board minutes": "The board approved the budget for the new warehouse in Lyon.",
    "Salary bands": "Engineering salary bands are reviewed every January by the pay committee.",
    "Canteen menu": "The canteen serves soup and a vegetarian dish every weekday at noon.",
}


class Tenant:
    """A tenant made for one test, set up and checked by its admin user (who, unlike an API key, reads
    every document of the tenant, restricted ones included)."""

    def __init__(self, server: ConsoleServer, name: str) -> None:
        self.server = server
        self.admin = server.new_tenant(name)
        signed_in = httpx.post(
            server.url + "/v1/auth/login", data={"username": self.admin.email, "password": self.admin.password}
        )
        assert signed_in.status_code == 200, signed_in.text
        self.headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, self.server.url + path, headers=self.headers, timeout=60, **kwargs)

    def user(self, role: str = "member") -> tuple[Account, str]:
        email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        made = self.call("POST", "/v1/users", json={"email": email, "password": PASSWORD, "role": role})
        assert made.status_code == 201, made.text
        return Account(email, PASSWORD, self.admin.tenant_id), made.json()["id"]

    def ingest(self) -> dict[str, str]:
        documents = [
            {"title": t, "text": text, "metadata": {"team": "ops"}, "external_id": t.lower().replace(" ", "-")}
            for t, text in TEXTS.items()
        ]
        done = self.call("POST", "/v1/ingest?wait=true", json={"documents": documents})
        assert done.status_code == 200, done.text
        return {t: d["document_id"] for t, d in zip(TEXTS, done.json()["documents"], strict=True)}

    def document(self, document_id: str) -> dict[str, Any]:
        found = self.call("GET", f"/v1/documents/{document_id}")
        assert found.status_code == 200, found.text
        body: dict[str, Any] = found.json()
        return body


def _titles(page: Page) -> list[str]:
    page.goto("/console/documents")
    links = page.get_by_role("table", name="Documents").get_by_role("link")
    return sorted(links.all_inner_texts())


def test_a_documents_page_metadata_and_access(console_server: ConsoleServer, open_console) -> None:  # type: ignore[no-untyped-def]
    tenant = Tenant(console_server, "document-page")
    ids = tenant.ingest()
    reader, reader_id = tenant.user()
    outsider, _ = tenant.user()
    group = tenant.call("POST", "/v1/groups", json={"name": "board"})
    assert group.status_code == 201, group.text
    page, watched = open_console(tenant.admin)

    page.get_by_role("link", name="Documents").click()
    page.get_by_role("link", name="Board minutes").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Board minutes")
    about = page.get_by_role("region", name="About")
    expect(about).to_contain_text("default")  # its knowledge base
    expect(about).to_contain_text("indexed")
    expect(about).to_contain_text("board-minutes")  # its external id
    expect(page.locator("#access-summary")).to_have_text("the whole tenant")
    assert_accessible(page)

    _metadata(page, watched, tenant, ids["Board minutes"])

    page.get_by_label(reader.email).check()  # checking a reader means "only these"
    page.get_by_label("board (0)").check()
    expect(page.get_by_label("Only admins and those checked below")).to_be_checked()
    page.get_by_role("button", name="Save access").click()
    expect(page.locator("#status")).to_contain_text("Access saved")
    expect(page.locator("#access-summary")).to_have_text(f"admins and {reader.email}, group board")
    access = tenant.document(ids["Board minutes"])["access"]
    assert access == {"users": [reader_id], "groups": [group.json()["group_id"]], "api_keys": []}
    page.reload()
    expect(page.get_by_label(reader.email)).to_be_checked()
    expect(page.locator("#access-summary")).to_have_text(f"admins and {reader.email}, group board")

    # The readers see what the list says: the named user has it, another member does not.
    as_reader, _ = open_console(reader)
    assert "Board minutes" in _titles(as_reader)
    as_outsider, outsider_watched = open_console(outsider)
    assert _titles(as_outsider) == ["Canteen menu", "Salary bands"]
    outsider_watched.allow("status of 404")
    response = as_outsider.goto(f"/console/documents/{ids['Board minutes']}")
    assert response is not None and response.status == 404
    outsider_watched.check()

    page.get_by_label("The whole tenant").check()
    page.get_by_role("button", name="Save access").click()
    expect(page.locator("#access-summary")).to_have_text("the whole tenant")
    assert tenant.document(ids["Board minutes"])["access"] is None
    assert "Board minutes" in _titles(as_outsider)

    page.get_by_role("button", name="Delete document").click()  # confirmed: the page's dialogs are accepted
    page.wait_for_url("**/console/documents")
    expect(page.get_by_role("table", name="Documents")).not_to_contain_text("Board minutes")
    assert tenant.call("GET", f"/v1/documents/{ids['Board minutes']}").status_code == 404

    stranger = console_server.new_tenant("document-stranger")
    other, other_watched = open_console(stranger)
    other_watched.allow("status of 404")
    response = other.goto(f"/console/documents/{ids['Salary bands']}")
    assert response is not None and response.status == 404
    other_watched.check()


def _metadata(page: Page, watched: Watched, tenant: Tenant, document_id: str) -> None:
    box = page.get_by_label("Metadata (a JSON object")
    expect(box).to_have_value('{\n  "team": "ops"\n}')
    box.fill('["not", "an", "object"]')
    page.get_by_role("button", name="Save metadata").click()
    expect(page.get_by_role("region", name="Metadata").locator("[data-errors]")).to_contain_text(
        "must be a JSON object"
    )
    box.fill(json.dumps({f"key{n}": n for n in range(65)}))  # over MAX_METADATA_KEYS (64)
    page.get_by_role("button", name="Save metadata").click()
    watched.allow("status of 422")  # the API's refusal, shown on the page
    expect(page.get_by_role("region", name="Metadata").locator("[data-errors]")).to_contain_text("MAX_METADATA_KEYS")
    box.fill('{"team": "board", "year": 2026}')
    page.get_by_role("button", name="Save metadata").click()
    expect(page.locator("#status")).to_have_text("Metadata saved.")
    assert tenant.document(document_id)["metadata"] == {"team": "board", "year": 2026}
    page.reload()
    expect(page.get_by_label("Metadata (a JSON object")).to_have_value('{\n  "team": "board",\n  "year": 2026\n}')


def test_access_for_several_documents_at_once(console_server: ConsoleServer, open_console) -> None:  # type: ignore[no-untyped-def]
    tenant = Tenant(console_server, "bulk-access")
    ids = tenant.ingest()
    reader, reader_id = tenant.user()
    outsider, _ = tenant.user()
    group = tenant.call("POST", "/v1/groups", json={"name": "hr"}).json()
    added = tenant.call("POST", f"/v1/groups/{group['group_id']}/members", json={"user_ids": [reader_id]})
    assert added.status_code == 200, added.text
    page, watched = open_console(tenant.admin)

    page.get_by_role("link", name="Documents").click()
    assert_accessible(page)
    table = page.get_by_role("table", name="Documents")
    page.get_by_role("button", name="Set access").click()
    expect(page.get_by_role("region", name="Access for the selected documents").locator("[data-errors]")).to_have_text(
        "Select documents in the table first."
    )
    page.get_by_label("Select Board minutes").check()
    page.get_by_label("Select Salary bands").check()
    page.get_by_label("hr (1)").check()
    page.get_by_role("button", name="Set access").click()
    expect(page.locator("#status")).to_have_text("Access set for 2 documents.")
    for title in ("Board minutes", "Salary bands"):
        expect(table.get_by_role("row").filter(has_text=title)).to_contain_text("restricted")
        assert tenant.document(ids[title])["access"] == {"users": [], "groups": [group["group_id"]], "api_keys": []}
    expect(table.get_by_role("row").filter(has_text="Canteen menu")).to_contain_text("whole tenant")

    as_reader, _ = open_console(reader)
    assert _titles(as_reader) == sorted(TEXTS)
    as_outsider, _ = open_console(outsider)
    assert _titles(as_outsider) == ["Canteen menu"]

    # By keyboard alone: Space checks a box or a radio, Enter on the button sends the form.
    page.get_by_label("Select every document listed").focus()  # the table was swapped in again: still wired
    page.keyboard.press("Space")
    page.get_by_label("The whole tenant").focus()
    page.keyboard.press("Space")
    page.get_by_role("button", name="Set access").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_have_text("Access set for 3 documents.")
    assert _titles(as_outsider) == sorted(TEXTS)
    watched.check()
