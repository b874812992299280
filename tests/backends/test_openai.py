"""The OpenAI-compatible backend against simulator processes over real loopback HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.backends.openai.backend import OpenAIBackend, OpenAIOptions
from service.core.config import Settings
from service.core.errors import ScoringFailed
from service.engine.scaling import Neighbour, Scaling
from service.engine.scorer import EngineOptions, ScoringEngine
from service.testing.simulator_process import Simulator
from tests.engine.fakes import ListNeighbours
from tests.helpers import LONG, SHORT, prefers, task, wait_ready


@pytest.fixture(scope="module")
def sims() -> Iterator[tuple[Simulator, Simulator]]:
    with Simulator() as a, Simulator() as b:
        yield a, b


@pytest.fixture
def fresh(sims: tuple[Simulator, Simulator]) -> tuple[Simulator, Simulator]:
    for sim in sims:
        sim.reset(config=True)
    return sims


def options(*sims: Simulator, **overrides: object) -> OpenAIOptions:
    base: dict[str, object] = {
        "urls": tuple(s.url for s in sims),
        "backoff_base_s": 0.01,
        "health_interval_s": 0.2,
        "breaker_cooldown_s": 0.5,
        "read_timeout_s": 5.0,
    }
    base.update(overrides)
    return OpenAIOptions(**base)  # type: ignore[arg-type]


async def engine_for(*sims: Simulator, neighbours: int = 0, **overrides: object) -> ScoringEngine:
    backend = OpenAIBackend(options(*sims, **overrides))
    await backend.start()
    source = ListNeighbours([Neighbour(f"n{j}", prefers("long"), 0.9) for j in range(neighbours)])
    return ScoringEngine(backend, source, EngineOptions(parse_retries=0))


def routed_to(sims: tuple[Simulator, ...]) -> list[int]:
    return [s.stats()["requests"] for s in sims]


async def test_ind16_is_one_request_with_n16(fresh: tuple[Simulator, Simulator]) -> None:
    sim = fresh[0]
    engine = await engine_for(sim)
    out = await engine.score("u", prefers("short"), task(LONG, SHORT), Scaling(16, 0))
    stats = sim.stats()
    assert stats["requests"] == 1 and stats["log"][0]["n"] == 16
    assert (out.ind.requested, out.ind.valid) == (16, 16)
    assert out.preferred == 1  # the simulated model follows the short-loving history
    assert engine.readiness().model == "pgenrm-simulator"  # discovered at /v1/models
    await engine.close()


async def test_pro8_requests_overlap(fresh: tuple[Simulator, Simulator]) -> None:
    sim = fresh[0]
    sim.configure(latency_s=0.4)
    engine = await engine_for(sim, neighbours=8)
    out = await engine.score("u", prefers("short"), task(LONG, SHORT), Scaling(0, 8))
    stats = sim.stats()
    assert stats["requests"] == 8 and stats["max_in_flight"] == 8  # all eight at once
    # every request arrived before the first one was answered: sent together, not in turn
    assert max(e["start"] for e in stats["log"]) < min(e["end"] for e in stats["log"])
    assert out.pro.valid == 8
    await engine.close()


async def test_same_user_same_worker(fresh: tuple[Simulator, Simulator]) -> None:
    engine = await engine_for(*fresh)
    for _ in range(4):
        await engine.score("alice", prefers("short"), task(LONG, SHORT), Scaling(2, 0))
    counts = routed_to(fresh)
    assert sorted(counts) == [0, 4]  # every request of one user on one worker
    for user in range(12):
        await engine.score(f"user-{user}", prefers("short"), task(LONG, SHORT), Scaling(1, 0))
    assert min(routed_to(fresh)) > 0  # and different users spread over both
    await engine.close()


async def test_failover_when_a_worker_stops() -> None:
    with Simulator() as a, Simulator() as b:
        engine = await engine_for(a, b)
        await engine.score("bob", prefers("short"), task(LONG, SHORT), Scaling(2, 0))
        home, other = (a, b) if a.stats()["requests"] else (b, a)
        home.stop()
        out = await engine.score("bob", prefers("short"), task(LONG, SHORT), Scaling(4, 0))
        assert out.ind.valid == 4 and other.stats()["requests"] == 1
        await engine.close()


async def test_thirty_percent_faults_still_score_with_honest_counts(
    fresh: tuple[Simulator, Simulator],
) -> None:
    sim = fresh[0]
    sim.configure(error_rate=0.15, malformed_rate=0.15, fault_seed=7)
    engine = await engine_for(sim, neighbours=8, retries=0)
    out = await engine.score("u", prefers("short"), task(LONG, SHORT), Scaling(16, 8))
    for level in (out.ind, out.pro):
        assert level.valid + level.failed == level.requested
        assert level.failed == sum(level.failures.values())
    assert out.ind.requested == 16 and out.pro.requested == 8
    assert out.ind.failed + out.pro.failed > 0 and out.ind.valid + out.pro.valid > 0
    reasons = set(out.ind.failures) | set(out.pro.failures)
    assert reasons <= {"backend_error", "truncated", "no_json", "empty_output"}
    await engine.close()


async def test_client_errors_are_not_retried(fresh: tuple[Simulator, Simulator]) -> None:
    for sim in fresh:
        sim.configure(status_code=400, status_rate=1.0)
    engine = await engine_for(*fresh, retries=3)
    with pytest.raises(ScoringFailed, match="backend_error: 4"):
        await engine.score("u", prefers("short"), task(LONG, SHORT), Scaling(4, 0))
    assert sum(routed_to(fresh)) == 1  # one request: no retry, no failover
    await engine.close()


async def test_rate_limits_are_retried_then_fail_over(fresh: tuple[Simulator, Simulator]) -> None:
    fresh[0].configure(status_code=429, status_rate=1.0)
    fresh[1].configure(status_code=429, status_rate=1.0)
    engine = await engine_for(*fresh, retries=2)
    with pytest.raises(ScoringFailed):
        await engine.score("u", prefers("short"), task(LONG, SHORT), Scaling(2, 0))
    assert routed_to(fresh) == [3, 3]  # 1 + 2 retries on each worker
    await engine.close()


@pytest.mark.parametrize("mode", ["structured_outputs", "response_format"])
async def test_structured_outputs_opt_in(fresh: tuple[Simulator, Simulator], mode: str) -> None:
    engine = await engine_for(fresh[0], structured=mode)
    out = await engine.score("u", prefers("short"), task(LONG, SHORT), Scaling(4, 0))
    assert out.ind.valid == 4 and fresh[0].stats()["log"][0]["structured"]
    assert out.trace is not None and out.trace.outcome.chain().persona.style  # type: ignore[union-attr]
    await engine.close()


def api_settings(*sims: Simulator, **overrides: object) -> Settings:
    return Settings(
        backend="openai",
        openai_urls=[s.url for s in sims],
        openai_model="pgenrm-simulator",
        openai_health_interval_s=0.2,
        openai_retries=0,
        **overrides,  # type: ignore[arg-type]
    )


def test_every_worker_down_is_a_503_with_retry_after(fresh: tuple[Simulator, Simulator]) -> None:
    for sim in fresh:
        sim.configure(down=True)
    body = {"user_id": "u", "history": [], "prompt": "p", "candidates": ["a", "b"]}
    with TestClient(create_app(api_settings(*fresh))) as client:
        for _ in range(200):  # the backend loads in the background: until then, "loading"
            r = client.post("/v1/score", json=body)
            if "still loading" not in r.text:
                break
            time.sleep(0.05)
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["type"] == "unavailable"
        assert "openai worker is down" in r.json()["error"]["message"]


def test_every_worker_down_with_fallback_is_degraded(fresh: tuple[Simulator, Simulator]) -> None:
    for sim in fresh:
        sim.configure(down=True)
    body = {
        "user_id": "u",
        "history": [],
        "prompt": "How long to steep tea?",
        "candidates": [LONG, SHORT],
    }
    with TestClient(create_app(api_settings(*fresh, fallback_embedded=True))) as client:
        wait_ready(client)
        assert client.get("/readyz").json()["status"] == "degraded"
        out = client.post("/v1/score", json=body).json()
        assert out["degraded"] is True and out["backend"] == "embedded"


def test_an_llm_judges_trace_has_the_same_fields_as_the_embedded_ones(
    fresh: tuple[Simulator, Simulator],
) -> None:
    """Free criterion names map to vocabulary keys; `separates` and `why` come from the chain."""
    body = {
        "user_id": "u",
        "history": [
            {"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}
            for p in prefers("short")
        ],
        "prompt": "How long should I steep green tea?",
        "candidates": [LONG, SHORT],
        "scaling": {"ind": 4},
    }
    with TestClient(create_app(api_settings(*fresh))) as client:
        wait_ready(client)
        r = client.post("/v1/score", json=body)
    assert r.status_code == 200, r.text
    trace = r.json()["traces"]["summary"]
    keys = {c["name"]: c["key"] for c in trace["criteria"]}
    assert keys["Conciseness"] == "length" and keys["Relevance"] == "relevance", keys
    assert all(isinstance(c["separates"], bool) for c in trace["criteria"])
    flags = [c["separates"] for c in trace["criteria"]]
    assert flags == sorted(flags, reverse=True)  # separating criteria first
    for candidate in trace["candidates"]:
        assert candidate["why"].startswith(("Ranked 1 of 2", "Ranked 2 of 2", "Level with"))
        assert [s["key"] for s in candidate["criteria"]] == [c["key"] for c in trace["criteria"]]
