"""The browser tests' harness: Debian's Chromium driven by Playwright's sync API, and pages watched for what a
user should never see.

Every page of a context opened here is watched: a console error or an uncaught exception, and any request to
a host other than loopback, fail the test when its context is checked (the request itself is aborted, so
nothing leaves the machine).

Playwright's sync API keeps an event loop running in the test thread while it is open, and pytest-asyncio
cannot run async tests after it until it is closed: a browser is launched for a module or a package, never
for the session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, ViewportSize, sync_playwright

CHROMIUM = "/usr/bin/chromium"  # Debian's, installed by scripts/test-services.sh; Playwright downloads none
os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}  # urlsplit's hostname: no brackets around an IPv6 address


@contextmanager
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run scripts/test-services.sh (make test does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            yield launched
        finally:
            launched.close()


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


def watched_page(
    browser: Browser, timeout_ms: float, base_url: str | None = None, viewport: ViewportSize | None = None
) -> tuple[BrowserContext, Page, Watched]:
    """A new context and its first page, watched; dialogs are accepted. The caller closes the context, then
    checks what was watched."""
    watched = Watched()
    context = browser.new_context(base_url=base_url, viewport=viewport)
    context.set_default_timeout(timeout_ms)

    def only_loopback(route: Route) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or (urlsplit(url).hostname or "") in LOOPBACK:
            route.continue_()
        else:
            watched.outside.append(url)
            route.abort()

    context.route("**/*", only_loopback)
    page = context.new_page()
    page.on("console", lambda m: watched.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: watched.errors.append(f"uncaught: {exc}"))
    page.on("dialog", lambda dialog: dialog.accept())
    return context, page, watched
