"""In-process LRU store capped in entries and bytes, with a per-entry TTL: the default cache.

Values (a persona's history views) range from a few kB to several MB, so an entry cap alone
bounds nothing: the byte cap counts each entry's key, value and bookkeeping
(`service.core.lru.sizeof`), and a value larger than the whole budget is not kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from cachetools import TLRUCache

from service.core.lru import ENTRY_OVERHEAD, sizeof
from service.engine.cache import Store

Entry = tuple[bytes, float, int]  # value, expiry time, bytes counted


def _expires(_key: str, entry: Entry, _now: float) -> float:
    return entry[1]


def _size(entry: Entry) -> int:
    return entry[2]


class MemoryStore(Store):
    name = "memory"

    def __init__(
        self,
        max_entries: int = 10_000,
        max_bytes: int = 256 << 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Each entry carries its own expiry time; cachetools evicts expired, then least recent.
        self._data: TLRUCache[str, Entry] = TLRUCache(
            maxsize=max(max_bytes, 1), ttu=_expires, timer=clock, getsizeof=_size
        )
        self._clock = clock
        self.max_entries = max_entries
        self.max_bytes = max_bytes

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        out: list[bytes | None] = []
        for key in keys:
            entry = self._data.get(key)
            out.append(None if entry is None else entry[0])
        return out

    async def set_many(self, items: dict[str, bytes], ttl_s: float | None) -> None:
        if self.max_entries <= 0 or self.max_bytes <= 0:
            return
        expiry = float("inf") if ttl_s is None else self._clock() + ttl_s
        for key, value in items.items():
            size = sizeof(key) + sizeof(value) + ENTRY_OVERHEAD
            if size > self.max_bytes:
                self._data.pop(key, None)  # too large to keep: not even its older value
                continue
            self._data[key] = (value, expiry, size)
            while len(self._data) > self.max_entries:
                self._data.popitem()

    async def delete_prefix(self, prefix: str) -> int:
        doomed = [k for k in list(self._data.keys()) if k.startswith(prefix)]
        for k in doomed:
            self._data.pop(k, None)
        return len(doomed)

    @property
    def nbytes(self) -> int:
        """Bytes held, as counted against `max_bytes` (expired entries until they are evicted)."""
        return int(self._data.currsize)

    def __len__(self) -> int:
        return len(self._data)
