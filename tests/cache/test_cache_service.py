"""Caching in the service: results unchanged, Redis failures invisible to clients, metrics move."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator

import httpx
import pytest

from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.params import load_params
from service.cache.memory import MemoryStore
from service.cache.redis import RedisStore
from service.core.embedder import Embedder, load_embedder
from service.core.metrics import Metrics
from service.engine.cache import Caches
from service.engine.scaling import Scaling
from service.engine.scorer import ScoringEngine
from service.testing.redis_process import RedisServer
from service.testing.server_process import served
from tests.fixtures import redis_server
from tests.helpers import LONG, QA, SHORT, history_json, pair, prefers, task

pytestmark = pytest.mark.slow  # real subprocesses or learning: the full tier only

CANDIDATES = [(LONG, SHORT), (SHORT, LONG), (LONG, "I don't know."), ("Steep it briefly.", LONG)]


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    yield from redis_server()


async def scores(engine: ScoringEngine) -> list[tuple[list[float], object]]:
    out = []
    for user, kind in (("u1", "short"), ("u2", "long"), ("u1", "short")):
        for candidates in CANDIDATES:
            result = await engine.score(user, prefers(kind), task(*candidates), Scaling(4, 0))
            trace = result.trace.outcome.chain() if result.trace else None  # type: ignore[union-attr]
            out.append((result.scores, trace))
    neighbour_history = tuple(pair(q, long, s) for q, s, long in QA[:3])
    result = await engine.score("u3", neighbour_history, task(LONG, SHORT), Scaling(2, 0))
    out.append((result.scores, None))
    return out


async def test_caching_never_changes_a_result(embedder: Embedder, redis: RedisServer) -> None:
    params = load_params()
    metrics = Metrics()

    async def backend(caches: Caches | None, cache_size: int = 4096) -> EmbeddedBackend:
        b = EmbeddedBackend(lambda: load_embedder(cache_size=cache_size), params, caches)
        await b.start()
        return b

    plain = await backend(None, cache_size=0)  # no cache at any level
    shared = [Caches(RedisStore(redis.url, metrics), metrics) for _ in range(2)]
    memory = Caches(MemoryStore(), Metrics())
    expected = await scores(ScoringEngine(plain))
    first = await scores(ScoringEngine(await backend(shared[0])))  # fills Redis
    # A second replica: its own empty process memory, the same Redis.
    second = await scores(ScoringEngine(await backend(shared[1])))
    assert expected == first == second == await scores(ScoringEngine(await backend(memory)))
    hits = {
        (s.labels["cache"], s.labels["result"]): s.value
        for m in metrics.registry.collect()
        if m.name == "pgenrm_cache_requests"
        for s in m.samples
        if s.name.endswith("_total") and s.labels["store"] == "redis"
    }
    assert hits[("persona", "hit")] > 0 and hits[("embedding", "hit")] > 0
    for caches in (*shared, memory):
        await caches.close()


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of a metric's samples matching the labels in Prometheus text exposition."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def server(redis: RedisServer) -> Iterator[str]:
    env = {"PGENRM_REDIS_URL": redis.url, "PGENRM_REDIS_TIMEOUT_S": "0.2"}
    with served(env) as url:
        yield url


def body(user: str, i: int) -> dict[str, object]:
    return {
        "user_id": user,
        "history": history_json("short")[:3],
        "prompt": f"How long should I steep green tea, case {i % 6}?",
        "candidates": [LONG, SHORT],
        "scaling": {"ind": 2},
        "return_traces": "none",
    }


async def test_redis_killed_mid_run_fails_no_request(server: str, redis: RedisServer) -> None:
    statuses: list[int] = []
    async with httpx.AsyncClient(timeout=30) as client:

        async def burst(n: int) -> None:
            rs = await asyncio.gather(
                *(
                    client.post(f"{server}/v1/score", json=body(f"user-{i % 4}", i))
                    for i in range(n)
                )
            )
            statuses.extend(r.status_code for r in rs)

        await burst(16)
        redis.stop()  # Redis dies mid-run
        await burst(16)
        await burst(16)
        redis.start()  # and comes back on the same port
        # Once past its backoff the store reconnects: the restarted, empty Redis refills and
        # then serves persona hits again.
        deadline = time.monotonic() + 60  # the backoff caps at 30 s
        while True:
            await burst(8)
            text = (await client.get(f"{server}/metrics")).text
            hit = {"cache": "persona", "store": "redis", "result": "hit"}
            if metric(text, "pgenrm_cache_requests_total", **hit) >= 1:
                break
            assert time.monotonic() < deadline, "the store never came back after Redis did"
            await asyncio.sleep(0.5)
    assert statuses.count(200) == len(statuses) >= 56
    assert metric(text, "pgenrm_cache_errors_total", store="redis") >= 1
    assert (
        metric(text, "pgenrm_cache_requests_total", cache="persona", store="redis", result="error")
        >= 1
    )


def test_metrics_move_and_carry_no_user_data(server: str) -> None:
    before = httpx.get(f"{server}/metrics").text
    r = httpx.post(
        f"{server}/v1/score", json=body("secret-user-7", 1) | {"scaling": {"ind": 3}}, timeout=30
    )
    assert r.status_code == 200
    httpx.post(f"{server}/v1/score", json={"user_id": "x"}, timeout=30)  # a 422
    after = httpx.get(f"{server}/metrics").text

    def delta(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert delta("pgenrm_requests_total", route="/v1/score", method="POST", status="200") == 1
    assert delta("pgenrm_requests_total", route="/v1/score", method="POST", status="422") == 1
    assert delta("pgenrm_request_duration_seconds_count", route="/v1/score", status="200") == 1
    assert delta("pgenrm_samples_total", level="ind", outcome="valid", reason="ok") == 3
    assert (
        delta(
            "pgenrm_backend_request_duration_seconds_count", backend="embedded", worker="in-process"
        )
        == 1
    )
    assert metric(after, "pgenrm_build_info", backend="embedded") == 1
    assert metric(after, "pgenrm_requests_in_flight") >= 0
    assert "secret-user-7" not in after and "steep" not in after.lower()
