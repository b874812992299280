"""Capability detection against the simulator set up to behave like llama.cpp's server (no
/health, `n` ignored, a schema only as `json_object`, the model named by its file path), and
like vLLM for contrast; real loopback HTTP, no network mocks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.backends.openai.backend import OpenAIBackend, OpenAIOptions
from service.core.config import Settings, WorkerCapabilities
from service.core.metrics import Metrics
from service.engine.scaling import Scaling
from service.engine.scorer import EngineOptions, ScoringEngine
from service.testing._simulator_settings import LLAMA_CPP
from service.testing.simulator_process import Simulator
from tests.engine.fakes import ListNeighbours
from tests.helpers import LONG, SHORT, prefers, task, wait_ready

GGUF = "/models/gemma-3-270m-it-Q4_K_M.gguf"


@pytest.fixture(scope="module")
def llama_sim() -> Iterator[Simulator]:
    with Simulator(model=GGUF, latency_s=0.05, **LLAMA_CPP) as sim:
        yield sim


@pytest.fixture
def llama(llama_sim: Simulator) -> Simulator:
    llama_sim.reset(config=True)
    return llama_sim


@pytest.fixture(scope="module")
def vllm() -> Iterator[Simulator]:
    with Simulator() as sim:
        yield sim


async def started(sim: Simulator, **overrides: object) -> tuple[OpenAIBackend, Metrics]:
    base: dict[str, object] = {"urls": (sim.url,), "health_interval_s": 0.2, "retries": 0}
    backend = OpenAIBackend(OpenAIOptions(**{**base, **overrides}))  # type: ignore[arg-type]
    backend.metrics = Metrics()
    await backend.start()
    return backend, backend.metrics


def engine(backend: OpenAIBackend) -> ScoringEngine:
    return ScoringEngine(backend, ListNeighbours([]), EngineOptions(parse_retries=0))


def gauge(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


async def test_no_health_endpoint_falls_back_to_models_and_a_path_is_shown_as_a_name(
    llama: Simulator,
) -> None:
    backend, metrics = await started(llama)
    worker = backend.pool.workers[0]  # type: ignore[union-attr]
    assert worker.caps.health == "models" and worker.healthy and backend.available
    assert worker.models == [GGUF]  # requests carry the id as listed...
    assert backend.model == "gemma-3-270m-it-Q4_K_M"  # ...responses and /readyz its name
    assert worker.describe()["models"] == ["gemma-3-270m-it-Q4_K_M"]
    assert gauge(metrics, "pgenrm_backend_up", worker=llama.url) == 1
    assert gauge(metrics, "pgenrm_backend_breaker_state", worker=llama.url) == 0
    labels = {"worker": llama.url, "health_source": "models"}
    unknown = {**labels, "n_supported": "unknown", "dialect": "unknown"}
    assert gauge(metrics, "pgenrm_backend_capabilities", **unknown) == 1
    out = await engine(backend).score("u", prefers("short"), task(LONG, SHORT), Scaling(1, 0))
    assert out.ind.valid == 1  # the simulator refuses any other model id than the path
    llama.configure(down=True)
    await backend.pool.probe_all()  # type: ignore[union-attr]
    assert not backend.available and gauge(metrics, "pgenrm_backend_up", worker=llama.url) == 0
    await backend.close()


async def test_ignored_n_is_topped_up_with_concurrent_single_requests(llama: Simulator) -> None:
    llama.configure(latency_s=0.3)
    backend, metrics = await started(llama)
    scorer = engine(backend)
    out = await scorer.score("u", prefers("short"), task(LONG, SHORT), Scaling(4, 0))
    assert (out.ind.requested, out.ind.valid) == (4, 4)
    log = llama.stats()["log"]
    assert [(e["asked"], e["n"]) for e in log] == [(4, 1), (1, 1), (1, 1), (1, 1)]
    assert llama.stats()["max_in_flight"] == 3  # the three top-ups at once
    assert gauge(metrics, "pgenrm_backend_topups_total", worker=llama.url) == 3
    assert backend.pool.workers[0].caps.n is False  # type: ignore[union-attr]
    # Known now: the next group asks for one choice and tops up the rest.
    llama.reset()
    out = await scorer.score("v", prefers("short"), task(LONG, SHORT), Scaling(4, 0))
    assert out.ind.valid == 4 and [e["asked"] for e in llama.stats()["log"]] == [1, 1, 1, 1]
    assert gauge(metrics, "pgenrm_backend_topups_total", worker=llama.url) == 6
    await backend.close()


async def test_a_busy_one_at_a_time_server_stays_healthy(llama: Simulator) -> None:
    """llama.cpp answers /v1/models only between generations: probes that time out while it
    writes must not take it out of the pool (the top-ups would find no worker)."""
    llama.configure(latency_s=1.0)
    backend, _ = await started(llama, probe_timeout_s=0.3, health_interval_s=0.1)
    out = await engine(backend).score("u", prefers("short"), task(LONG, SHORT), Scaling(3, 0))
    assert out.ind.valid == 3 and llama.stats()["max_in_flight"] == 2  # top-ups queued
    assert backend.pool.workers[0].healthy  # type: ignore[union-attr]
    await backend.close()


async def test_a_server_that_honours_n_gets_one_request(vllm: Simulator) -> None:
    vllm.reset(config=True)
    backend, metrics = await started(vllm)
    out = await engine(backend).score("u", prefers("short"), task(LONG, SHORT), Scaling(4, 0))
    assert out.ind.valid == 4 and vllm.stats()["requests"] == 1
    worker = backend.pool.workers[0]  # type: ignore[union-attr]
    assert worker.caps.n is True and worker.caps.health == "health"
    assert gauge(metrics, "pgenrm_backend_topups_total", worker=vllm.url) is None
    await backend.close()


async def test_a_rejected_dialect_falls_back_to_the_one_the_server_takes(llama: Simulator) -> None:
    backend, metrics = await started(llama, structured="auto", retries=2)
    scorer = engine(backend)
    out = await scorer.score("u", prefers("short"), task(LONG, SHORT), Scaling(1, 0))
    assert out.ind.valid == 1
    log = llama.stats()["log"]
    # OpenAI's json_schema first: refused (a 500 "validation error", as llama.cpp answers it,
    # neither retried nor held against the worker's breaker); json_object: taken and kept.
    assert [(e["status"], e["dialect"]) for e in log] == [(500, None), (200, "json_object")]
    assert backend.pool.workers[0].breaker.failures == 0  # type: ignore[union-attr]
    assert backend.pool.workers[0].caps.dialect == "json_object"  # type: ignore[union-attr]
    llama.reset()
    await scorer.score("u", prefers("short"), task(LONG, SHORT), Scaling(1, 0))
    assert [e["dialect"] for e in llama.stats()["log"]] == ["json_object"]
    labels = {"worker": llama.url, "health_source": "models", "n_supported": "unknown"}
    assert gauge(metrics, "pgenrm_backend_capabilities", **labels, dialect="json_object") == 1
    assert gauge(metrics, "pgenrm_backend_capabilities", **labels, dialect="unknown") == 0
    await backend.close()


async def test_an_ignored_dialect_is_detected_by_its_free_text_answer(llama: Simulator) -> None:
    """vLLM's `structured_outputs` is an unknown field to llama.cpp: silently ignored."""
    backend, _ = await started(llama, structured="structured_outputs")
    out = await engine(backend).score("u", prefers("short"), task(LONG, SHORT), Scaling(1, 0))
    assert out.ind.valid == 1
    log = llama.stats()["log"]
    assert [(e["status"], e["dialect"]) for e in log] == [
        (200, None),  # structured_outputs: ignored, free text
        (500, None),  # response_format json_schema: refused
        (200, "json_object"),
    ]
    assert backend.pool.workers[0].caps.dialect == "json_object"  # type: ignore[union-attr]
    await backend.close()


