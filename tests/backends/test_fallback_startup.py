"""The embedded fallback from start-up: `pgenrm serve` with the openai backend, its only worker
down and no model name configured, answers degraded at once; once the worker (a simulator)
comes up on the port the gateway was told about, its model is discovered at /v1/models and the
openai backend takes over."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from service.backends.openai.backend import OpenAIBackend, OpenAIOptions
from service.core.errors import Unavailable
from service.engine.scaling import Scaling
from service.engine.scorer import ScoringEngine
from service.testing import simulator_process
from service.testing._ports import free_port
from service.testing.server_process import served
from service.testing.simulator_process import DEFAULT_MODEL, Simulator
from tests.helpers import LONG, SHORT, history_json, prefers, task

BODY: dict[str, Any] = {
    "user_id": "u",
    "history": history_json("short")[:3],
    "prompt": "How long should I steep green tea?",
    "candidates": [LONG, SHORT],
    "scaling": {"ind": 2, "pro": 0},
    "return_traces": "none",
}


@pytest.mark.slow  # real subprocesses: the full tier only
def test_fallback_answers_from_start_up_until_the_worker_and_its_model_appear(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PGENRM_OPENAI_MODEL", raising=False)
    port = free_port()  # nothing listens here yet: the worker is down from the start
    env = {
        "PGENRM_BACKEND": "openai",
        "PGENRM_OPENAI_URLS": f"http://127.0.0.1:{port}/v1",
        "PGENRM_FALLBACK_EMBEDDED": "true",
        "PGENRM_OPENAI_HEALTH_INTERVAL_S": "0.2",
        "PGENRM_OPENAI_RETRIES": "0",
    }
    with served(env) as url:  # returns once /readyz is 200
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded" and ready.json()["fallback"] == "embedded"
        down = httpx.post(f"{url}/v1/score", json=BODY, timeout=60)
        assert down.status_code == 200, down.text
        assert down.json()["degraded"] is True and down.json()["backend"] == "embedded"
        assert down.json()["preferred"] == 1  # the fallback follows the short-loving history

        # The simulator on the very port the gateway was told about.
        monkeypatch.setattr(simulator_process, "free_port", lambda host: port)
        with Simulator() as sim:
            deadline = time.monotonic() + 60  # a generous safety limit, not a latency bound
            while True:
                out = httpx.post(f"{url}/v1/score", json=BODY, timeout=60)
                assert out.status_code == 200, out.text
                if not out.json()["degraded"]:
                    break
                assert time.monotonic() < deadline, "the openai backend never took over"
                time.sleep(0.1)
            assert out.json()["backend"] == "openai" and out.json()["model"] == DEFAULT_MODEL
            assert out.json()["samples"]["ind"]["valid"] == 2
            assert sim.stats()["requests"] >= 1
            ready = httpx.get(f"{url}/readyz").json()
            assert ready["status"] == "ready" and ready["model"] == DEFAULT_MODEL


async def test_without_a_fallback_a_worker_down_since_start_up_is_unavailable_not_loading() -> None:
    backend = OpenAIBackend(OpenAIOptions(urls=(f"http://127.0.0.1:{free_port()}",)))
    engine = ScoringEngine(backend)
    await engine.start()
    try:
        ready = engine.readiness()
        assert ready.loaded and not ready.available and ready.fallback is None
        with pytest.raises(Unavailable, match="openai worker is down"):
            await engine.score("u", prefers("short"), task(LONG, SHORT), Scaling(2, 0))
    finally:
        await engine.close()
