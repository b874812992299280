"""The one bounded in-process map: LRU order, its caps (entries, bytes), safety under threads."""

from __future__ import annotations

import threading
import tracemalloc

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from service.core.lru import LRU, digest, sizeof


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


def _vector(n: int, fill: float) -> npt.NDArray[np.float32]:
    return np.full(n, fill, dtype=np.float32)


def test_a_byte_budget_is_never_exceeded_by_values_of_any_size() -> None:
    budget = 256 * 1024
    cache: LRU[bytes, npt.NDArray[np.float32]] = LRU(100_000, max_bytes=budget)
    rng = np.random.default_rng(0)
    for i in range(2_000):
        cache.put(digest(str(i)), _vector(int(rng.integers(1, 16_000)), i))
        assert cache.nbytes <= budget
    kept = [k for k in (digest(str(i)) for i in range(2_000)) if k in cache]
    # what the cache counts is at least what its keys and values hold
    held = sum(sizeof(k) + sizeof(cache.get(k)) for k in kept)
    assert 0 < held <= cache.nbytes <= budget
    assert len(kept) < 2_000 and digest("1999") in cache  # the most recent stays


def test_the_memory_a_full_cache_holds_is_within_its_budget() -> None:
    """What the cache counts is what the process holds: traced allocations of a cache filled
    far past its budget (2,000 x ~20 kB offered, 2 MB allowed) stay within the budget."""
    budget = 2 << 20
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cache: LRU[bytes, npt.NDArray[np.float32]] = LRU(100_000, max_bytes=budget)
        for i in range(2_000):
            cache.put(digest(f"text {i}"), _vector(5_000, i))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(cache) < 2_000
    assert budget // 2 < held <= budget * 1.05


def test_a_value_larger_than_the_budget_is_not_kept_nor_its_older_value() -> None:
    cache: LRU[str, bytes] = LRU(10, max_bytes=4_096)
    cache.put("a", b"x" * 100)
    cache.put("b", b"y" * 100)
    cache.put("a", b"z" * 10_000)
    assert cache.get("a") is None and cache.get("b") == b"y" * 100


def test_the_entry_cap_holds_beside_the_byte_budget() -> None:
    cache: LRU[int, bytes] = LRU(3, max_bytes=1 << 20)
    for i in range(10):
        cache.put(i, b"v")
    assert len(cache) == 3 and [i for i in range(10) if i in cache] == [7, 8, 9]


def test_a_zero_byte_budget_keeps_nothing() -> None:
    cache: LRU[str, int] = LRU(10, max_bytes=0)
    cache.put("a", 1)
    assert cache.get("a") is None and len(cache) == 0


def test_digests_are_16_bytes_and_do_not_collide_by_concatenation() -> None:
    assert len(digest("a text")) == 16 and digest("a text") == digest("a text")
    assert digest("ab", "c") != digest("a", "bc") != digest("abc")
    assert len(digest("lone \ud800 surrogate")) == 16  # JSON can carry one


def test_sizeof_counts_what_a_value_keeps_alive() -> None:
    big = np.zeros(100_000, dtype=np.float32)
    assert sizeof(big) >= 400_000
    assert sizeof(big[:10]) >= 400_000  # a view keeps its whole buffer alive
    assert sizeof(big[:10].copy()) < 1_000
    assert sizeof(np.frombuffer(b"\0" * 40_000, dtype=np.float32)[:2]) >= 40_000
    assert sizeof("x" * 10_000) >= 10_000 and sizeof(b"x" * 10_000) >= 10_000
    assert sizeof(("x" * 5_000, {"k": "y" * 5_000})) >= 10_000
    sparse = sp.random(1, 50_000, density=0.1, format="csr", random_state=0)
    assert sizeof(sparse) >= sparse.data.nbytes + sparse.indices.nbytes
