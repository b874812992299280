"""The cache seam: a bytes key-value store with TTL, in-process or Redis.

A cache may lose entries or fail at any time; callers treat every error as a miss, so caching
can make requests faster but never changes a result or fails a request.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence


class StoreError(Exception):
    """The store could not answer (already counted by the store); the caller treats it as a miss."""


class Store(ABC):
    name: str  # "memory" or "redis": the `store` label of the cache metrics

    @abstractmethod
    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Values in key order, None for a miss; raises StoreError when it cannot answer."""

    @abstractmethod
    async def set_many(self, items: dict[str, bytes], ttl_s: float | None) -> None:
        """Store the values; errors are counted and swallowed."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
