"""The console with the keyboard alone, in Debian's Chromium: sign in, create a knowledge base, upload a
file, ask, open a cited passage, rate the answer, create a key and revoke it, with Tab, Shift+Tab, Enter,
Space, Escape and typing; no click. Every control the focus passes on the way must show where it is."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.api.browser import Watched
from tests.api.console.conftest import Account, ConsoleServer

OpenConsole = Callable[[Account | None], tuple[Page, Watched]]

# What has the focus: its accessible name as a user hears it (aria-label, its <label>, or its text), and
# whether it is visible with a focus indicator (an outline of 2px or more, or a box shadow).
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) return null;
  const label = el.labels && el.labels.length ? el.labels[0].textContent : '';
  const name = (el.getAttribute('aria-label') || label || el.textContent || '').trim().replace(/\\s+/g, ' ');
  const style = getComputedStyle(el);
  const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2;
  const shadow = Boolean(style.boxShadow) && style.boxShadow !== 'none';
  const box = el.getBoundingClientRect();
  return {name, tag: el.tagName.toLowerCase(), indicated: outline || shadow, visible: box.width > 0 && box.height > 0};
}"""


def focused(page: Page) -> dict[str, Any] | None:
    found: dict[str, Any] | None = page.evaluate(FOCUSED)
    return found


def _matches(found: dict[str, Any] | None, name: str, tag: str | None, exact: bool) -> bool:
    if found is None or (tag is not None and found["tag"] != tag):
        return False
    return bool(found["name"] == name if exact else name in found["name"])


def tab_to(page: Page, name: str, *, tag: str | None = None, back: bool = False, exact: bool = True) -> None:
    """Tab (Shift+Tab with `back`) until the control named `name` has the focus. Every control the focus
    lands on must be visible and show a focus indicator."""
    passed: list[str] = []
    for _ in range(80):
        found = focused(page)
        if found is not None:
            assert found["visible"] and found["indicated"], f"no visible focus indicator: {found} (after {passed})"
            if _matches(found, name, tag, exact):
                return
            passed.append(f"{found['tag']}:{found['name'][:40]}")
        page.keyboard.press("Shift+Tab" if back else "Tab")
    raise AssertionError(f"{name!r} cannot be reached with the keyboard; the focus passed {passed}")


def press_and_wait(page: Page, key: str = "Enter") -> None:
    """A key that loads another page (a link, a form that reloads)."""
    with page.expect_navigation():
        page.keyboard.press(key)


def test_a_tenant_admin_works_with_the_keyboard_alone(
    console_server: ConsoleServer,
    open_console: OpenConsole,
    tmp_path: Path,
) -> None:
    admin = console_server.new_tenant("keyboard")
    page, watched = open_console(None)
    page.goto("/console/login")

    tab_to(page, "E-mail")  # focused on load (autofocus)
    page.keyboard.type(admin.email)
    tab_to(page, "Password")
    page.keyboard.type(admin.password)
    tab_to(page, "Sign in", tag="button")
    press_and_wait(page)
    expect(page).to_have_url(f"{console_server.url}/console/ask")

    # the first Tab of a page is the skip link, then the navigation
    tab_to(page, "Skip to content")
    tab_to(page, "Knowledge bases", tag="a")
    press_and_wait(page)
    tab_to(page, "Name", tag="input")
    page.keyboard.type("keyboard kb")
    tab_to(page, "Create", tag="button")
    press_and_wait(page)  # created: the page reloads with it
    expect(page.get_by_role("link", name="keyboard kb", exact=True)).to_be_visible()

    notes = tmp_path / "notes.md"
    notes.write_text(
        "# Parking rules\n\nVisitors park on level minus two. Staff badges open the gate on level minus one."
    )
    tab_to(page, "Upload", tag="a", back=True)
    press_and_wait(page)
    tab_to(page, "Knowledge base", tag="select")
    page.keyboard.type("keyboard kb")  # a closed select picks the option typed
    expect(page.get_by_label("Knowledge base")).to_have_value("keyboard kb")
    tab_to(page, "Files", tag="input")
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")  # the file input opens the system's chooser
    chooser.value.set_files(notes)
    tab_to(page, "Upload", tag="button")
    page.keyboard.press("Enter")
    expect(page.locator("#uploads [role=status]")).to_contain_text("succeeded: 1 of 1 files done, 0 failed")
    # the button, disabled while the upload ran, has the focus back: the keyboard is not lost in the page
    expect(page.get_by_role("button", name="Upload", exact=True)).to_be_focused()

    tab_to(page, "Ask", tag="a", back=True)
    press_and_wait(page)
    tab_to(page, "Knowledge bases to search", tag="select")
    page.keyboard.type("keyboard kb")  # a list box selects the option typed
    expect(page.get_by_label("Knowledge bases to search")).to_have_value("keyboard kb")
    tab_to(page, "Question", tag="textarea")
    page.keyboard.type("Where do visitors park?")
    tab_to(page, "Ask", tag="button")
    page.keyboard.press("Enter")
    answer = page.get_by_role("article", name="Answer").first
    expect(answer).to_have_attribute("aria-busy", "false")
    expect(answer).to_contain_text("level minus two")
    # the answer is above the question box, which has the focus again: back to its sources and ratings
    tab_to(page, "Good answer", back=True)
    page.keyboard.press("Enter")
    expect(answer.get_by_role("status")).to_have_text("Thanks: rating saved.")
    expect(answer.get_by_role("button", name="Good answer")).to_have_attribute("aria-pressed", "true")
    tab_to(page, "Parking rules", tag="button", back=True, exact=False)
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Cited passage")).to_be_focused()  # the dialog takes the focus
    expect(dialog).to_contain_text("level minus two")
    tab_to(page, "Close", tag="button")
    page.keyboard.press("Shift+Tab")  # the focus stays in the open dialog
    expect(dialog.get_by_label("Cited passage")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    found = focused(page)  # back where it was before the dialog opened
    assert found is not None and "Parking rules" in found["name"], found

    tab_to(page, "API keys", tag="a")
    press_and_wait(page)
    tab_to(page, "Name", tag="input")
    page.keyboard.type("keyboard key")
    tab_to(page, "Create key", tag="button")
    page.keyboard.press("Enter")
    secret = page.get_by_label("The new key")
    expect(secret).to_be_focused()  # shown once, and where the keyboard is
    key = secret.inner_text().strip()
    assert httpx.get(console_server.url + "/v1/knowledge-bases", headers={"X-API-Key": key}).status_code == 200
    tab_to(page, "Done", tag="button")
    press_and_wait(page)
    tab_to(page, "Revoke keyboard key", tag="button")
    press_and_wait(page)  # confirmed (the fixture accepts the browser's confirm), then the page reloads
    expect(page.get_by_role("row").filter(has_text="keyboard key")).to_contain_text("revoked")
    assert httpx.get(console_server.url + "/v1/knowledge-bases", headers={"X-API-Key": key}).status_code == 401
    watched.check()
