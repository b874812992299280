"""The one bounded in-process map: LRU order, its cap, and safety under threads."""

from __future__ import annotations

import threading

from service.core.lru import LRU


def test_reads_refresh_and_writes_evict_the_least_recent() -> None:
    cache: LRU[str, int] = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2 and "b" not in cache


def test_size_zero_keeps_nothing() -> None:
    cache: LRU[str, int] = LRU(0)
    cache.put("a", 1)
    assert cache.get("a") is None and len(cache) == 0


def test_concurrent_writers_never_exceed_the_cap() -> None:
    cache: LRU[int, int] = LRU(64)
    errors: list[BaseException] = []

    def write(offset: int) -> None:
        try:
            for i in range(5_000):
                cache.put(offset + i, i)
                cache.get(offset + i // 2)
        except BaseException as error:  # pragma: no cover - what the test is looking for
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n * 10_000,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(cache) == 64
