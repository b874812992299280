"""The cache seam: a bytes key-value `Store` with TTL, and `Caches`, what the service keeps on it.

What is cached, on one store:
- persona: the embedded backend's per-history evidence (the history answers' feature views),
  keyed by (owner, history fingerprint, prompt template version, backend model);
- profile: the user's profile embedding for prototype retrieval, under the same key parts;
- embedding: sentence embeddings of texts (shared stores only: in process, the embedder's own
  LRU is that cache).

A store may lose entries or fail at any time; lookups count hits, misses and errors, and any
store error is a miss, so caching can make requests faster but never changes a result or fails
a request. The stores themselves (in-process, Redis) live in `service.cache`.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence

from service.core.metrics import Metrics

FORMAT = "v1"  # bump when a cached value's layout changes


class StoreError(Exception):
    """The store could not answer (already counted by the store); the caller treats it as a miss."""


class Store(ABC):
    name: str  # "memory" or "redis": the `store` label of the cache metrics
    shared: bool = False  # other processes see it (worth caching embeddings in)

    @abstractmethod
    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Values in key order, None for a miss; raises StoreError when it cannot answer."""

    @abstractmethod
    async def set_many(self, items: dict[str, bytes], ttl_s: float | None) -> None:
        """Store the values; errors are counted and swallowed."""

    @abstractmethod
    async def delete_prefix(self, prefix: str) -> int:
        """Drop every key starting with `prefix`; returns how many (errors count and give 0)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def _digest(*parts: str) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


def key(kind: str, *parts: str) -> str:
    return f"pgenrm:{FORMAT}:{kind}:{_digest(*parts)}"


def user_prefix(kind: str, user_id: str) -> str:
    """Where one user's entries of this kind live, so that forgetting the user can find them."""
    return f"pgenrm:{FORMAT}:{kind}:u{_digest(user_id)}:"


def user_key(kind: str, user_id: str, *parts: str) -> str:
    return user_prefix(kind, user_id) + _digest(*parts)


# The kinds derived from one user's own history (text embeddings are per text, not per user).
USER_KINDS = ("persona", "profile")


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
        return self.store.shared

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

    async def forget(self, user_id: str) -> int:
        """Drop what was cached from this user's history (on `DELETE /v1/users/{id}`)."""
        return sum([await self.store.delete_prefix(user_prefix(k, user_id)) for k in USER_KINDS])

    async def close(self) -> None:
        await self.store.close()
