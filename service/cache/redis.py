"""Redis store (`redis.asyncio`): shared by gateway replicas, survives their restarts.

Every Redis error is counted and turns into a miss; after one, the store stays away for a
backoff that doubles up to a cap (so a dead Redis costs no request a timeout each), then tries
again and the client reconnects on its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from service.core.metrics import Metrics
from service.core.redis import REDIS_DOWN, connect
from service.engine.cache import Store, StoreError

log = logging.getLogger("pgenrm.cache")


class RedisStore(Store):
    name = "redis"
    shared = True

    def __init__(
        self,
        url: str,
        metrics: Metrics | None = None,
        *,
        timeout_s: float = 0.25,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        self._redis = connect(url, timeout_s)
        self._metrics = metrics
        self._backoff_base = backoff_s
        self._backoff_max = backoff_max_s
        self._backoff = backoff_s
        self._down_until = 0.0

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, op: str, error: Exception) -> None:
        if self._metrics is not None:
            self._metrics.cache_errors.labels(store=self.name, op=op).inc()
        if self.available:
            log.warning(
                "redis %s failed (%s); bypassing the cache for %.1fs", op, error, self._backoff
            )
        self._down_until = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self._backoff_max)

    def _ok(self) -> None:
        self._backoff = self._backoff_base

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        if not self.available:
            raise StoreError("redis is backing off after an error")
        try:
            values = await self._redis.mget(list(keys))
        except REDIS_DOWN as error:
            self._failed("get", error)
            raise StoreError(str(error)) from error
        self._ok()
        return [v if isinstance(v, bytes) else None for v in values]

    async def set_many(self, items: dict[str, bytes], ttl_s: float | None) -> None:
        if not items or not self.available:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    pipe.set(key, value, px=None if ttl_s is None else max(1, int(ttl_s * 1000)))
                await pipe.execute()
        except REDIS_DOWN as error:
            self._failed("set", error)
            return
        self._ok()

    async def delete_prefix(self, prefix: str) -> int:
        """SCAN for the keys (never KEYS, which blocks Redis) and UNLINK them in chunks."""
        deleted = 0
        try:
            chunk: list[bytes] = []
            async for found in self._redis.scan_iter(match=prefix + "*", count=1000):
                chunk.append(found)
                if len(chunk) >= 500:
                    deleted += await self._redis.unlink(*chunk)
                    chunk = []
            if chunk:
                deleted += await self._redis.unlink(*chunk)
        except REDIS_DOWN as error:
            self._failed("delete", error)
        return deleted

    async def close(self) -> None:
        await self._redis.aclose()
