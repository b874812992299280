"""Request rates and cost budgets hold across worker processes: they are counted in Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from service.api._cost import score_cost
from service.api.schemas.score import ScoreRequest
from service.core.config import Settings
from service.testing.redis_process import RedisServer
from service.testing.server_process import served
from tests.api.test_auth import score_body
from tests.fixtures import redis_server
from tests.helpers import api_keys, bearer, history_json

pytestmark = pytest.mark.slow  # real subprocesses: the full tier only

CALLS = 24  # on fresh connections: the kernel spreads them over both workers


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    yield from redis_server()


def body() -> dict[str, object]:
    return score_body(history=history_json("short")[:3])


async def statuses(url: str, method: str, path: str, key: str, **kw: object) -> list[int]:
    async def one() -> int:
        async with httpx.AsyncClient(timeout=60) as client:  # a fresh connection each
            r = await client.request(method, f"{url}{path}", headers=bearer(key), **kw)  # type: ignore[arg-type]
            if r.status_code == 429:
                assert int(r.headers["retry-after"]) >= 1
            return r.status_code

    return list(await asyncio.gather(*(one() for _ in range(CALLS))))


def test_two_workers_share_one_rate_and_one_budget(redis: RedisServer) -> None:
    cost = score_cost(ScoreRequest.model_validate(body()), Settings())
    keys = api_keys(
        # 6 a minute: were each worker counting alone, ~12 of 24 would pass
        {"name": "slow", "secret": "slow", "limits": {"requests_per_s": 0.1}},
        {"name": "thrifty", "secret": "thrifty", "limits": {"cost_per_minute": 5 * cost}},
    )
    env = {"PGENRM_WORKERS": "2", "PGENRM_REDIS_URL": redis.url, "PGENRM_API_KEYS": keys}
    with served(env) as url:
        rate = asyncio.run(statuses(url, "GET", "/v1/users/nobody", "slow"))
        budget = asyncio.run(statuses(url, "POST", "/v1/score", "thrifty", json=body()))
    assert set(rate) == {404, 429} and rate.count(404) <= 6, rate
    assert set(budget) == {200, 429} and budget.count(200) <= 5, budget
