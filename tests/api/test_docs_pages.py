"""/docs and /redoc load everything from the app itself: the vendored Swagger UI and ReDoc assets, at the
versions the vendoring script pins, and nothing from another host (tests/api/test_docs_browser.py renders
them in Chromium with every other host refused)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from ragapi.api import docs_pages

SCRIPT = Path(__file__).parents[2] / "scripts" / "vendor-docs-assets.sh"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_pages_load_their_assets_from_the_app(client: httpx.AsyncClient, page: str) -> None:
    response = await client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    urls = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert urls and all(url.startswith("/docs/assets/") for url in urls), urls
    assert "fonts.googleapis.com" not in response.text and "cdn.jsdelivr.net" not in response.text
    for url in urls:
        asset = await client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 500, url


async def test_assets_are_served_with_their_types(client: httpx.AsyncClient) -> None:
    kinds = {
        "/docs/assets/swagger-ui/swagger-ui-bundle.js": "javascript",
        "/docs/assets/swagger-ui/swagger-ui.css": "text/css",
        "/docs/assets/redoc/redoc.standalone.js": "javascript",
    }
    for url, kind in kinds.items():
        response = await client.get(url)
        assert response.status_code == 200 and kind in response.headers["content-type"], url
    assert (await client.get("/docs/assets/swagger-ui/nothing.js")).status_code == 404


def test_vendored_versions_are_the_scripts_pins() -> None:
    pins = dict(re.findall(r"^(SWAGGER_UI|REDOC)_VERSION=(\S+)$", SCRIPT.read_text(), re.MULTILINE))
    assert docs_pages.versions() == {"swagger-ui-dist": pins["SWAGGER_UI"], "redoc": pins["REDOC"]}
    bundle = (docs_pages.ASSETS / "swagger-ui" / "swagger-ui-bundle.js").read_text()
    assert pins["SWAGGER_UI"] in bundle  # the bundle names its own version


async def test_oauth2_redirect_page_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs/oauth2-redirect")
    assert response.status_code == 200 and "oauth2" in response.text.lower()
