"""Exact answer cache: keys, and two stores (Redis, or a bounded in-process LRU with TTL).

A key is a hash of everything that can change an answer: tenant, knowledge-base version, normalised
query, retrieval and generation parameters, model and prompt version. Any write to a knowledge base
bumps its version, so no cached answer outlives the documents it cites. Redis failures never fail a
request: the store reports a miss, and after a failure Redis is skipped for a short cool-down instead
of costing a timeout on every request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import unicodedata
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

from ragapi.core.metrics import CACHE_BACKEND_ERRORS

log = logging.getLogger(__name__)

_SPACE = re.compile(r"\s+")


def normalise_query(query: str) -> str:
    text = unicodedata.normalize("NFKC", query).casefold()
    return _SPACE.sub(" ", text).strip().rstrip("?!. ")


def partition_key(tenant_id: uuid.UUID, knowledge_bases: Sequence[Any], params: dict[str, Any]) -> str:
    """The hard partition for both caches: answers are only ever compared within one. `knowledge_bases`:
    what identifies the searched knowledge bases' contents (`CacheScope.key`)."""
    material = json.dumps({"t": str(tenant_id), "v": knowledge_bases, "p": params}, sort_keys=True, default=str)
    return hashlib.sha256(material.encode()).hexdigest()


def exact_key(partition: str, query: str) -> str:
    return "ragapi:answer:" + hashlib.sha256(f"{partition}\x00{normalise_query(query)}".encode()).hexdigest()


class ExactCache(Protocol):
    name: str

    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def set(self, key: str, value: dict[str, Any], ttl_s: int) -> None: ...

    async def close(self) -> None: ...


class InProcessCache:
    """Bounded LRU with per-entry expiry; one event loop touches it, so no lock is needed."""

    name = "memory"

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()

    async def get(self, key: str) -> dict[str, Any] | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires, value = item
        if expires < time.monotonic():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return value

    async def set(self, key: str, value: dict[str, Any], ttl_s: int) -> None:
        self._items[key] = (time.monotonic() + ttl_s, value)
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    async def close(self) -> None:
        self._items.clear()


class RedisCache:
    """Shared by every API replica. Errors become misses; a failure pauses Redis use for `cooldown_s`."""

    name = "redis"

    def __init__(self, url: str, timeout_s: float, cooldown_s: float = 5.0) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self.cooldown_s = cooldown_s
        self._down_until = 0.0

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, operation: str, exc: Exception) -> None:
        CACHE_BACKEND_ERRORS.labels(operation).inc()
        self._down_until = time.monotonic() + self.cooldown_s
        log.warning(
            "redis %s failed, bypassing the cache for %.0fs: %s", operation, self.cooldown_s, type(exc).__name__
        )

    async def get(self, key: str) -> dict[str, Any] | None:
        if not self._available():
            return None
        try:
            raw = await self._redis.get(key)
        except Exception as exc:  # redis.RedisError, OSError, TimeoutError: a cache must not fail requests
            self._failed("get", exc)
            return None
        return json.loads(raw) if raw else None

    async def set(self, key: str, value: dict[str, Any], ttl_s: int) -> None:
        if not self._available():
            return
        try:
            await self._redis.set(key, json.dumps(value), ex=ttl_s)
        except Exception as exc:  # see get()
            self._failed("set", exc)

    async def close(self) -> None:
        await self._redis.aclose()
