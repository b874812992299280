"""What the service caches, on one store: personas, profiles and text embeddings.

- persona: the embedded backend's per-history evidence (the history answers' feature views),
  keyed by (owner, history fingerprint, prompt template version, backend model);
- profile: the user's profile embedding for prototype retrieval, under the same key parts;
- embedding: sentence embeddings of texts (Redis only: in process, the embedder's own LRU is
  that cache).
Lookups count hits, misses and errors; any store error is a miss, never a failed request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from service.cache.base import Store, StoreError
from service.cache.memory import MemoryStore
from service.metrics import Metrics

FORMAT = "v1"  # bump when a cached value's layout changes


def key(kind: str, *parts: str) -> str:
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()
    return f"pgenrm:{FORMAT}:{kind}:{digest}"


class Caches:
    def __init__(
        self, store: Store, metrics: Metrics | None = None, ttl_s: float | None = 3600.0
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.ttl_s = ttl_s

    @property
    def shared(self) -> bool:
        """A store other processes see (worth caching embeddings in)."""
        return not isinstance(self.store, MemoryStore)

    def count(self, cache: str, result: str, n: int = 1, *, store: str | None = None) -> None:
        if self.metrics is not None and n:
            where = store or self.store.name
            self.metrics.cache_requests.labels(cache=cache, store=where, result=result).inc(n)

    async def lookup(self, cache: str, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        try:
            values = await self.store.get_many(keys)
        except StoreError:
            self.count(cache, "error", len(keys))
            return [None] * len(keys)
        hits = sum(v is not None for v in values)
        self.count(cache, "hit", hits)
        self.count(cache, "miss", len(values) - hits)
        return values

    async def remember(self, items: dict[str, bytes]) -> None:
        if items:
            await self.store.set_many(items, self.ttl_s)

    async def close(self) -> None:
        await self.store.close()
