"""Single sign-on in the console, in Debian's Chromium, against the session's real OpenID Connect provider
(tests/oidc, node-oidc-provider): an admin sets the tenant's identity provider on its page (the secret
written, never shown, kept when other settings change); a person names the tenant on the sign-in page,
signs in at the provider and lands in the console with a browser session, then signs out; an address of
a domain the tenant does not admit is told why on the sign-in page; another tenant sees none of it."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Page, expect

from tests.api.console.conftest import ConsoleServer, assert_accessible
from tests.api.helpers import assert_problem
from tests.services import OidcProvider


def _at_the_provider(page: Page, login: str) -> None:
    """The provider's own sign-in form (any password), then its consent page."""
    page.locator('input[name="login"]').fill(login)
    page.locator('input[name="password"]').fill("any")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()


def _set_up(page: Page, idp: OidcProvider, client_id: str, secret: str) -> None:
    page.get_by_label("Issuer URL").fill(idp.issuer)
    page.get_by_label("Client id").fill(client_id)
    page.get_by_label("Client secret").fill(secret)
    page.get_by_label("Allowed e-mail domains").fill("acme.test")
    page.get_by_label("Scopes").fill("openid email profile groups")
    page.get_by_label("Groups claim").fill("groups")
    page.get_by_label("Role of a new user").select_option("member")
    with page.expect_navigation():  # saved: the page shows the stored settings
        page.get_by_role("button", name="Save", exact=True).click()


def test_an_admin_sets_the_provider_and_people_sign_in_through_it(  # type: ignore[no-untyped-def]
    console_server: ConsoleServer, open_console, idp: OidcProvider
) -> None:
    name = f"sso-{uuid.uuid4().hex[:8]}"
    admin = console_server.new_tenant(name)
    assert admin.api_key is not None
    key = {"X-API-Key": admin.api_key}
    redirect = f"{console_server.url}/v1/auth/oidc/{admin.tenant_id}/callback"
    client_id, secret = idp.register(redirect)
    page, watched = open_console(admin)

    page.get_by_role("link", name="Single sign-on").click()
    expect(page.get_by_label("Redirect URI to register")).to_have_value(redirect)
    assert_accessible(page)
    _set_up(page, idp, client_id, secret)
    expect(page.get_by_text("A secret is stored")).to_be_visible()
    expect(page.get_by_label("Client secret")).to_have_value("")
    assert secret not in page.content()
    link = page.get_by_label("Sign-in link for your people").input_value()
    assert link == f"{console_server.url}/console/login?tenant={admin.tenant_id}"
    assert_accessible(page)

    # Another setting changed, the secret left empty: the stored one stays (the sign-in below needs it).
    page.get_by_label("Allowed e-mail domains").fill("acme.test\nexample.org")
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    stored = httpx.get(console_server.url + "/v1/identity-provider", headers=key, timeout=30).json()
    assert stored["client_secret_set"] is True and stored["allowed_domains"] == ["acme.test", "example.org"]
    assert stored["issuer"] == idp.issuer and stored["groups_claim"] == "groups" and stored["default_role"] == "member"

    person, person_watched = open_console(None)
    person.goto("/console/login")
    person.get_by_label("Your tenant").fill(name.upper())  # names are matched in any case
    person.get_by_role("button", name="Continue").click()
    expect(person.get_by_role("region", name="Single sign-on")).to_contain_text(f"{name} signs in through")
    assert_accessible(person)
    person.get_by_role("link", name=f"Sign in with {urlsplit(idp.issuer).netloc}").click()
    login = f"ann-{uuid.uuid4().hex[:8]}@acme.test"
    with person.expect_response(lambda r: "/callback?" in r.url) as callback:
        _at_the_provider(person, login)
    assert callback.value.status == 303 and callback.value.headers["location"] == "/console"  # a fixed path
    person.wait_for_url(f"{console_server.url}/console/ask")
    cookies = {c["name"]: c for c in person.context.cookies()}
    assert cookies["ragapi_session"]["httpOnly"] and cookies["ragapi_refresh"]["httpOnly"]
    expect(person.get_by_role("navigation", name="Console")).to_contain_text("Upload")  # a member
    expect(person.get_by_role("navigation", name="Console")).not_to_contain_text("Groups")
    listed = httpx.get(console_server.url + "/v1/users", headers=key, timeout=30).json()
    created = next(u for u in listed if u["email"] == login)  # by the first sign-in, with the default role
    assert created["role"] == "member"

    person.get_by_role("button", name="Sign out").click()
    person.wait_for_url("**/console/login")
    assert "ragapi_session" not in {c["name"] for c in person.context.cookies()}
    person.goto("/console/ask")
    expect(person).to_have_url(f"{console_server.url}/console/login?next=/console/ask")
    person_watched.check()

    # The tenant's sign-in link offers the provider at once; a domain it does not admit is told why.
    eve, eve_watched = open_console(None)
    eve.goto(link)
    eve.get_by_role("link", name=f"Sign in with {urlsplit(idp.issuer).netloc}").click()
    eve_watched.allow("status of 403")
    _at_the_provider(eve, f"eve-{uuid.uuid4().hex[:8]}@evil.test")
    expect(eve.get_by_role("alert")).to_contain_text(
        "Single sign-on failed: e-mail addresses of evil.test may not sign in to this tenant"
    )
    assert "ragapi_session" not in {c["name"] for c in eve.context.cookies()}
    eve_watched.check()

    stranger = console_server.new_tenant(f"sso-stranger-{uuid.uuid4().hex[:8]}")
    other, _ = open_console(stranger)
    other.get_by_role("link", name="Single sign-on").click()
    expect(other.get_by_role("heading", name="Set up an identity provider")).to_be_visible()
    expect(other.get_by_label("Issuer URL")).to_have_value("")
    watched.check()


