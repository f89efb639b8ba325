"""GCRA arithmetic, all-or-nothing limits, and the Redis store with its fail policy against a real
redis-server that is paused (SIGSTOP) and killed mid-run."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from ragapi.core.ratelimit import Decision, FailoverLimiter, InProcessLimiter, Limit, RedisLimiter, gcra, merge
from tests.services import RedisServer, free_port


def test_a_fresh_bucket_allows_a_full_burst_then_refills_one_per_interval() -> None:
    limit = Limit("principal", "k", limit=3, period_s=60)
    tat, now = 0.0, 1000.0
    remaining = []
    for _ in range(3):
        new_tat, decision = gcra(tat, now, limit)
        assert decision.allowed and new_tat is not None
        remaining.append(decision.remaining)
        tat = new_tat
    assert remaining == [2, 1, 0]
    refused_tat, refused = gcra(tat, now, limit)
    assert refused_tat is None and not refused.allowed
    assert refused.retry_after_s == pytest.approx(20.0) and refused.reset_s == pytest.approx(60.0)
    later_tat, later = gcra(tat, now + 20.0, limit)  # one interval later, exactly one request fits
    assert later.allowed and later.remaining == 0 and later_tat is not None
    assert not gcra(later_tat, now + 20.0, limit)[1].allowed


def test_a_first_request_is_never_refused_by_float_rounding() -> None:
    """With one request per period the first one's `allow_at` is (now + 60) - 60, which for this `now`
    is a picosecond above it in floating point: it was refused (seen in CI with a monotonic clock)."""
    now = 1988.0541
    assert (now + 60.0) - 60.0 > now  # the rounding this guards against
    new_tat, decision = gcra(0.0, now, Limit("ip", "k", limit=1, period_s=60))
    assert decision.allowed and new_tat is not None
    assert not gcra(new_tat, now, Limit("ip", "k", limit=1, period_s=60))[1].allowed


def test_headers_follow_the_ratelimit_draft() -> None:
    decision = Decision("tenant", True, 100, 42, 12.2, 0.0)
    assert decision.headers() == {"RateLimit-Limit": "100", "RateLimit-Remaining": "42", "RateLimit-Reset": "13"}


def test_merge_reports_the_longest_refusal_or_the_tightest_limit() -> None:
    loose = Decision("tenant", True, 100, 90, 6, 0)
    tight = Decision("principal", True, 5, 1, 48, 0)
    assert merge([loose, tight]) is tight
    short, long = Decision("a", False, 5, 0, 60, 3), Decision("b", False, 5, 0, 60, 9)
    assert merge([loose, short, long]) is long


async def test_a_refused_request_spends_nothing_from_the_other_limits() -> None:
    limiter = InProcessLimiter()
    tenant = Limit("tenant", "tenant:t", limit=10)
    key = Limit("principal", "key:k", limit=2)
    assert (await limiter.hit([tenant, key])).remaining == 1
    assert (await limiter.hit([tenant, key])).allowed
    refused = await limiter.hit([tenant, key])
    assert not refused.allowed and refused.name == "principal"
    other_key = Limit("principal", "key:other", limit=100)
    # The tenant spent 2 of 10, not 3: the refused request took nothing.
    assert (await limiter.hit([tenant, other_key])).remaining == 7 - 0  # tenant 7 left < other key's 99


@pytest.fixture
def own_redis(tmp_path: Path):  # type: ignore[no-untyped-def]
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server._process is not None and server._process.poll() is None:
        os.kill(server._process.pid, signal.SIGCONT)
    server.stop()


async def test_redis_limits_match_the_in_process_ones(own_redis: RedisServer) -> None:
    limiter = RedisLimiter(own_redis.url, timeout_s=1.0)
    try:
        limits = [Limit("tenant", "tenant:r", 5), Limit("principal", "key:r", 3)]
        decisions = [await limiter.hit(limits) for _ in range(4)]
        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
        assert decisions[3].name == "principal" and 0 < decisions[3].retry_after_s <= 20.0
        # Nothing spent on the tenant by the refusal: 5 - 3 = 2 left.
        assert (await limiter.hit([Limit("tenant", "tenant:r", 5)])).remaining == 1
    finally:
        await limiter.close()


async def test_redis_paused_then_killed_never_fails_a_request(own_redis: RedisServer) -> None:
    """Fail policy: a hung or dead Redis costs one timeout, then in-process limits hold for the cool-down;
    shared limits come back when Redis does."""
    assert own_redis._process is not None
    limiter = FailoverLimiter(RedisLimiter(own_redis.url, 0.2), InProcessLimiter(), timeout_s=0.2, cooldown_s=0.5)
    limit = [Limit("principal", "key:f", 3)]
    try:
        assert (await limiter.hit(limit)).remaining == 2  # via Redis
        os.kill(own_redis._process.pid, signal.SIGSTOP)
        started = asyncio.get_running_loop().time()
        paused = [await limiter.hit(limit) for _ in range(4)]
        assert asyncio.get_running_loop().time() - started < 2.0  # one timeout, not one per request
        assert limiter.degraded
        assert [d.allowed for d in paused] == [True, True, True, False]  # still limited, locally
        os.kill(own_redis._process.pid, signal.SIGCONT)
        await asyncio.sleep(0.6)
        back = await limiter.hit(limit)  # Redis again: its bucket still holds the first request
        # (and perhaps the one that timed out: Redis ran it from its socket buffer when it resumed)
        assert back.allowed and back.remaining in (0, 1) and not limiter.degraded
        own_redis._process.kill()
        own_redis._process.wait()
        dead = [await limiter.hit([Limit("principal", "key:g", 2)]) for _ in range(3)]
        assert [d.allowed for d in dead] == [True, True, False] and limiter.degraded
    finally:
        await limiter.close()


async def test_unreachable_redis_degrades_to_local_limits() -> None:
    limiter = FailoverLimiter(
        RedisLimiter(f"redis://127.0.0.1:{free_port()}/0", 0.2), InProcessLimiter(), timeout_s=0.2, cooldown_s=5
    )
    try:
        assert (await limiter.hit([Limit("ip", "ip:x", 1)])).allowed
        assert not (await limiter.hit([Limit("ip", "ip:x", 1)])).allowed
    finally:
        await limiter.close()
