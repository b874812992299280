"""In-process LRU store with a size cap (entries) and a per-entry TTL: the default cache."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from cachetools import TLRUCache

from service.engine.cache import Store


def _expires(_key: str, entry: tuple[bytes, float], _now: float) -> float:
    return entry[1]


class MemoryStore(Store):
    name = "memory"

    def __init__(
        self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        # Each entry carries its own expiry time; cachetools evicts expired, then least recent.
        self._data: TLRUCache[str, tuple[bytes, float]] = TLRUCache(
            maxsize=max_entries, ttu=_expires, timer=clock
        )
        self._clock = clock

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        out: list[bytes | None] = []
        for key in keys:
            entry = self._data.get(key)
            out.append(None if entry is None else entry[0])
        return out

    async def set_many(self, items: dict[str, bytes], ttl_s: float | None) -> None:
        expiry = float("inf") if ttl_s is None else self._clock() + ttl_s
        for key, value in items.items():
            self._data[key] = (value, expiry)

    async def delete_prefix(self, prefix: str) -> int:
        doomed = [k for k in list(self._data.keys()) if k.startswith(prefix)]
        for k in doomed:
            self._data.pop(k, None)
        return len(doomed)

    def __len__(self) -> int:
        return len(self._data)