def test_the_sign_in_page_offers_no_provider_it_cannot_name(  # type: ignore[no-untyped-def]
    console_server: ConsoleServer, open_console, idp: OidcProvider
) -> None:
    twin = f"sso-twin-{uuid.uuid4().hex[:8]}"
    first, second = console_server.new_tenant(twin), console_server.new_tenant(twin)
    for tenant in (first, second):  # both with a provider: the name alone cannot say which
        assert tenant.api_key is not None
        client_id, secret = idp.register(f"{console_server.url}/v1/auth/oidc/{tenant.tenant_id}/callback")
        put = httpx.put(
            console_server.url + "/v1/identity-provider",
            json={"issuer": idp.issuer, "client_id": client_id, "client_secret": secret},
            headers={"X-API-Key": tenant.api_key},
            timeout=30,
        )
        assert put.status_code == 200, put.text
    page, _ = open_console(None)
    for named in ("no-such-tenant", twin, str(uuid.uuid4())):
        page.goto("/console/login")
        page.get_by_label("Your tenant").fill(named)
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("alert")).to_have_text(
            f"No single sign-on is set up for “{named}”: ask your admin for your tenant's sign-in link."
        )
        expect(page.get_by_role("link", name="Sign in with")).to_have_count(0)
    page.goto(f"/console/login?tenant={second.tenant_id}")  # its sign-in link names it by id
    expect(page.get_by_role("link", name=f"Sign in with {urlsplit(idp.issuer).netloc}")).to_be_visible()


def test_a_console_sign_in_names_no_url_to_return_to(console_server: ConsoleServer) -> None:
    admin = console_server.new_tenant("sso-redirect")
    start = f"{console_server.url}/v1/auth/oidc/{admin.tenant_id}/login"
    refused = httpx.get(start, params={"destination": "https://evil.example/"}, timeout=30)
    assert_problem(refused, 422)
    # A tenant without a provider, started from the console: a browser gets the sign-in page saying so (no
    # JSON for people), a client that does not ask for HTML the problem.
    browsing = {"Accept": "text/html,application/xhtml+xml"}
    page = httpx.get(start, params={"destination": "console"}, headers=browsing, timeout=30)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Single sign-on failed: no identity provider is configured for this tenant" in page.text
    assert_problem(httpx.get(start, params={"destination": "console"}, timeout=30), 404)
    api = httpx.get(start, timeout=30)  # an API client's start: a problem, as before
    assert_problem(api, 404)
