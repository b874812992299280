"""The two stores: LRU caps (entries, bytes) and TTL in memory; a real redis-server on loopback,
and its failures."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from service.cache.memory import MemoryStore
from service.cache.redis import RedisStore
from service.core.metrics import Metrics
from service.engine.cache import Caches, StoreError
from service.testing.redis_process import RedisServer
from tests.fixtures import redis_server


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    yield from redis_server()


async def test_memory_store_caps_size_and_expires() -> None:
    now = [0.0]
    store = MemoryStore(max_entries=2, clock=lambda: now[0])
    await store.set_many({"a": b"1", "b": b"2"}, ttl_s=10)
    assert await store.get_many(["a"]) == [b"1"]  # "a" is now the most recently used
    await store.set_many({"c": b"3"}, ttl_s=10)
    assert await store.get_many(["a", "b", "c"]) == [b"1", None, b"3"] and len(store) == 2
    now[0] = 11
    assert await store.get_many(["a", "c"]) == [None, None]


async def test_memory_store_never_holds_more_bytes_than_its_budget() -> None:
    budget = 1 << 20
    store = MemoryStore(max_entries=100_000, max_bytes=budget)
    sizes = [200, 5_000, 60_000, 300_000]
    for i in range(400):
        await store.set_many({f"pgenrm:v1:persona:{i}": bytes(sizes[i % 4])}, ttl_s=60)
        assert store.nbytes <= budget
    assert 0 < len(store) < 400
    keys = [f"pgenrm:v1:persona:{i}" for i in range(400)]
    values = [v for v in await store.get_many(keys) if v is not None]
    assert len(values) == len(store) and sum(len(v) for v in values) <= budget
    assert (await store.get_many(keys[-1:]))[0] is not None  # the most recent is kept


async def test_memory_store_skips_a_value_over_its_whole_budget() -> None:
    store = MemoryStore(max_entries=10, max_bytes=64 * 1024)
    await store.set_many({"a": b"small", "b": b"kept"}, ttl_s=None)
    await store.set_many({"a": bytes(100_000)}, ttl_s=None)
    assert await store.get_many(["a", "b"]) == [None, b"kept"]
    empty = MemoryStore(max_entries=10, max_bytes=0)
    await empty.set_many({"a": b"1"}, ttl_s=None)
    assert len(empty) == 0 and await empty.get_many(["a"]) == [None]


async def test_redis_hits_misses_and_ttl(redis: RedisServer) -> None:
    metrics = Metrics()
    caches = Caches(RedisStore(redis.url, metrics), metrics, ttl_s=0.3)
    assert await caches.lookup("persona", ["k1"]) == [None]
    await caches.remember({"k1": b"value"})
    assert await caches.lookup("persona", ["k1", "k2"]) == [b"value", None]
    await asyncio.sleep(0.4)
    assert await caches.lookup("persona", ["k1"]) == [None]  # expired in Redis
    counts = {
        s.labels["result"]: s.value
        for m in metrics.registry.collect()
        if m.name == "pgenrm_cache_requests"
        for s in m.samples
        if s.name.endswith("_total")
    }
    assert counts == {"miss": 3.0, "hit": 1.0}
    await caches.close()


async def test_a_dead_redis_is_a_counted_miss_then_backoff_then_reconnect(
    redis: RedisServer,
) -> None:
    metrics = Metrics()
    store = RedisStore(redis.url, metrics, backoff_s=0.2)
    caches = Caches(store, metrics)
    await caches.remember({"k": b"v"})
    redis.stop()
    assert await caches.lookup("persona", ["k"]) == [None]  # error -> miss, never an exception
    assert not store.available  # backing off: no request waits on a dead Redis now
    with pytest.raises(StoreError):
        await store.get_many(["k"])
    await caches.remember({"k2": b"v2"})  # silently skipped
    redis.start()  # same port, empty (no persistence)
    await asyncio.sleep(0.25)
    assert await caches.lookup("persona", ["k"]) == [None]
    await caches.remember({"k": b"again"})
    assert await caches.lookup("persona", ["k"]) == [b"again"]  # reconnected
    errors = sum(
        s.value
        for m in metrics.registry.collect()
        if m.name == "pgenrm_cache_errors"
        for s in m.samples
        if s.name.endswith("_total")
    )
    assert errors >= 1
    await caches.close()
