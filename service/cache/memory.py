"""In-process LRU store with a size cap (entries) and a per-entry TTL: the default cache."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from service.cache.base import Store


class MemoryStore(Store):
    name = "memory"

    def __init__(
        self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._data: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        self._max = max_entries
        self._clock = clock

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        now = self._clock()
        out: list[bytes | None] = []
        for key in keys:
            entry = self._data.get(key)
            if entry is None:
                out.append(None)
            elif entry[1] is not None and entry[1] <= now:
                del self._data[key]
                out.append(None)
            else:
                self._data.move_to_end(key)
                out.append(entry[0])
        return out

    async def set_many(self, items: dict[str, bytes], ttl_s: float | None) -> None:
        expiry = None if ttl_s is None else self._clock() + ttl_s
        for key, value in items.items():
            self._data[key] = (value, expiry)
            self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)
