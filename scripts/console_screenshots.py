"""Screenshots of the console's main pages for docs/console.md, taken in Debian's Chromium.

    uv run python scripts/console_screenshots.py [--out docs/img]

Starts `ragapi serve` on a loopback port with a throwaway DATA_DIR, makes a superadmin (the CLI), a tenant
and its admin (the API), loads a few documents and asks a few questions through the API, then signs in to
the console and photographs each page. Nothing leaves the machine: every request to another host is
aborted, as in the browser tests. Run it again whenever a page changes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import Page, Route, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.services import ApiServer, wait_for_http  # noqa: E402 - the repository's own test server helper

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery staple"  # noqa: S105 - a throwaway server's demo account
DOCUMENTS = [
    (
        "Vacation policy",
        "Every employee receives 25 days of paid vacation per year. Unused vacation days carry over until the "
        "31st of March of the following year, then they lapse. Requests go to the manager two weeks ahead.",
    ),
    (
        "Expense reports",
        "Expense reports are due within 30 days of the purchase. Receipts above 50 euros must be attached, and "
        "the manager approves each report before finance pays it.",
    ),
    (
        "Remote work",
        "Employees may work remotely up to three days a week. The office is open from 7 am to 8 pm; the core "
        "hours, when everyone is reachable, are 10 am to 3 pm.",
    ),
]
UPLOADS = {"onboarding.md": "# Onboarding\n\nDay one: a laptop and a badge.", "it.txt": "IT help: ext. 4444"}
QUESTIONS = [
    "How many days of paid vacation does an employee get?",
    "When are expense reports due?",
    "How many days a week can I work remotely?",
]


def _guard(route: Route) -> None:
    host = httpx.URL(route.request.url).host
    if route.request.url.startswith("data:") or host in ("127.0.0.1", "localhost"):
        route.continue_()
    else:
        route.abort()


def _seed(url: str, server: ApiServer) -> str:
    """A tenant with documents, an admin, and a few answered (and rated) questions; the admin's e-mail."""
    server.env["RAGAPI_PASSWORD"] = PASSWORD
    server.cli("users", "create", "--email", "root@example.com", "--superadmin")
    with httpx.Client(base_url=url, timeout=60) as client:
        root = client.post("/v1/auth/login", data={"username": "root@example.com", "password": PASSWORD})
        bearer = {"Authorization": f"Bearer {root.json()['access_token']}"}
        tenant = client.post("/v1/tenants", json={"name": "acme"}, headers=bearer).json()
        client.post("/v1/tenants", json={"name": "globex", "plan": "pro", "rate_limit_per_minute": 300}, headers=bearer)
        key = {"X-API-Key": tenant["api_key"]}
        client.post(
            "/v1/knowledge-bases", json={"name": "handbook", "description": "The staff handbook"}, headers=key
        ).raise_for_status()
        documents = [{"title": t, "text": text, "metadata": {"team": "hr"}} for t, text in DOCUMENTS]
        ingested = client.post(
            "/v1/ingest?wait=true&knowledge_base=handbook", json={"documents": documents}, headers=key
        ).json()["documents"]
        email = "admin@acme.example"
        client.post("/v1/users", json={"email": email, "password": PASSWORD, "role": "admin"}, headers=key)
        people = []
        for person in ("ann@acme.example", "bob@acme.example", "cleo@acme.example"):
            user = {"email": person, "password": PASSWORD, "role": "member"}
            people.append(client.post("/v1/users", json=user, headers=key).json()["id"])
        group = client.post("/v1/groups", json={"name": "finance"}, headers=key).json()["group_id"]
        client.post(f"/v1/groups/{group}/members", json={"user_ids": people[:2]}, headers=key)
        access = {"access": {"users": people[2:], "groups": [group], "api_keys": []}}
        client.put(f"/v1/documents/{ingested[1]['document_id']}/access", json=access, headers=key)  # expenses
        reader = {"email": "reader@acme.example", "password": PASSWORD, "role": "readonly"}
        client.post("/v1/users", json=reader, headers=key)
        client.post("/v1/api-keys", json={"name": "ci robot", "scopes": ["query"]}, headers=key)
        for question in QUESTIONS:
            answer = client.post("/v1/query", json={"query": question, "knowledge_bases": ["handbook"]}, headers=key)
            client.post("/v1/feedback", json={"query_id": answer.json()["query_id"], "rating": 1}, headers=key)
    return email


def _sign_in(page: Page, email: str) -> None:
    page.goto("/console/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda u: "/login" not in u)


def take(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    with tempfile.TemporaryDirectory() as data_dir:
        server = ApiServer(Path(data_dir), CHUNK_SIZE_TOKENS="120", INGEST_POLL_S="0.2")
        server.launch()
        try:
            wait_for_http(server.url + "/readyz", "ragapi serve", 240, need_ok=True)
            email = _seed(server.url, server)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM)
                context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 800})
                context.route("**/*", _guard)
                page = context.new_page()

                def shot(name: str, full_page: bool = False) -> None:
                    path = out / f"console-{name}.png"
                    page.screenshot(path=str(path), full_page=full_page)
                    shots.append(path)

                page.goto("/console/login")
                shot("sign-in")
                _sign_in(page, email)
                page.get_by_label("Knowledge bases to search").select_option("handbook")
                page.get_by_label("Question", exact=True).fill(QUESTIONS[0])
                page.get_by_role("button", name="Ask").click()
                page.locator("article[aria-busy=false]").first.wait_for()
                page.get_by_label("Follow-up question").fill("And until when do unused days carry over?")
                page.get_by_role("button", name="Ask").click()
                page.locator("article[aria-busy=false]").nth(1).wait_for()
                shot("ask")
                page.locator("button[data-passage]").first.click()
                page.get_by_role("dialog").wait_for()
                shot("passage")
                with tempfile.TemporaryDirectory() as files:
                    paths = []
                    for name, text in UPLOADS.items():
                        (Path(files) / name).write_text(text)
                        paths.append(Path(files) / name)
                    page.goto("/console/upload")
                    page.get_by_label("Knowledge base").select_option("handbook")
                    page.get_by_label("Files", exact=True).set_input_files(paths)
                    page.get_by_role("button", name="Upload").click()
                    page.get_by_text("succeeded: 2 of 2").wait_for()
                    shot("upload")
                for name in ("documents", "knowledge-bases", "analytics", "api-keys", "users"):
                    page.goto(f"/console/{name}")
                    shot(name)
                page.goto("/console/groups")
                page.get_by_role("link", name="finance").click()
                shot("group")
                page.goto("/console/documents")
                page.get_by_role("link", name="Expense reports").click()
                shot("document", full_page=True)
                page.goto("/console/knowledge-bases/handbook")
                page.get_by_label("Sources per answer (top k)").fill("500")
                page.get_by_role("button", name="Save").click()  # the API's refusal, next to its field
                page.locator(".field-error").wait_for()
                shot("knowledge-base")
                context.clear_cookies()
                _sign_in(page, "root@example.com")
                shot("tenants")
                page.get_by_role("link", name="Plan and limits of globex").click()
                shot("tenant")
                browser.close()
        finally:
            server.stop()
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args()
    os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
    for path in take(args.out):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)  # noqa: T201


if __name__ == "__main__":
    main()
