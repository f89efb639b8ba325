"""/docs (Swagger UI) and /redoc (ReDoc) from assets the app serves itself, at /docs/assets: the pages
work without internet access (FastAPI's defaults load them from a CDN, and ReDoc's fonts from Google).

The assets are vendored from the npm registry at pinned versions, checked against their sha256, by
scripts/vendor-docs-assets.sh; docs_assets/VERSIONS says which.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(__file__).parent / "docs_assets"
ASSETS_URL = "/docs/assets"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
SWAGGER_PARAMETERS = {
    "validatorUrl": None,  # no call to swagger.io's online validator
    "docExpansion": "list",
    "persistAuthorization": True,  # a key entered once in "Authorize" survives a reload
}


def versions() -> dict[str, str]:
    """The vendored packages and their versions, as the vendoring script recorded them."""
    lines = (ASSETS / "VERSIONS").read_text().split("\n")
    return dict(line.split(" ", 1) for line in lines if line.strip())


def install(app: FastAPI) -> None:
    """Serve the assets and the two pages; the app is created with docs_url and redoc_url set to None."""
    title = app.title
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")

    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{title}: Swagger UI",
            oauth2_redirect_url=OAUTH2_REDIRECT_URL,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/swagger-ui/favicon-32x32.png",
            swagger_ui_parameters=SWAGGER_PARAMETERS,
        )

    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{title}: ReDoc",
            redoc_js_url=f"{ASSETS_URL}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/swagger-ui/favicon-32x32.png",
            with_google_fonts=False,
        )

    app.add_api_route("/docs", swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_api_route(OAUTH2_REDIRECT_URL, oauth2_redirect, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc, methods=["GET"], include_in_schema=False)