async def test_vllm_takes_the_first_dialect_tried(vllm: Simulator) -> None:
    vllm.reset(config=True)
    backend, _ = await started(vllm, structured="structured_outputs")
    await engine(backend).score("u", prefers("short"), task(LONG, SHORT), Scaling(2, 0))
    assert [e["dialect"] for e in vllm.stats()["log"]] == ["structured_outputs"]
    await backend.close()


async def test_capabilities_set_per_worker_are_not_detected(llama: Simulator) -> None:
    given = {
        "*": WorkerCapabilities(n=False, dialect="structured_outputs"),
        llama.url + "/v1/": WorkerCapabilities(health="models", dialect="json_object"),
        "http://elsewhere:8000": WorkerCapabilities(n=True),
    }
    backend, _ = await started(llama, structured="auto", capabilities=given)
    caps = backend.pool.workers[0].caps  # type: ignore[union-attr]
    assert (caps.health, caps.n, caps.dialect) == ("models", False, "json_object")
    out = await engine(backend).score("u", prefers("short"), task(LONG, SHORT), Scaling(2, 0))
    assert out.ind.valid == 2
    assert [(e["asked"], e["dialect"]) for e in llama.stats()["log"]] == [
        (1, "json_object"),
        (1, "json_object"),
    ]
    await backend.close()


def test_readyz_and_metrics_say_what_was_detected_per_worker(llama: Simulator) -> None:
    settings = Settings(
        backend="openai",
        openai_urls=[llama.url + "/v1"],
        openai_health_interval_s=0.2,
        openai_structured="auto",
        default_ind=2,
    )
    body = {"user_id": "u", "history": [], "prompt": "Steep tea?", "candidates": [LONG, SHORT]}
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        assert client.post("/v1/score", json=body).status_code == 200
        ready = client.get("/readyz").json()
        metrics = client.get("/metrics").text
    assert ready["model"] == "gemma-3-270m-it-Q4_K_M" and GGUF not in str(ready)
    (worker,) = ready["workers"]
    assert worker["health_source"] == "models" and worker["n_supported"] is False
    assert worker["dialect"] == "json_object" and worker["healthy"] is True
    line = (
        f'pgenrm_backend_capabilities{{dialect="json_object",health_source="models",'
        f'n_supported="false",worker="{llama.url}"}} 1.0'
    )
    assert line in metrics
    assert f'pgenrm_backend_topups_total{{worker="{llama.url}"}} 1.0' in metrics
