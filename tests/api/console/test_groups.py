"""Groups in the console, in Debian's Chromium: an admin creates one (a duplicate name is refused on the
page), renames it, adds and removes members picked from the tenant's users, deletes it; the API agrees
at each step; another tenant's admin sees none of it."""

from __future__ import annotations

import uuid

import httpx
from playwright.sync_api import expect

from tests.api.console.conftest import Account, ConsoleServer, assert_accessible
from tests.api.helpers import PASSWORD


def unique(name: str) -> str:
    """An e-mail address no other test uses (addresses are unique across tenants)."""
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"


def _user(server: ConsoleServer, key: str, email: str, role: str = "member") -> str:
    made = httpx.post(
        server.url + "/v1/users",
        json={"email": email, "password": PASSWORD, "role": role},
        headers={"X-API-Key": key},
        timeout=30,
    )
    assert made.status_code == 201, made.text
    user_id: str = made.json()["id"]
    return user_id


def _groups(server: ConsoleServer, key: str) -> dict[str, list[str]]:
    listed = httpx.get(server.url + "/v1/groups", headers={"X-API-Key": key}, timeout=30)
    assert listed.status_code == 200, listed.text
    return {g["name"]: g["members"] for g in listed.json()}


def test_an_admin_manages_groups_and_their_members(console_server: ConsoleServer, open_console) -> None:  # type: ignore[no-untyped-def]
    admin = console_server.new_tenant("groups")
    assert admin.api_key is not None
    key = admin.api_key
    ann_email, bob_email = unique("ann"), unique("bob")
    ann = _user(console_server, key, ann_email)
    bob = _user(console_server, key, bob_email)
    page, watched = open_console(admin)

    page.get_by_role("link", name="Groups").click()
    expect(page.get_by_role("table", name="Groups")).to_contain_text("No groups yet")
    assert_accessible(page)
    page.get_by_label("Name").fill("finance")
    with page.expect_navigation():
        page.get_by_role("button", name="Create group").click()
    row = page.get_by_role("row").filter(has_text="finance")
    expect(row.get_by_role("cell").nth(1)).to_have_text("0")  # members
    page.get_by_label("Name").fill("finance")
    page.get_by_role("button", name="Create group").click()
    watched.allow("status of 409")  # the browser logs the refused request; the page says why
    expect(page.locator("[data-errors]")).to_contain_text("Conflict")

    page.get_by_role("link", name="finance").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Group finance")
    assert_accessible(page)
    page.get_by_label(ann_email).check()
    page.get_by_label(bob_email).check()
    with page.expect_navigation():
        page.get_by_role("button", name="Add to finance").click()
    members = page.get_by_role("table", name="Members")
    expect(members).to_contain_text(ann_email)
    expect(members).to_contain_text(bob_email)
    expect(page.get_by_role("heading", name="Members (2)")).to_be_visible()
    assert sorted(_groups(console_server, key)["finance"]) == sorted([ann, bob])

    with page.expect_navigation():
        page.get_by_role("button", name=f"Remove {bob_email} from finance").click()
    expect(members).not_to_contain_text(bob_email)
    assert _groups(console_server, key)["finance"] == [ann]
    expect(page.get_by_label(bob_email)).not_to_be_checked()  # offered again

    page.get_by_label("Name", exact=True).fill("finance team")
    with page.expect_navigation():
        page.get_by_role("button", name="Rename").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Group finance team")
    assert "finance team" in _groups(console_server, key)

    stranger = console_server.new_tenant("groups-stranger")
    other, other_watched = open_console(stranger)
    other.goto("/console/groups")
    expect(other.get_by_role("table", name="Groups")).not_to_contain_text("finance")
    other_watched.allow("status of 404")
    response = other.goto(page.url)  # the first tenant's group
    assert response is not None and response.status == 404
    other_watched.check()

    page.get_by_role("button", name="Delete group").click()  # confirmed: the page's dialogs are accepted
    page.wait_for_url("**/console/groups")
    expect(page.get_by_role("table", name="Groups")).to_contain_text("No groups yet")
    assert _groups(console_server, key) == {}
    watched.check()


def test_groups_are_for_admins(console_server: ConsoleServer, open_console) -> None:  # type: ignore[no-untyped-def]
    admin = console_server.new_tenant("groups-members")
    assert admin.api_key is not None
    email = unique("member")
    _user(console_server, admin.api_key, email)
    member = Account(email, PASSWORD, admin.tenant_id)
    page, watched = open_console(member)
    expect(page.get_by_role("navigation", name="Console")).not_to_contain_text("Groups")
    watched.allow("status of 403")
    response = page.goto("/console/groups")
    assert response is not None and response.status == 403
