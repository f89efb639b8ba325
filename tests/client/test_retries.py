"""Retries against a real rate limit: a key allowed a few requests a minute meets 429s with Retry-After."""

from __future__ import annotations

import time

import httpx
import pytest

from ragapi.client import Client, RateLimited, RetryPolicy
from tests.conftest import Served

pytestmark = pytest.mark.slow


def limited_key(served: Served, per_minute: int) -> str:
    with Client(served.url, api_key=served.tenant("sdk-retries").api_key) as admin:
        return admin.create_api_key("limited", ["query"], rate_limit_per_minute=per_minute).api_key


def spend(client: Client, limit: int) -> RateLimited:
    """Use up the key's burst; the refusal that ends it."""
    for _ in range(limit + 1):
        try:
            client.knowledge_bases()
        except RateLimited as exc:
            return exc
    raise AssertionError("the limit never refused")


def test_a_429_is_waited_out_as_retry_after_says(served: Served) -> None:
    key = limited_key(served, per_minute=30)  # a burst of 30, then one request every 2 s
    with Client(served.url, api_key=key, retry=RetryPolicy(max_retries=0)) as once:
        refused = spend(once, 30)
    assert refused.status == 429 and refused.title == "Too many requests"
    assert refused.retry_after_s is not None and 1 <= refused.retry_after_s <= 3
    assert refused.headers["ratelimit-limit"] == "30"

    with Client(served.url, api_key=key, retry=RetryPolicy(max_retries=3)) as patient:
        started = time.monotonic()
        answer = patient.query("anything at all")  # a POST: a 429 is refused before any work, so it is retried
        waited = time.monotonic() - started
    assert answer.citations == [] and waited >= 1.0


def test_a_retry_after_beyond_the_policy_is_raised_at_once(served: Served) -> None:
    key = limited_key(served, per_minute=2)  # one request every 30 s after the burst
    with Client(served.url, api_key=key, retry=RetryPolicy(max_retries=5, max_retry_after_s=5)) as client:
        started = time.monotonic()
        refused = spend(client, 2)
        assert time.monotonic() - started < 5
    assert refused.retry_after_s is not None and refused.retry_after_s > 5


def test_the_policy_retries_only_what_is_safe() -> None:
    policy = RetryPolicy(max_retries=2, backoff_s=0.1, max_retry_after_s=10, jitter_s=0)

    def response(status: int, **headers: str) -> httpx.Response:
        return httpx.Response(status, headers=headers)

    assert policy.delay(0, "POST", response(429, **{"Retry-After": "3"}), None) == 3
    assert policy.delay(0, "POST", response(503, **{"Retry-After": "3"}), None) is None  # may have run
    assert policy.delay(0, "GET", response(503, **{"Retry-After": "3"}), None) == 3
    assert policy.delay(0, "GET", response(429, **{"Retry-After": "60"}), None) is None  # beyond the policy
    assert policy.delay(0, "GET", response(500), None) is None
    assert policy.delay(2, "GET", response(503), None) is None  # retries spent
    backoff = policy.delay(1, "GET", response(502), None)
    assert backoff is not None and 0 <= backoff <= 0.2
    connect = httpx.ConnectError("refused")
    assert policy.delay(0, "POST", None, connect) is not None  # nothing was sent
    assert policy.delay(0, "POST", None, httpx.ReadError("reset")) is None
    assert policy.delay(0, "DELETE", None, httpx.ReadError("reset")) is not None


def test_an_unreachable_service_is_a_connection_error_after_the_retries() -> None:
    from ragapi.client import ConnectionFailed
    from tests.services import free_port

    with (
        Client(
            f"http://127.0.0.1:{free_port()}", api_key="rag_x", retry=RetryPolicy(max_retries=2, backoff_s=0.01)
        ) as c,
        pytest.raises(ConnectionFailed),
    ):
        c.knowledge_bases()
