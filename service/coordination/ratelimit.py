"""Per-key request rates and cost budgets, shared through Redis when configured.

Both are sliding-window counters from the `limits` library: with Redis every worker process and
replica spends from the same window, so a key's budget does not grow with the number of
gateways; without it each process counts alone. When Redis stops answering, the limiter keeps
counting in this process (fail over, never fail open or closed) until Redis answers again.

Concurrent expensive calls are bounded per process: they hold this process's CPU, which is what
the bound protects.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from redis.asyncio import Redis

from service.core.errors import TooManyRequests
from service.core.redis import REDIS_DOWN, connect

log = logging.getLogger("pgenrm.ratelimit")
_RETRY_REDIS_S = 5.0
_SHARED_DOWN: tuple[type[Exception], ...] = (*REDIS_DOWN, StorageError)


def _rate_item(per_s: float) -> RateLimitItem:
    """`per_s` as a window `limits` can count: per second, or per minute below one a second."""
    if per_s >= 1:
        return RateLimitItemPerSecond(max(1, round(per_s)))
    return RateLimitItemPerMinute(max(1, round(per_s * 60)))


class RateLimiter:
    def __init__(self, shared: Storage | None = None, redis: Redis | None = None) -> None:
        self._local = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._shared = SlidingWindowCounterRateLimiter(shared) if shared is not None else None
        self._redis = redis
        self._shared_down_until = 0.0
        self._expensive: dict[str, int] = {}

    @classmethod
    def redis(cls, url: str, timeout_s: float) -> RateLimiter:
        client = connect(url, timeout_s)  # the one Redis seam decides timeouts and retries
        storage = RedisStorage(
            "async+" + url if not url.startswith("async+") else url,
            implementation="redispy",
            key_prefix="pgenrm:limits",
            connection_pool=client.connection_pool,  # type: ignore[arg-type]  # passed on
        )
        return cls(storage, client)

    @property
    def shared(self) -> bool:
        return self._shared is not None

    async def _hit(
        self, item: RateLimitItem, key: str, cost: int, remaining: bool = True
    ) -> tuple[bool, float]:
        """(admitted, remaining) from the shared window, or this process's when Redis is down.
        The second is read only for a refusal with `remaining` (a refusal's message says it),
        else NaN: an admitted call needs no second round trip to the storage."""
        limiter = self._local
        if self._shared is not None and time.monotonic() >= self._shared_down_until:
            try:
                return await self._count(self._shared, item, key, cost, remaining)
            except _SHARED_DOWN as error:
                log.warning("rate limits counted in-process: Redis failed (%s)", error)
                self._shared_down_until = time.monotonic() + _RETRY_REDIS_S
        return await self._count(limiter, item, key, cost, remaining)

    @staticmethod
    async def _count(
        limiter: SlidingWindowCounterRateLimiter,
        item: RateLimitItem,
        key: str,
        cost: int,
        remaining: bool,
    ) -> tuple[bool, float]:
        admitted = await limiter.hit(item, key, cost=cost)
        if admitted or not remaining:
            return admitted, math.nan
        return admitted, (await limiter.get_window_stats(item, key)).remaining

    async def admit(self, key: str, requests_per_s: float) -> None:
        """One request of `key`, or 429 when it is over its request rate."""
        item = _rate_item(requests_per_s)
        admitted, _ = await self._hit(item, f"rate:{key}", 1, remaining=False)
        if not admitted:
            wait = item.get_expiry() / item.amount
            raise TooManyRequests(
                f"this key is over its request rate ({requests_per_s:g}/s)",
                retry_after=math.ceil(wait),
            )

    async def spend(self, key: str, cost: int, per_minute: int) -> None:
        """Spend `cost` units of `key`'s budget, or 429 with the time until enough come back."""
        item = RateLimitItemPerMinute(per_minute)
        admitted, remaining = await self._hit(item, f"cost:{key}", cost)
        if not admitted:
            missing = max(1.0, cost - remaining)
            wait = min(60.0, missing * 60.0 / per_minute)
            raise TooManyRequests(
                f"this key is over its cost budget: the call costs {cost:,} units and "
                f"{int(remaining):,} of {per_minute:,} per minute are left",
                retry_after=math.ceil(wait),
            )

    @contextmanager
    def expensive(self, key: str, limit: int) -> Iterator[None]:
        """Hold one of `key`'s `limit` slots for expensive calls in this process, or 429."""
        running = self._expensive.get(key, 0)
        if running >= limit:
            raise TooManyRequests(
                f"this key already has {running} expensive calls in flight (limit {limit})",
                retry_after=1,
            )
        self._expensive[key] = running + 1
        try:
            yield
        finally:
            left = self._expensive[key] - 1
            if left:
                self._expensive[key] = left
            else:
                del self._expensive[key]  # no entry per idle key: bounded by keys in flight

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
