"""Group members that reach different worker processes: assembled through Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from service.testing.redis_process import RedisServer
from service.testing.server_process import served
from tests.fixtures import redis_server
from tests.helpers import history_json

pytestmark = pytest.mark.slow  # real subprocesses or learning: the full tier only

ROLLOUTS = [f"Steep it for {n} minutes." + " Taste it as you go." * n for n in range(1, 9)]


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    yield from redis_server()


async def one_call_per_rollout(url: str, group: str) -> list[dict[str, Any]]:
    """Each rollout on its own connection, as OpenRLHF's per-sample calls are."""

    async def member(text: str) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=60) as client:  # a fresh connection each
            r = await client.post(
                f"{url}/v1/score",
                json={
                    "user_id": "ann",
                    "prompt": "How long should I steep green tea?",
                    "candidates": [text],
                    "group": {"id": group, "size": len(ROLLOUTS)},
                    "scaling": {"ind": 2},
                    "return_traces": "none",
                },
            )
            assert r.status_code == 200, r.text
            out: dict[str, Any] = r.json()
            return out

    return list(await asyncio.gather(*(member(t) for t in ROLLOUTS)))


def test_two_workers_assemble_a_group_through_redis(redis: RedisServer) -> None:
    env = {"PGENRM_WORKERS": "2", "PGENRM_REDIS_URL": redis.url, "PGENRM_GROUP_WAIT_S": "10"}
    with served(env) as url:
        put = httpx.put(f"{url}/v1/users/ann", json={"history": history_json("short")[:3]})
        assert put.status_code == 200
        answers = asyncio.run(one_call_per_rollout(url, "step-1/prompt-1"))
        metrics = httpx.get(f"{url}/metrics").text
    assert all(a["group"]["arrived"] == 8 and not a["group"]["partial"] for a in answers)
    assert sorted(a["scores"][0]["rank"] for a in answers) == list(range(1, 9))
    # both workers took members (the kernel spreads connections), yet there was one plan
    samples = [line for line in metrics.splitlines() if line.startswith("pgenrm_samples_total")]
    assert any('level="ind",outcome="valid"' in s and s.endswith(" 2.0") for s in samples), samples
