"""Per-key request rates, cost budgets and the bound on concurrent expensive calls (one process;
tests/test_limits_across_workers.py shares them between processes through Redis)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from limits.aio.storage import MemoryStorage

from service.api._cost import batch_cost, score_cost
from service.api.schemas.score import ScoreRequest
from service.app import create_app
from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.params import load_params
from service.coordination.ratelimit import RateLimiter
from service.core.config import Settings
from service.core.embedder import Embedder
from service.core.errors import TooManyRequests
from tests.api.test_auth import score_body
from tests.helpers import api_keys, bearer, history_json, wait_ready

SLOW = bearer("slow-key")
THRIFTY = bearer("thrifty-key")
FREE = bearer("free-key")


def body() -> dict[str, Any]:
    return score_body(history=history_json("short")[:3])


@pytest.fixture
def client(embedder: Embedder) -> Iterator[TestClient]:
    cost = score_cost(ScoreRequest.model_validate(body()), Settings())
    keys = api_keys(
        {"name": "slow", "secret": "slow-key", "limits": {"requests_per_s": 0.1}},
        {"name": "thrifty", "secret": "thrifty-key", "limits": {"cost_per_minute": 3 * cost}},
        {"name": "free", "secret": "free-key"},
    )
    app = create_app(
        Settings(api_keys=keys), backend=EmbeddedBackend(lambda: embedder, load_params())
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        wait_ready(c)
        yield c


def limited(client: TestClient) -> dict[str, int]:
    """pgenrm_rate_limited_total by reason, as /metrics says (each reason there from start)."""
    text = client.get("/metrics").text
    found = re.findall(r'^pgenrm_rate_limited_total\{reason="(\w+)"\} ([\d.]+)$', text, re.M)
    return {reason: int(float(value)) for reason, value in found}


def test_over_the_request_rate_is_429_with_retry_after(client: TestClient) -> None:
    # 0.1/s is 6 a minute: of 10 calls in a row, 4 or more are refused however slow they are
    statuses = [client.get("/v1/users/nobody", headers=SLOW) for _ in range(10)]
    refused = [r for r in statuses if r.status_code == 429]
    assert len(refused) >= 4 and {r.status_code for r in statuses} == {404, 429}
    first = refused[0]
    assert first.json()["error"]["type"] == "rate_limited"
    assert int(first.headers["retry-after"]) >= 1
    # another key is not slowed down by it
    assert client.get("/v1/users/nobody", headers=FREE).status_code == 404
    assert limited(client) == {"rate": len(refused), "budget": 0, "concurrency": 0}


def test_over_the_cost_budget_is_429_and_other_keys_go_on(client: TestClient) -> None:
    statuses = [client.post("/v1/score", json=body(), headers=THRIFTY) for _ in range(5)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429, 429]
    refused = statuses[-1]
    assert "cost budget" in refused.json()["error"]["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert client.post("/v1/score", json=body(), headers=FREE).status_code == 200
    assert limited(client) == {"rate": 0, "budget": 2, "concurrency": 0}


def test_a_call_over_the_whole_budget_is_422_not_a_429_retried_forever(
    client: TestClient,
) -> None:
    big = body() | {"history": history_json("short") * 4}  # over 3x the cost of body()
    r = client.post("/v1/score", json=big, headers=THRIFTY)
    assert r.status_code == 422 and "split it" in r.json()["error"]["message"]


def test_cost_grows_with_samples_and_text() -> None:
    settings = Settings()
    small = ScoreRequest.model_validate(body() | {"scaling": {"ind": 2}})
    more_samples = ScoreRequest.model_validate(body() | {"scaling": {"ind": 16}})
    more_text = ScoreRequest.model_validate(
        body() | {"scaling": {"ind": 2}, "history": history_json("short") * 4}
    )
    assert score_cost(small, settings) < score_cost(more_samples, settings)
    assert score_cost(small, settings) < score_cost(more_text, settings)
    items = [body(), body()]
    assert batch_cost(items, settings) >= 2 * score_cost(
        ScoreRequest.model_validate(body()), settings
    )


def test_concurrent_expensive_calls_are_bounded_per_key() -> None:
    limiter = RateLimiter()
    with limiter.expensive("k", 2), limiter.expensive("k", 2):
        with pytest.raises(TooManyRequests) as refused, limiter.expensive("k", 2):
            pass
        assert refused.value.headers["Retry-After"] == "1"
        with limiter.expensive("other", 2):  # another key has its own slots
            pass
    with limiter.expensive("k", 2):  # released on the way out
        pass
    assert not limiter._expensive  # no entry left per idle key


class CountingStorage(MemoryStorage):
    """The in-process storage, counting its round trips: hits and window reads."""

    hits = reads = 0

    async def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        self.hits += 1
        return await super().acquire_sliding_window_entry(key, limit, expiry, amount)

    async def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        self.reads += 1
        return await super().get_sliding_window(key, expiry)


async def test_an_admitted_spend_is_one_round_trip_and_a_refusal_says_what_is_left() -> None:
    storage = CountingStorage()
    limiter = RateLimiter(shared=storage)
    await limiter.spend("k", 40, per_minute=100)
    assert (storage.hits, storage.reads) == (1, 0)  # no need to ask what is left
    with pytest.raises(TooManyRequests, match="costs 70 units and 60 of 100 per minute are left"):
        await limiter.spend("k", 70, per_minute=100)
    assert (storage.hits, storage.reads) == (2, 1)  # the refused hit, then the window it reports
