"""Rate limits as GCRA (the generic cell rate algorithm): a token bucket kept as one timestamp per key.

A limit of `limit` requests per `period_s` allows a burst of `limit` and then refills one request every
`period_s / limit` seconds; the stored value is the "theoretical arrival time" (TAT) of the next request
(Brandt, "Rate limiting, cells and GCRA", and the ATM Forum TM 4.0 spec it comes from). One number per
key means one Redis round trip and no per-request lists.

A request usually meets several limits at once (its tenant, its key or user). They are checked together
and spent only if all allow it, so a refused request costs nothing.

Stores:
 * `InProcessLimiter`: one replica, the embedded default.
 * `RedisLimiter`: shared by every API replica; one Lua script on Redis's own clock (`TIME`), so replica
   clocks never disagree about a bucket.
 * `FailoverLimiter`: Redis first. When Redis errors or exceeds its timeout, limits are enforced by the
   in-process store for a cool-down and Redis is tried again after it. Requests are never failed
   because Redis is down, and abuse stays bounded per replica (the documented fail policy).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ragapi.core.metrics import RATE_LIMIT_BACKEND_ERRORS

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Limit:
    name: str  # what is limited: tenant, principal, ip, login (a metric label, never an identifier)
    key: str
    limit: int
    cost: int = 1  # requests this one counts for (a LangServe batch: one per input)
    period_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Decision:
    name: str
    allowed: bool
    limit: int
    remaining: int
    reset_s: float  # until the bucket is full again
    retry_after_s: float  # until the next request would be allowed; 0 when allowed

    def headers(self) -> dict[str, str]:
        """RateLimit-* as in draft-ietf-httpapi-ratelimit-headers (delta-seconds for the reset)."""
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(math.ceil(self.reset_s)),
        }


CLOCK_SLACK_S = 1e-9  # float rounding in `allow_at`, far below any clock's resolution


def gcra(tat: float, now: float, limit: Limit) -> tuple[float | None, Decision]:
    """One GCRA step: the new TAT (None when refused) and the decision it implies."""
    interval = limit.period_s / limit.limit
    base = max(tat, now)
    new_tat = base + interval * limit.cost
    allow_at = new_tat - limit.period_s
    if allow_at - now > CLOCK_SLACK_S:  # not `now < allow_at`: (now + period) - period can exceed now
        return None, Decision(limit.name, False, limit.limit, 0, base - now, allow_at - now)
    remaining = int((limit.period_s - (new_tat - now)) / interval + 1e-9)
    return new_tat, Decision(limit.name, True, limit.limit, remaining, new_tat - now, 0.0)


def merge(decisions: Sequence[Decision]) -> Decision:
    """The decision to report: the longest refusal, else the limit closest to running out."""
    refused = [d for d in decisions if not d.allowed]
    if refused:
        return max(refused, key=lambda d: d.retry_after_s)
    return min(decisions, key=lambda d: (d.remaining, d.limit))


class Limiter(Protocol):
    async def hit(self, limits: Sequence[Limit]) -> Decision: ...

    async def close(self) -> None: ...


class InProcessLimiter:
    """Buckets in this process (monotonic clock); swept when they grow past `max_keys`."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._tats: dict[str, float] = {}
        self.max_keys = max_keys

    async def hit(self, limits: Sequence[Limit]) -> Decision:
        # No await between reading and writing: atomic on the event loop.
        now = time.monotonic()
        steps = [gcra(self._tats.get(lim.key, 0.0), now, lim) for lim in limits]
        decisions = [d for _, d in steps]
        if all(d.allowed for d in decisions):
            for lim, (new_tat, _) in zip(limits, steps, strict=True):
                assert new_tat is not None  # noqa: S101 - allowed steps carry a TAT
                self._tats[lim.key] = new_tat
            if len(self._tats) > self.max_keys:
                self._tats = {k: v for k, v in self._tats.items() if v > now}
        return merge(decisions)

    async def close(self) -> None:
        self._tats.clear()


# KEYS: bucket keys; ARGV: limit_1, period_1, cost_1, limit_2, period_2, cost_2, ...
# Returns per key: allowed (0/1), remaining, reset seconds, retry-after seconds (as strings: Redis would
# truncate Lua numbers to integers). Buckets are written only when every key allows the request.
_GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local out, tats, all_ok = {}, {}, true
for i = 1, #KEYS do
  local limit, period, cost = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
  local interval = period / limit
  local base = math.max(tonumber(redis.call('GET', KEYS[i]) or '0'), now)
  local tat = base + interval * cost
  local allow_at = tat - period
  if allow_at - now > 1e-9 then
    all_ok = false
    table.insert(out, '0'); table.insert(out, '0')
    table.insert(out, tostring(base - now)); table.insert(out, tostring(allow_at - now))
  else
    tats[i] = tat
    table.insert(out, '1'); table.insert(out, tostring(math.floor((period - (tat - now)) / interval + 1e-9)))
    table.insert(out, tostring(tat - now)); table.insert(out, '0')
  end
end
if all_ok then
  for i = 1, #KEYS do
    redis.call('SET', KEYS[i], string.format('%.6f', tats[i]), 'PX', math.ceil((tats[i] - now) * 1000) + 1000)
  end
end
return out
"""


class RedisLimiter:
    """Buckets in Redis, shared by every replica."""

    PREFIX = "ragapi:rl:"

    def __init__(self, url: str, timeout_s: float) -> None:
        self._redis = Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._script = self._redis.register_script(_GCRA_LUA)

    async def hit(self, limits: Sequence[Limit]) -> Decision:
        keys = [self.PREFIX + lim.key for lim in limits]
        args: list[str] = []
        for lim in limits:
            args += [str(lim.limit), str(lim.period_s), str(lim.cost)]
        raw = [v.decode() if isinstance(v, bytes) else str(v) for v in await self._script(keys=keys, args=args)]
        decisions = [
            Decision(
                lim.name,
                raw[4 * i] == "1",
                lim.limit,
                int(raw[4 * i + 1]),
                float(raw[4 * i + 2]),
                float(raw[4 * i + 3]),
            )  # fmt: skip
            for i, lim in enumerate(limits)
        ]
        return merge(decisions)

    async def close(self) -> None:
        await self._redis.aclose()


class FailoverLimiter:
    """Redis while it answers; in-process limits during a cool-down after it fails or hangs."""

    def __init__(self, primary: RedisLimiter, fallback: InProcessLimiter, timeout_s: float, cooldown_s: float) -> None:
        self.primary = primary
        self.fallback = fallback
        self.timeout_s = timeout_s
        self.cooldown_s = cooldown_s
        self._down_until = 0.0

    @property
    def degraded(self) -> bool:
        return time.monotonic() < self._down_until

    async def hit(self, limits: Sequence[Limit]) -> Decision:
        if not self.degraded:
            try:
                # wait_for bounds a hung Redis even when the socket stays open (e.g. SIGSTOP).
                return await asyncio.wait_for(self.primary.hit(limits), self.timeout_s * 2)
            except (RedisError, OSError, TimeoutError) as exc:
                self._down_until = time.monotonic() + self.cooldown_s
                RATE_LIMIT_BACKEND_ERRORS.inc()
                log.warning(
                    "redis rate limiting failed, using in-process limits for %.0fs: %s",
                    self.cooldown_s,
                    type(exc).__name__,
                )
        return await self.fallback.hit(limits)

    async def close(self) -> None:
        await self.primary.close()
        await self.fallback.close()
