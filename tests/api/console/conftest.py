"""The console's fixtures: the session's one real server (`served`: `ragapi serve` over HTTP on a loopback
port) with its superadmin as a console account, and one Debian Chromium for the package (tests/api/browser.py);
a fresh, watched browser context (cookies, storage) per user.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.api.browser import Watched, chromium, watched_page
from tests.api.helpers import PASSWORD
from tests.conftest import Served
from tests.services import ApiServer


@dataclass(frozen=True)
class Account:
    email: str
    password: str
    tenant_id: uuid.UUID | None
    api_key: str | None = None  # the tenant's first (admin) key, for setting up through the API


@dataclass
class ConsoleServer:
    server: ApiServer
    superadmin: Account

    @property
    def url(self) -> str:
        return self.server.url

    def new_tenant(self, name: str) -> Account:
        """A tenant and its admin user, made as a superadmin would (through the API)."""
        with httpx.Client(base_url=self.url, timeout=30) as client:
            token = client.post(
                "/v1/auth/login", data={"username": self.superadmin.email, "password": self.superadmin.password}
            ).json()["access_token"]
            created = client.post("/v1/tenants", json={"name": name}, headers={"Authorization": f"Bearer {token}"})
            assert created.status_code == 201, created.text
            tenant = created.json()
            email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
            user = client.post(
                "/v1/users",
                json={"email": email, "password": PASSWORD, "role": "admin"},
                headers={"X-API-Key": tenant["api_key"]},
            )
            assert user.status_code == 201, user.text
        return Account(email, PASSWORD, uuid.UUID(tenant["id"]), tenant["api_key"])


@pytest.fixture(scope="session")
def console_server(served: Served) -> ConsoleServer:
    return ConsoleServer(served.server, Account(served.superadmin_email, served.superadmin_password, None))


# Package scope, not session: see tests/api/browser.py.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def open_console(browser: Browser, console_server: ConsoleServer) -> Iterator[Callable[..., tuple[Page, Watched]]]:
    """open_console(account) -> (page, watched): a new browser context signed in as `account` (or not, when
    None), every request to a host off this machine aborted and recorded."""
    opened = []

    def open_as(account: Account | None) -> tuple[Page, Watched]:
        context, page, watched = watched_page(
            browser, 20_000, base_url=console_server.url, viewport={"width": 1280, "height": 860}
        )
        opened.append((context, watched))
        if account is not None:
            sign_in(page, account)
        return page, watched

    yield open_as
    for context, _ in opened:
        context.close()
    for _, watched in opened:
        watched.check()


def sign_in(page: Page, account: Account) -> None:
    page.goto("/console")
    page.get_by_label("E-mail").fill(account.email)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/console/login" not in url)


UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button, a[href]')]
  .filter((el) => el.type !== 'hidden' && el.getClientRects().length > 0)
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
    && !el.getAttribute('aria-labelledby') && !(['BUTTON', 'A'].includes(el.tagName) && el.textContent.trim()))
  .map((el) => el.outerHTML.slice(0, 120))"""


def assert_accessible(page: Page) -> None:
    """Every visible control has a label (its <label>, aria-label or text), and the first Tab reaches the
    skip link, whose Enter puts the keyboard in the page's main content."""
    assert page.evaluate(UNLABELLED) == []
    page.reload()  # sequential focus starts from the top of a freshly loaded page
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
