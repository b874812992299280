from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import LONG, SHORT, history_json

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "score_request.json"


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "user_id": "u1",
        # All four pairs: three barely move the calibrated model off the population's taste
        # for longer answers (a short history is trusted as its population's are).
        "history": history_json("short"),
        "prompt": "How long should I steep green tea?",
        "candidates": [LONG, SHORT],
    }
    base.update(overrides)
    return base


def test_score_returns_scores_ranks_and_a_trace(client: TestClient) -> None:
    r = client.post("/v1/score", json=body(scaling={"ind": 4}))
    assert r.status_code == 200, r.text
    out = r.json()
    assert [s["rank"] for s in out["scores"]] == [2, 1] and out["preferred"] == 1
    assert out["margin"] == pytest.approx(
        out["scores"][1]["score"] - out["scores"][0]["score"], abs=1e-3
    )
    assert out["samples"]["ind"] == {"requested": 4, "valid": 4, "failed": 0, "failures": {}}
    assert out["samples"]["pro"]["requested"] == 0
    trace = out["traces"]["summary"]
    assert sum(c["weight"] for c in trace["criteria"]) == pytest.approx(100)
    assert {"style", "content_structure", "values"} <= trace["persona"].keys()
    assert len(trace["candidates"]) == 2
    assert all(len(c["criteria"]) == len(trace["criteria"]) for c in trace["candidates"])
    assert out["backend"] == "embedded" and out["model"].startswith("pgenrm-embedded/")
    assert out["latency_ms"] > 0 and out["traces"].get("samples") is None


def test_example_request_file_scores(client: TestClient) -> None:
    json_type = {"content-type": "application/json"}  # curl -H ... -d @file, or curl --json
    r = client.post("/v1/score", content=EXAMPLE.read_bytes(), headers=json_type)
    assert r.status_code == 200, r.text
    out = r.json()
    assert sum(c["weight"] for c in out["traces"]["summary"]["criteria"]) == pytest.approx(100)
    assert out["samples"]["ind"]["valid"] == 8


def test_traces_on_request(client: TestClient) -> None:
    none = client.post("/v1/score", json=body(return_traces="none")).json()
    assert none["traces"] is None
    full = client.post("/v1/score", json=body(return_traces=True, scaling={"ind": 3})).json()
    samples = full["traces"]["samples"]
    assert len(samples) == 3 and all(s["chain"]["raw"].count("<JSON_START>") == 1 for s in samples)


def test_meta_aggregation_is_opt_in_and_shown_in_the_trace(client: TestClient) -> None:
    plain = client.post("/v1/score", json=body(return_traces="samples", scaling={"ind": 4}))
    meta = client.post(
        "/v1/score", json=body(return_traces="samples", scaling={"ind": 4}, aggregation="meta")
    )
    assert plain.status_code == meta.status_code == 200, meta.text
    assert plain.json()["traces"]["aggregation"] == "mean"
    assert all(s["meta_weight"] is None for s in plain.json()["traces"]["samples"])
    traces = meta.json()["traces"]
    assert traces["aggregation"] == "meta"
    assert all(0.0 < s["meta_weight"] < 1.0 for s in traces["samples"])
    assert meta.json()["samples"] == plain.json()["samples"]  # weighed, never dropped


def test_same_request_same_scores(client: TestClient) -> None:
    a = client.post("/v1/score", json=body()).json()
    b = client.post("/v1/score", json=body()).json()
    assert a["scores"] == b["scores"] and a["seed"] == b["seed"]


def test_multi_turn_context_and_message_answers(client: TestClient) -> None:
    history = [
        {
            "context": [
                {"role": "user", "content": "Name my cat."},
                {"role": "assistant", "content": "What is she like?"},
                {"role": "user", "content": "Grey."},
            ],
            "chosen": {"role": "assistant", "content": "Smokey."},
            "rejected": {"role": "assistant", "content": "Here are ten names for a grey cat..."},
        }
    ]
    context = [{"role": "user", "content": "Another name?"}]
    r = client.post("/v1/score", json=body(history=history, prompt=None, context=context))
    assert r.status_code == 200, r.text


def test_three_or_more_candidates(client: TestClient) -> None:
    r = client.post("/v1/score", json=body(candidates=[LONG, SHORT, "I don't know.", "Steep it."]))
    assert r.status_code == 200, r.text
    assert sorted(s["rank"] for s in r.json()["scores"]) == [1, 2, 3, 4]


def test_health_ready_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["backend"] == "embedded"
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/v1/score" in spec["paths"] and "ScoreRequest" in json.dumps(spec)
