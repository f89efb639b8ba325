"""/docs, /redoc and the LangServe playground in a real browser (Debian's Chromium, driven by Playwright,
tests/api/browser.py) against the session's one `ragapi serve` (`served`): each page renders, "Try it out"
uploads a file through Swagger UI, the playground signs in and answers; on every page no console error, and no
request leaves the machine (every request to a host other than loopback is aborted and fails the test)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.api.browser import chromium, watched_page
from tests.api.test_openapi import READING_ORDER
from tests.conftest import Served

pytestmark = pytest.mark.slow

TIMEOUT_MS = 60_000  # two shared cores: a first render of a 2 MB bundle can take a while
LEAVE_POLICY = "Employees get 25 days of paid leave a year. Unused days carry over until March."


@dataclass(frozen=True)
class Site:
    """The server and a tenant's key, with the leave policy in its default knowledge base."""

    url: str
    api_key: str


@pytest.fixture(scope="module")
def site(served: Served) -> Site:
    api_key = served.tenant("Browser Co").api_key
    document = {"documents": [{"title": "Leave policy", "text": LEAVE_POLICY}]}
    ingested = httpx.post(
        served.url + "/v1/ingest?wait=true", headers={"X-API-Key": api_key}, json=document, timeout=60
    )
    assert ingested.status_code == 200, ingested.text
    return Site(served.url, api_key)


# Module scope, not session: see tests/api/browser.py.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, site: Site) -> Iterator[Page]:
    """A fresh browser context whose page may reach the server only; checked for errors when the test ends."""
    context, opened, watched = watched_page(browser, TIMEOUT_MS)
    yield opened
    context.close()
    watched.check()


def test_swagger_ui_renders_every_operation_in_reading_order(page: Page, site: Site) -> None:
    page.goto(site.url + "/docs")
    page.locator(".opblock-tag").first.wait_for()
    tags = page.locator(".opblock-tag").evaluate_all("tags => tags.map(t => t.dataset.tag)")
    assert tags == READING_ORDER
    assert page.locator(".opblock").count() >= 60
    first = page.locator(".opblock-summary-path").first
    assert first.get_attribute("data-path") == "/v1/ingest"


def test_try_it_out_uploads_a_file_to_ingest(page: Page, site: Site, tmp_path: Path) -> None:
    page.goto(site.url + "/docs")
    page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".dialog-ux")
    dialog.get_by_label("Value:").first.fill(site.api_key)  # APIKeyHeader: X-API-Key
    dialog.get_by_role("button", name="Apply credentials").first.click()
    dialog.get_by_role("button", name="Close").first.click()

    operation = page.locator("#operations-ingest-ingest_v1_ingest_post")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    picker = operation.locator("input[type=file]")
    assert picker.count() >= 1  # multipart/form-data is the body offered first: files as binary parts
    handbook = tmp_path / "travel.md"
    handbook.write_text("# Travel\n\nEconomy class is required for flights under 6 hours.\n")
    picker.first.set_input_files(handbook)
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip() == "202"
    shown = json.loads(operation.locator(".live-responses-table .microlight").first.inner_text())
    # the job as it stood when answered: the served workers poll every 0.2 s, so one may already have it
    assert shown["job_id"] and shown["status"] in {"queued", "running", "succeeded"}


def test_redoc_renders_the_reference(page: Page, site: Site) -> None:
    page.goto(site.url + "/redoc")
    page.get_by_role("heading", name="Enterprise RAG API (0.1.0)").wait_for()
    tags = page.locator("li[data-item-id^='tag/']:not([data-item-id*='/operation/'])")
    assert tags.evaluate_all("items => items.map(i => i.getAttribute('aria-label'))") == READING_ORDER
    page.get_by_text("Upload files or JSON documents").first.wait_for()  # the tag's description
    assert page.locator("li[data-item-id='tag/ingest/operation/ingest_v1_ingest_post']").count() == 1


def test_the_playground_signs_in_and_answers(page: Page, site: Site) -> None:
    page.goto(site.url + "/v1/rag/playground/")
    assert page.url == site.url + "/v1/rag/sign-in"  # a browser without a credential is sent to sign in
    page.get_by_label("API key or access token").fill(site.api_key)
    page.get_by_role("button", name="Open the playground").click()
    page.wait_for_url(site.url + "/v1/rag/playground/")
    page.locator("textarea").first.fill("How many days of leave do I get?")
    page.get_by_role("button", name="Start").click()
    page.get_by_text("Employees get 25 days of paid leave a year").first.wait_for()
