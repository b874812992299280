"""The real-model tier: the gateway scores through llama.cpp's OpenAI-compatible server running
Gemma 3 270M (Q4_K_M) on the CPU, the second real implementation of the API after the simulator.

It needs `.venv-llm` (`scripts/install_real_llm`); without it the tier skips, or fails under
PGENRM_REQUIRE_REAL_LLM=1 (set by `scripts/test`, which installs it). Generation is bounded
(few samples, short `max_tokens`) so it adds a few minutes on two cores. Each test writes one
`real-llm:` line to the terminal (the CI log): what was requested, valid and failed by reason,
the top-ups, and the tier's wall time at the end. Alone:

    ./scripts/install_real_llm && PGENRM_REQUIRE_REAL_LLM=1 .venv/bin/pytest -m real_llm
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.core.config import Settings
from service.testing.llama_server import RealLLM, find_real_llm, llama_server
from tests.helpers import LONG, QA, SHORT, wait_ready

pytestmark = [pytest.mark.real_llm, pytest.mark.slow]

HISTORY = [{"prompt": q, "chosen": short, "rejected": long} for q, short, long in QA[:2]]
FAILURES = {"empty_output", "no_json", "truncated", "invalid_json", "missing_scores"}
FAILURES |= {"candidate_count_mismatch", "score_out_of_range"}


class Log:
    """`real-llm:` lines on the terminal as the tier goes, past pytest's output capture."""

    def __init__(self, config: pytest.Config) -> None:
        self._reporter = config.pluginmanager.get_plugin("terminalreporter")
        self._capture = config.pluginmanager.get_plugin("capturemanager")

    def __call__(self, line: str) -> None:
        if self._reporter is None or self._capture is None:
            print(f"real-llm: {line}")
            return
        with self._capture.global_and_fixture_disabled():
            self._reporter.write_line(f"real-llm: {line}")


@pytest.fixture(scope="module")
def say(pytestconfig: pytest.Config) -> Log:
    return Log(pytestconfig)


@pytest.fixture(scope="module")
def llm() -> RealLLM:
    found = find_real_llm()
    if found is None:
        if os.environ.get("PGENRM_REQUIRE_REAL_LLM") == "1":
            pytest.fail("the real-model tier needs .venv-llm: run ./scripts/install_real_llm")
        pytest.skip(".venv-llm is not installed: ./scripts/install_real_llm")
    return found


@pytest.fixture(scope="module")
def server(llm: RealLLM, say: Log) -> Iterator[str]:
    started = time.monotonic()
    # One thread: the gateway under test and pytest share the machine, and llama.cpp's threads
    # wait on each other when one is preempted (2 threads ran 5-20x slower beside other work).
    with llama_server(llm, threads=1) as url:
        say(f"llama.cpp serving {llm.model.name} after {time.monotonic() - started:.1f} s")
        yield url
    say(f"tier wall time {time.monotonic() - started:.0f} s (server start to stop)")


def gateway(url: str, **overrides: Any) -> TestClient:
    settings: dict[str, Any] = {
        "backend": "openai",
        "openai_urls": [f"{url}/v1"],
        "openai_health_interval_s": 1.0,
        "openai_read_timeout_s": 300.0,
        "openai_retries": 0,
        "openai_temperature": 0.7,
        "score_deadline_s": 600.0,
        "parse_retries": 0,  # every sample counted once: the tier reports what the model wrote
        **overrides,
    }
    return TestClient(create_app(Settings(**settings)))


def score(client: TestClient, ind: int, user: str = "u") -> dict[str, Any]:
    body = {
        "user_id": user,
        "history": HISTORY,
        "prompt": "How long should I steep green tea?",
        "candidates": [LONG, SHORT],
        "scaling": {"ind": ind},
        "return_traces": "samples",
    }
    response = client.post("/v1/score", json=body)
    assert response.status_code in (200, 502), response.text  # 502: every sample failed
    out: dict[str, Any] = response.json()
    return out


