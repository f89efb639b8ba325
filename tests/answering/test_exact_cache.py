"""Exact-cache keys and both stores; Redis is a real server started by the tests."""

from __future__ import annotations

import time
import uuid

from ragapi.answering.exact_cache import InProcessCache, RedisCache, exact_key, normalise_query, partition_key
from tests.services import RedisServer, free_port


def test_normalisation_ignores_case_spacing_and_final_punctuation() -> None:
    assert normalise_query("  What is  the Refund window?? ") == "what is the refund window"
    assert normalise_query("ＡＢＣ") == "abc"  # NFKC folds full-width letters


def test_keys_separate_everything_that_changes_an_answer() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    params = {"top_k": 5, "filters": {}}
    base = partition_key(a, [("kb", "", 3)], params)
    assert exact_key(base, "What is X?") == exact_key(base, "what is x")
    assert partition_key(b, [("kb", "", 3)], params) != base  # tenant
    assert partition_key(a, [("kb", "", 4)], params) != base  # knowledge-base version
    assert partition_key(a, [("kb2", "", 3)], params) != base  # another knowledge base
    assert partition_key(a, [("kb", "", 3)], {"top_k": 6, "filters": {}}) != base  # parameters
    assert exact_key(base, "what is y") != exact_key(base, "what is x")


async def test_in_process_cache_is_a_bounded_lru_with_ttl() -> None:
    cache = InProcessCache(max_entries=2)
    await cache.set("a", {"v": 1}, 60)
    await cache.set("b", {"v": 2}, 60)
    assert await cache.get("a") == {"v": 1}  # a is now most recent
    await cache.set("c", {"v": 3}, 60)
    assert await cache.get("b") is None and await cache.get("a") == {"v": 1}
    await cache.set("gone", {"v": 4}, 0)
    assert await cache.get("gone") is None


async def test_redis_cache_round_trip_with_ttl(redis_server: RedisServer) -> None:
    cache = RedisCache(redis_server.url, timeout_s=1.0)
    key = f"test:{uuid.uuid4()}"
    await cache.set(key, {"answer": "x", "citations": [1]}, 120)
    assert await cache.get(key) == {"answer": "x", "citations": [1]}
    assert 0 < await cache._redis.ttl(key) <= 120
    assert await cache.get("test:absent") is None
    await cache.close()


async def test_redis_down_is_a_fast_miss_then_a_cool_down() -> None:
    cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2, cooldown_s=30)
    started = time.perf_counter()
    assert await cache.get("k") is None
    await cache.set("k", {"v": 1}, 10)  # skipped during the cool-down: no second timeout
    assert await cache.get("k") is None
    assert time.perf_counter() - started < 1.0
    await cache.close()
