"""`LRU`: the one bounded in-process map the service keeps derived values in.

A thin thread-safe wrapper over `cachetools.LRUCache` (the embedded backend builds features in
worker threads): reads refresh an entry, writes evict the least recently used past `maxsize`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from cachetools import LRUCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    def __init__(self, maxsize: int) -> None:
        self._data: LRUCache[K, V] = LRUCache(maxsize=max(maxsize, 1))
        self._lock = threading.Lock()
        self.maxsize = maxsize

    def get(self, key: K) -> V | None:
        with self._lock:
            return self._data.get(key)

    def put(self, key: K, value: V) -> None:
        if self.maxsize <= 0:
            return
        with self._lock:
            self._data[key] = value

    def discard_where(self, doomed: Callable[[K], bool]) -> int:
        """Drop the entries whose key `doomed` picks; returns how many."""
        with self._lock:
            keys = [k for k in self._data if doomed(k)]
            for k in keys:
                del self._data[k]
        return len(keys)

    def __contains__(self, key: K) -> bool:
        with self._lock:
            return key in self._data

    def __len__(self) -> int:
        return len(self._data)