def tally(out: dict[str, Any], requested: int) -> dict[str, Any]:
    """Requested / valid / failed by reason of the Ind level, from an answer or from the 502
    that says every sample failed (its details count the reasons)."""
    if "error" in out:
        failures = {d["reason"]: d["count"] for d in out["error"]["details"]}
        return {"requested": requested, "valid": 0, "failed": requested, "failures": failures}
    ind = out["samples"]["ind"]
    return {k: ind[k] for k in ("requested", "valid", "failed", "failures")}


def topups(client: TestClient) -> float:
    text = client.get("/metrics").text
    lines = [ln for ln in text.splitlines() if ln.startswith("pgenrm_backend_topups_total{")]
    return sum(float(ln.rsplit(" ", 1)[1]) for ln in lines)


def test_gateway_becomes_ready_and_says_what_it_detected(server: str, say: Log) -> None:
    started = time.monotonic()
    with gateway(server) as client:
        wait_ready(client, timeout=120)
        ready = client.get("/readyz").json()
    (worker,) = ready["workers"]
    say(
        f"ready in {time.monotonic() - started:.1f} s: model {ready['model']}, health from "
        f"{worker['health_source']}, models {worker['models']}"
    )
    assert ready["status"] == "ready" and worker["health_source"] == "models"
    assert "/" not in ready["model"]  # the GGUF's path is shown as its name


def test_ind4_gets_four_samples_with_top_ups_in_free_text(server: str, say: Log) -> None:
    with gateway(server, openai_max_tokens=64) as client:
        wait_ready(client, timeout=120)
        started = time.monotonic()
        out = score(client, 4)
        wall, added = time.monotonic() - started, topups(client)
        worker = client.get("/readyz").json()["workers"][0]
    counts = tally(out, 4)
    say(f"free text, Ind-4, max_tokens 64: {counts}, top-ups {added:.0f}, {wall:.0f} s")
    assert worker["n_supported"] is False and added == 3
    assert counts["requested"] == 4 and counts["valid"] + counts["failed"] == 4
    assert sum(counts["failures"].values()) == counts["failed"]
    assert set(counts["failures"]) <= FAILURES  # parse failures, each with its reason


def test_structured_outputs_parse_into_valid_scores(server: str, say: Log) -> None:
    """Each response's overall score, constrained by llama.cpp's grammar (the whole chain's
    free strings decode at ~2 tokens/s under its grammar here: `scores` keeps it ~20 tokens)."""
    valid = requested = 0
    reasons: dict[str, int] = {}
    structured = {"openai_structured": "auto", "openai_structured_schema": "scores"}
    with gateway(server, openai_max_tokens=64, **structured) as client:
        wait_ready(client, timeout=120)
        started = time.monotonic()
        for user in ("a", "b"):
            counts = tally(score(client, 8, user), 8)
            requested += counts["requested"]
            valid += counts["valid"]
            for reason, n in counts["failures"].items():
                reasons[reason] = reasons.get(reason, 0) + n
        wall, added = time.monotonic() - started, topups(client)
        worker = client.get("/readyz").json()["workers"][0]
    rate = valid / requested
    say(
        f"structured ({worker['dialect']}, scores), 2 x Ind-8, max_tokens 64: requested "
        f"{requested}, valid {valid}, failed {reasons}, top-ups {added:.0f}, parse rate "
        f"{rate:.0%}, {wall:.0f} s"
    )
    assert worker["dialect"] == "json_object"  # json_schema refused, llama.cpp's variant kept
    assert rate >= 0.9 and added == 14


def test_too_few_tokens_are_truncation_failures_not_a_crash(server: str, say: Log) -> None:
    structured = {"openai_structured": "json_object", "openai_structured_schema": "scores"}
    with gateway(server, openai_max_tokens=16, **structured) as client:
        wait_ready(client, timeout=120)
        out = score(client, 2)
        after = client.get("/readyz").status_code
    counts = tally(out, 2)
    say(f"max_tokens 16, Ind-2: {counts}")
    assert after == 200  # the gateway is still serving
    assert counts["failures"] == {"truncated": 2}  # typed failures: nothing was scored from them
    assert "error" not in out or out["error"]["type"] == "scoring_failed"
