"""Browser sessions over real HTTP: the sign-in form's cookies, the API accepting them with the CSRF token
(and refusing a state change without it), sign-out ending the session, no open redirect."""

from __future__ import annotations

import re
from contextlib import closing

import httpx

from tests.api.console.conftest import ConsoleServer


def _signed_in(server: ConsoleServer, email: str, password: str) -> tuple[httpx.Client, httpx.Response]:
    client = httpx.Client(base_url=server.url, timeout=30)
    form = client.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    response = client.post(
        "/console/login", data={"username": email, "password": password, "csrf_token": token.group(1)}
    )
    return client, response


def _csrf(client: httpx.Client, page: str = "/console/knowledge-bases") -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', client.get(page).text)
    assert found is not None
    return found.group(1)


def test_sign_in_sets_http_only_cookies_and_the_api_needs_the_csrf_token(console_server: ConsoleServer) -> None:
    admin = console_server.new_tenant("session-tenant")
    client, response = _signed_in(console_server, admin.email, admin.password)
    with closing(client):
        assert response.status_code == 303 and response.headers["location"] == "/console"
        cookies = response.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith("ragapi_session="))
        refresh = next(c for c in cookies if c.startswith("ragapi_refresh="))
        assert "HttpOnly" in session and "SameSite=lax" in session and "Path=/;" in session
        assert "HttpOnly" in refresh and "SameSite=strict" in refresh and "Path=/console" in refresh
        assert "Secure" not in session  # plain http to a loopback address: browsers would drop a Secure cookie

        assert client.get("/v1/knowledge-bases").status_code == 200  # reading needs the cookie only
        body = {"name": "via-cookie"}
        refused = client.post("/v1/knowledge-bases", json=body)
        assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
        wrong = client.post("/v1/knowledge-bases", json=body, headers={"X-CSRF-Token": "x" * 43})
        assert wrong.status_code == 403
        created = client.post("/v1/knowledge-bases", json=body, headers={"X-CSRF-Token": _csrf(client)})
        assert created.status_code == 201, created.text


def test_a_wrong_password_or_a_forged_form_signs_nobody_in(console_server: ConsoleServer) -> None:
    admin = console_server.new_tenant("wrong-password")
    client, response = _signed_in(console_server, admin.email, "not the password at all")
    with closing(client):
        assert response.status_code == 401 and "Wrong e-mail or password" in response.text
        assert "ragapi_session" not in client.cookies
    with httpx.Client(base_url=console_server.url, timeout=30) as forged:  # no form cookie: another site's form
        data = {"username": admin.email, "password": admin.password, "csrf_token": "guessed"}
        response = forged.post("/console/login", data=data)
        assert response.status_code == 403 and "ragapi_session" not in forged.cookies


def test_sign_out_ends_the_session_everywhere(console_server: ConsoleServer) -> None:
    admin = console_server.new_tenant("sign-out")
    client, _ = _signed_in(console_server, admin.email, admin.password)
    with closing(client):
        access = client.cookies["ragapi_session"]
        token = _csrf(client)
        assert client.post("/console/logout", data={"csrf_token": "forged"}).status_code == 403
        out = client.post("/console/logout", data={"csrf_token": token})
        assert out.status_code == 303 and out.headers["location"] == "/console/login"
        assert "ragapi_session" not in client.cookies
        # the token the cookie held is dead for the API too
        again = httpx.get(console_server.url + "/v1/knowledge-bases", headers={"Authorization": f"Bearer {access}"})
        assert again.status_code == 401
        assert client.get("/console/knowledge-bases").headers["location"].startswith("/console/login")


def test_the_session_refreshes_and_sign_in_never_redirects_off_the_console(console_server: ConsoleServer) -> None:
    admin = console_server.new_tenant("refresh")
    client = httpx.Client(base_url=console_server.url, timeout=30)
    with closing(client):
        form = client.get("/console/login", params={"next": "https://evil.example/steal"})
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None and 'name="next" value="/console"' in form.text
        data = {"username": admin.email, "password": admin.password, "csrf_token": token.group(1)}
        response = client.post("/console/login", data={**data, "next": "//evil.example/"})
        assert response.headers["location"] == "/console"
        csrf = _csrf(client)
        assert client.post("/console/session/refresh").status_code == 403  # no CSRF token
        old = client.cookies["ragapi_session"]
        refreshed = client.post("/console/session/refresh", headers={"X-CSRF-Token": csrf})
        assert refreshed.status_code == 204 and client.cookies["ragapi_session"] != old
        assert _csrf(client) == csrf  # the same login session: the same CSRF token
