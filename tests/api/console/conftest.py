"""The console's fixtures: one real server (`ragapi serve` over HTTP on a loopback port) and one Debian
Chromium driven by Playwright for the whole session; a fresh browser context (cookies, storage) per user.

Every page a test opens is watched: a console error or an uncaught exception, and any request to a host
other than the loopback server, fail the test (the request itself is aborted, so nothing leaves).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from tests.api.helpers import PASSWORD
from tests.services import ApiServer, wait_for_http

STARTUP_S = 240
CHROMIUM = "/usr/bin/chromium"  # Debian's, installed by scripts/test-services.sh; Playwright downloads none
os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"


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
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    env = {f"{name}_RATE_LIMIT_PER_MINUTE": "1000000" for name in ("TENANT", "PRINCIPAL", "IP", "LOGIN")}
    env["OIDC_ALLOW_HTTP_LOOPBACK"] = "true"  # the session's identity provider (tests/oidc) is http on loopback
    server = ApiServer(tmp_path_factory.mktemp("console"), CHUNK_SIZE_TOKENS="120", INGEST_POLL_S="0.2", **env)
    server.launch()
    try:
        # longer than ApiServer's own wait: the first start migrates a new database and loads the model
        wait_for_http(server.url + "/readyz", "ragapi serve", STARTUP_S, need_ok=True)
        email = "root@example.com"
        server.env["RAGAPI_PASSWORD"] = PASSWORD
        created = json.loads(server.cli("users", "create", "--email", email, "--superadmin").strip().splitlines()[-1])
        assert created["role"] == "superadmin"
        yield ConsoleServer(server, Account(email, PASSWORD, None))
    finally:
        server.stop()


@dataclass
class Watched:
    """What the pages of one browser context did that a user should never see."""

    errors: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)

    def allow(self, text: str) -> None:
        """A console message the test provokes on purpose (the browser logs a refused request)."""
        self.allowed.append(text)

    def check(self) -> None:
        errors = [e for e in self.errors if not any(a in e for a in self.allowed)]
        assert not self.outside, f"requests left the machine: {self.outside}"
        assert not errors, f"errors in the browser console: {errors}"


# Package scope, not session: Playwright's sync API keeps an event loop running in this thread while it
# is open, and pytest-asyncio cannot run the async tests after it until it is closed.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run scripts/test-services.sh (make test does)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@pytest.fixture
def open_console(browser: Browser, console_server: ConsoleServer) -> Iterator[Callable[..., tuple[Page, Watched]]]:
    """open_console(account) -> (page, watched): a new browser context signed in as `account` (or not, when
    None), every request to a host off this machine aborted and recorded."""
    opened = []

    def open_as(account: Account | None) -> tuple[Page, Watched]:
        watched = Watched()
        context = browser.new_context(base_url=console_server.url, viewport={"width": 1280, "height": 860})
        context.set_default_timeout(20_000)

        def guard(route: Route) -> None:
            host = urlsplit(route.request.url).hostname or ""
            if route.request.url.startswith(("data:", "blob:")) or host in LOOPBACK:
                route.continue_()
            else:
                watched.outside.append(route.request.url)
                route.abort()

        context.route("**/*", guard)
        page = context.new_page()
        page.on("console", lambda m: watched.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: watched.errors.append(str(exc)))
        page.on("dialog", lambda dialog: dialog.accept())
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
