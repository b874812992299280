"""`LRU`: the one bounded in-process map the service keeps derived values in.

A thin thread-safe wrapper over `cachetools.LRUCache` (the embedded backend builds features in
worker threads): reads refresh an entry, writes evict the least recently used past `maxsize`
entries and, given `max_bytes`, past that many bytes. An entry's bytes are its key's, its
value's (`sizeof`, deep) and the cache's own bookkeeping, so neither many small entries nor a
few huge ones can hold more memory than the budget. Key texts by `digest(text)`: a cache keyed
by the text itself keeps every text it ever saw alive.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import numpy as np
from cachetools import LRUCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Bookkeeping per cached entry, beyond its key and value: the cache's dict slots, the LRU (or
# TTL) order record, the stored size and the entry tuple. Measured with tracemalloc over 200,000
# entries: ~300 bytes in an `LRUCache`, ~390 in a `TLRUCache`.
ENTRY_OVERHEAD = 400


def digest(*parts: str) -> bytes:
    """A 16-byte key standing for these texts (each part length-prefixed: no two lists of parts
    share a digest by concatenation)."""
    chunks = []
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")  # JSON may carry lone surrogates
        chunks += [len(data).to_bytes(8, "little"), data]
    return hashlib.sha256(b"".join(chunks)).digest()[:16]


def sizeof(value: object) -> int:
    """Bytes `value` holds: strings, bytes, numpy arrays (a view counts the buffer it keeps
    alive), sparse matrices and containers of them, counted deep."""
    if isinstance(value, str | bytes | bytearray | int | float | bool) or value is None:
        return sys.getsizeof(value)
    if isinstance(value, np.ndarray):
        return sys.getsizeof(value) + _kept_alive(value)
    if isinstance(value, tuple | list | set | frozenset):
        return sys.getsizeof(value) + sum(sizeof(v) for v in value)
    if isinstance(value, dict):
        return sys.getsizeof(value) + sum(sizeof(k) + sizeof(v) for k, v in value.items())
    arrays = [getattr(value, name, None) for name in ("data", "indices", "indptr")]
    if all(isinstance(a, np.ndarray) for a in arrays):  # a scipy CSR/CSC matrix
        return sys.getsizeof(value) + sum(sizeof(a) for a in arrays) + 512
    return sys.getsizeof(value)


def _kept_alive(array: np.ndarray) -> int:
    """The buffer a view keeps alive (0 for an array owning its data: getsizeof counts it)."""
    base = array.base
    if base is None:
        return 0
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    return base.nbytes if isinstance(base, np.ndarray) else sys.getsizeof(base)


def _stored(entry: tuple[object, int]) -> int:
    return entry[1]


class LRU(Generic[K, V]):
    def __init__(
        self,
        maxsize: int,
        max_bytes: int | None = None,
        sizer: Callable[[object], int] = sizeof,
    ) -> None:
        self._data: LRUCache[K, tuple[V, int]] = LRUCache(
            maxsize=max(max_bytes or sys.maxsize, 1), getsizeof=_stored
        )
        self._lock = threading.Lock()
        self._sizer = sizer
        self.maxsize = maxsize
        self.max_bytes = max_bytes

    def get(self, key: K) -> V | None:
        with self._lock:
            entry = self._data.get(key)
        return None if entry is None else entry[0]

    def put(self, key: K, value: V) -> None:
        if self.maxsize <= 0 or (self.max_bytes is not None and self.max_bytes <= 0):
            return
        size = self._sizer(key) + self._sizer(value) + ENTRY_OVERHEAD
        with self._lock:
            if self.max_bytes is not None and size > self.max_bytes:
                self._data.pop(key, None)  # too large to keep: not even its older value
                return
            self._data[key] = (value, size)
            while len(self._data) > self.maxsize:
                self._data.popitem()

    def discard_where(self, doomed: Callable[[K], bool]) -> int:
        """Drop the entries whose key `doomed` picks; returns how many."""
        with self._lock:
            keys = [k for k in self._data if doomed(k)]
            for k in keys:
                del self._data[k]
        return len(keys)

    @property
    def nbytes(self) -> int:
        """Bytes held, as counted against `max_bytes`."""
        return int(self._data.currsize)

    def __contains__(self, key: K) -> bool:
        with self._lock:
            return key in self._data

    def __len__(self) -> int:
        return len(self._data)
