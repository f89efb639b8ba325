"""The web console at /console: pages rendered on the server from the same domain services the JSON API
uses, and a small script (htmx and console.js, served from static/, no CDN) that calls the JSON API with
the browser session for everything that changes state or streams. The design is in docs/console.md.

    session.py    sign in and out (a password, or the tenant's identity provider), the browser session,
                  who a page is for
    pages.py      a tenant's pages: ask, knowledge bases, upload, documents, passages
    access.py     who reads what: groups, a document's page (metadata, access), readers to pick from
    admin.py      admins' and superadmins' pages: analytics, API keys, users, tenants
    sso.py        an admin's page for the tenant's identity provider
    knowledge_base.py  one knowledge base's page: its name, description and settings, deleting it
    charts.py     analytics as SVG drawn on the server (no chart script)
    rendering.py  templates, security headers, errors as pages
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from ragapi.api.console import access, admin, knowledge_base, pages, session, sso
from ragapi.api.console.rendering import HERE, STATIC_PATH


def install(app: FastAPI) -> None:
    app.include_router(session.router)
    app.include_router(pages.router)
    app.include_router(admin.router)
    app.include_router(access.router)
    app.include_router(sso.router)
    app.include_router(knowledge_base.router)
    app.mount(STATIC_PATH, StaticFiles(directory=HERE / "static"), name="console-static")
