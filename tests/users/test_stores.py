"""Both user stores: the same behaviour, atomic appends across writers, persistence."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from service.core.inputs import Message, PreferencePair
from service.testing.redis_process import RedisServer
from service.users.base import UserStore
from service.users.redis import RedisUserStore
from service.users.sqlite import SQLiteUserStore
from tests.fixtures import redis_server


def pair(i: int, feedback: str | None = None) -> PreferencePair:
    return PreferencePair((Message("user", f"q{i}"),), f"chosen {i}", f"rejected {i}", feedback)


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    yield from redis_server()


@pytest.fixture(params=["sqlite", "redis"])
async def stores(
    request: pytest.FixtureRequest, tmp_path: Path, redis: RedisServer
) -> AsyncIterator[tuple[UserStore, UserStore]]:
    """Two store objects on the same data: two worker processes, or two replicas."""
    if request.param == "sqlite":
        made: list[UserStore] = [SQLiteUserStore(tmp_path / "u.sqlite3", 10) for _ in range(2)]
    else:
        made = [RedisUserStore(redis.url, 10) for _ in range(2)]
        await made[0].delete("ann")
    yield made[0], made[1]
    for store in made:
        await store.close()


async def test_put_get_append_delete(stores: tuple[UserStore, UserStore]) -> None:
    a, b = stores
    assert await a.get("ann") is None
    first = await a.put("ann", [pair(1, "liked the brevity")], {"cohort": "x"})
    assert first.version == 1
    seen = await b.get("ann")
    assert seen is not None and seen.history == (pair(1, "liked the brevity"),)
    grown = await b.append("ann", [pair(i) for i in range(2, 14)], {"cohort": None, "k": 2})
    assert grown is not None and grown.version == 2 and len(grown.history) == 10
    assert grown.dropped == 3 and grown.history[-1] == pair(13) and grown.attributes == {"k": 2}
    assert await a.append("nobody", [pair(0)], {}) is None
    assert await a.delete("ann") and not await b.delete("ann")
    assert await b.get("ann") is None


async def test_concurrent_appends_from_two_writers_lose_nothing(
    stores: tuple[UserStore, UserStore],
) -> None:
    a, b = stores
    await a.put("ann", [], {})
    writes = [(a if i % 2 else b).append("ann", [pair(i)], {}) for i in range(10)]
    await asyncio.gather(*writes)
    final = await a.get("ann")
    assert final is not None and final.version == 11
    assert sorted(p.prompt for p in final.history) == sorted(f"q{i}" for i in range(10))


async def test_sqlite_keeps_users_across_reopening(tmp_path: Path) -> None:
    store = SQLiteUserStore(tmp_path / "u.sqlite3", 10)
    await store.put("ann", [pair(1)], {})
    await store.close()
    again = SQLiteUserStore(tmp_path / "u.sqlite3", 10)
    got = await again.get("ann")
    await again.close()
    assert got is not None and got.history == (pair(1),)
