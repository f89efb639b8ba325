"""/problems/<type>: the page each problem's `type` names (RFC 9457 section 3.1.1), served by the app
itself: what the problem means and what to do about it. /problems/ lists them all."""

from __future__ import annotations

import html
from http import HTTPStatus

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from ragapi.api.problems import PROBLEMS_PATH, slug
from ragapi.core.errors import NotFound

router = APIRouter(include_in_schema=False)

# title -> (status, what it means and what to do). Every RagApiError's title is here
# (tests/api/test_problem_pages.py checks), and the titles the web layer itself uses.
EXPLAINED: dict[str, tuple[int, str]] = {
    "Sign-in rejected": (
        400,
        "A sign-in through the tenant's identity provider could not go on: its state is unknown, expired or "
        "already used, it was started in another browser, or the provider answered with an error. Start the "
        "sign-in again from the login link.",
    ),
    "ID token rejected": (
        502,
        "The tenant's identity provider answered, but what it sent could not be trusted: an ID token with a "
        "wrong audience or issuer, expired or not yet valid, a bad signature, a wrong nonce, or a groups claim "
        "that is not a list of names. The detail says which; a tenant admin checks the provider's settings.",
    ),
    "Identity provider unavailable": (
        502,
        "The tenant's identity provider could not be reached, or its discovery document, keys or token "
        "endpoint did not answer as OpenID Connect says. Try again later; if it lasts, a tenant admin checks "
        "the issuer URL.",
    ),
    "Unauthenticated": (
        401,
        "The request has no credential, or one that is unknown, expired or revoked. Send an API key as "
        "<code>X-API-Key</code> (or <code>Authorization: Bearer</code>), or a user's access token as "
        "<code>Authorization: Bearer</code>; sign in again if a token has expired.",
    ),
    "Forbidden": (
        403,
        "The credential is valid but may not do this: it lacks the scope or role the route needs, it is "
        "restricted to other knowledge bases, the tenant is suspended, or a browser request came from another "
        "site. The detail says which; ask a tenant admin for a key with the right scope.",
    ),
    "Not found": (
        404,
        "There is no such resource for your tenant. A resource of another tenant answers the same, on "
        "purpose: ids reveal nothing across tenants.",
    ),
    "Conflict": (
        409,
        "The request clashes with the current state: a name or e-mail address already taken, a limit on "
        "how many there may be, a job that has already finished, or an admin deleting their own account. "
        "When it is about one field, the problem's errors member names it.",
    ),
    "Payload too large": (
        413,
        "The body, a file or a document is larger than allowed (MAX_UPLOAD_BYTES, MAX_JSON_BODY_BYTES, the "
        "plan's max_document_bytes). Split it, or ask an operator to raise the limit.",
    ),
    "Unsupported media type": (
        415,
        "The body's content type, or a file's type, is not one the route reads: send JSON or multipart "
        "as the API reference says; files as PDF, DOCX, HTML, Markdown, text or JSON.",
    ),
    "Invalid input": (
        422,
        "The request is well formed but a value cannot be used: the detail names the field "
        "(<code>documents.3.metadata</code>) and the rule; <code>errors</code> lists every field when the "
        "body failed validation.",
    ),
    "Unparseable document": (
        422,
        "A file was read but yielded no text: empty, corrupt, encrypted, or an image without a text layer.",
    ),
    "URL not allowed": (
        422,
        "A URL document was refused before any request: only http and https, to a public address (not "
        "loopback, private, link-local or reserved), without credentials in it; each redirect is held to the "
        "same rules.",
    ),
    "URL could not be fetched": (
        422,
        "A URL document was allowed but fetching it failed: the host did not answer, answered an error, or "
        "sent more than the size limit. The detail says which.",
    ),
    "Lease lost": (
        409,
        "An ingestion worker lost its claim on a job's files to another worker (it stalled past "
        "INGEST_LEASE_S); the other worker finishes them. Seen in job errors only.",
    ),
    "Too many requests": (
        429,
        "A rate limit is spent (of the tenant, the key or user, the client address or the account). Wait "
        "for <code>Retry-After</code> seconds; the <code>RateLimit-*</code> headers show the budget.",
    ),
    "Quota exceeded": (
        429,
        "The tenant's monthly budget of questions or ingested bytes is spent. It renews at the start of "
        "next month; a superadmin can raise the plan's quota.",
    ),
    "Internal error": (
        500,
        "The service failed unexpectedly. Nothing about the cause is sent; quote the <code>request_id</code> "
        "to an operator, who finds it in the logs and traces.",
    ),
    "Upstream provider error": (
        502,
        "A provider the request needed (the LLM, embedding or reranking service) failed or answered "
        "something unusable. Try again; an operator sees the provider's error in the logs.",
    ),
    "Service unavailable": (
        503,
        "A service this request needs (the database, the job broker) is unreachable for now. Try again after "
        "<code>Retry-After</code> seconds.",
    ),
    "Server shutting down": (
        503,
        "This instance is restarting and ended the request or stream. Send it again: another instance, or "
        "this one once restarted, answers.",
    ),
}

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; }}
code {{ background: #f3f4f6; padding: 0 .2rem; }} dt {{ font-weight: 600; margin-top: .8rem; }}</style>
</head><body><main>{body}</main></body></html>
"""


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(PAGE.format(title=html.escape(title), body=body))


def _by_slug() -> dict[str, tuple[str, int, str]]:
    known = {slug(title): (title, status, text) for title, (status, text) in EXPLAINED.items()}
    for status in HTTPStatus:  # the web layer's own refusals (405 Method Not Allowed, ...) are titled so
        if status.value >= 400 and slug(status.phrase) not in known:
            known[slug(status.phrase)] = (status.phrase, status.value, status.description + ".")
    return known


@router.get(PROBLEMS_PATH)
async def index() -> HTMLResponse:
    items = "".join(
        f'<dt><a href="{PROBLEMS_PATH}{slug(title)}">{html.escape(title)}</a> ({status})</dt><dd>{text}</dd>'
        for title, (status, text) in EXPLAINED.items()
    )
    intro = (
        "<p>Every error the API returns is an RFC 9457 problem (<code>application/problem+json</code>) with "
        "<code>type</code>, <code>title</code>, <code>status</code>, <code>detail</code>, <code>instance</code> "
        "and <code>request_id</code>; its <code>type</code> is one of these pages.</p>"
    )
    return _page("Problem types", f"<h1>Problem types</h1>{intro}<dl>{items}</dl>")


@router.get(PROBLEMS_PATH + "{name}")
async def problem_type(name: str) -> HTMLResponse:
    found = _by_slug().get(name)
    if found is None:
        raise NotFound(f"no problem type '{name}': see {PROBLEMS_PATH}")
    title, status, text = found
    body = (
        f"<h1>{html.escape(title)}</h1><p>HTTP status {status}.</p><p>{text}</p>"
        f'<p>The problem\'s <code>detail</code> says what happened in this case. <a href="{PROBLEMS_PATH}">'
        'Every problem type</a> · <a href="/docs">API reference</a></p>'
    )
    return _page(title, body)
