"""Browser-session cookies: Secure unless plain http to a loopback address, or as SESSION_COOKIE_SECURE
says; the CSRF token bound to the login session."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from starlette.requests import Request

from ragapi.api.cookies import csrf_matches, csrf_token, secure_cookies
from tests.conftest import make_settings


def _request(url: str) -> Request:
    scheme, rest = url.split("://")
    host = rest.split("/")[0]
    headers = [(b"host", host.encode())]
    return Request({"type": "http", "scheme": scheme, "server": None, "path": "/", "headers": headers})


@pytest.mark.parametrize(
    ("url", "secure"),
    [
        ("http://127.0.0.1:8000", False),
        ("http://localhost:8000", False),
        ("http://[::1]:8000", False),
        ("https://127.0.0.1", True),
        ("http://ragapi.example.com", True),
        ("http://10.0.0.5:8000", True),
    ],
)
def test_cookies_are_secure_except_over_plain_http_to_loopback(tmp_path: Path, url: str, secure: bool) -> None:
    assert secure_cookies(make_settings(tmp_path), _request(url)) is secure
    assert secure_cookies(make_settings(tmp_path, session_cookie_secure=True), _request(url)) is True
    assert secure_cookies(make_settings(tmp_path, session_cookie_secure=False), _request(url)) is False


def test_the_csrf_token_belongs_to_one_session_and_one_key() -> None:
    session, other = uuid.uuid4(), uuid.uuid4()
    token = csrf_token("key-one", session)
    assert csrf_matches("key-one", session, token)
    assert not csrf_matches("key-one", other, token)
    assert not csrf_matches("key-two", session, token)
    assert not csrf_matches("key-one", session, "")
    assert not csrf_matches("key-one", None, token)
