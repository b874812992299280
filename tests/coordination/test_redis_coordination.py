"""Group assembly and idempotency through Redis, as separate worker processes share them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from service.coordination.groups import Member, Result
from service.coordination.idempotency import RedisIdempotency
from service.coordination.redis_groups import RedisGroups
from service.testing.redis_process import RedisServer
from tests.fixtures import redis_server


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    yield from redis_server()


class Scorer:
    """Records each call's members (one call = one plan) and answers each member."""

    def __init__(self) -> None:
        self.calls: list[list[Member]] = []

    async def __call__(self, members: list[Member]) -> list[Result]:
        self.calls.append(members)
        return [{"status": 200, "body": {"n": m["n"], "of": len(members)}} for m in members]


async def test_members_on_different_workers_are_scored_together(redis: RedisServer) -> None:
    workers = [RedisGroups(redis.url, wait_s=5.0) for _ in range(2)]  # two processes' clients
    scorer = Scorer()
    joined = await asyncio.gather(
        *(workers[n % 2].join("g-full", 4, {"n": n}, scorer) for n in range(4))
    )
    assert len(scorer.calls) == 1 and len(scorer.calls[0]) == 4
    assert sorted(j.result["body"]["n"] for j in joined) == [0, 1, 2, 3]
    assert all(j.arrived == 4 and not j.partial and j.result["body"]["of"] == 4 for j in joined)
    for w in workers:
        await w.close()


async def test_a_short_group_closes_after_the_wait_and_late_members_go_alone(
    redis: RedisServer,
) -> None:
    workers = [RedisGroups(redis.url, wait_s=0.3) for _ in range(2)]
    scorer = Scorer()
    early = await asyncio.gather(
        *(workers[n % 2].join("g-short", 5, {"n": n}, scorer) for n in range(3))
    )
    assert len(scorer.calls) == 1 and all(j.arrived == 3 and j.partial for j in early)
    late = await workers[1].join("g-short", 5, {"n": 9}, scorer)
    assert late.partial and late.arrived == 1 and late.result["body"]["of"] == 1
    for w in workers:
        await w.close()


async def test_redis_idempotency_runs_once_across_workers(redis: RedisServer) -> None:
    stores = [RedisIdempotency(redis.url, ttl_s=30, poll_s=0.01) for _ in range(2)]
    runs = 0

    async def work() -> dict[str, object]:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.2)
        return {"status": 200, "body": {"answer": 42}}

    results = await asyncio.gather(*(stores[i % 2].run("key-1", "fp", work) for i in range(4)))
    assert runs == 1 and [r[0]["body"] for r in results] == [{"answer": 42}] * 4
    assert sorted(r[1] for r in results) == [False, True, True, True]
    for s in stores:
        await s.close()
