"""Rewards a trainer can use: any K >= 1, order-free scores, honest failures, normalisation."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.core.config import Settings
from tests.engine.fakes import ScriptedBackend
from tests.helpers import LONG, SHORT, history_json, wait_ready

MEDIUM = "Two to three minutes at about 80 °C; longer makes it bitter."
LISTED = "- Water: 80 °C\n- Time: 2-3 minutes\n- Re-steep: yes, twice"


def score(client: TestClient, **body: Any) -> dict[str, Any]:
    base = {
        "user_id": "u1",
        "history": history_json("short")[:3],
        "prompt": "How long should I steep green tea?",
        "return_traces": "none",
    }
    r = client.post("/v1/score", json={**base, **body})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_a_single_candidate_gets_an_absolute_score(client: TestClient) -> None:
    out = score(client, candidates=[SHORT])
    [result] = out["scores"]
    assert result["status"] == "ok" and 1 <= result["score"] <= 10 and result["rank"] == 1
    assert result["reward"] == pytest.approx((result["score"] - 1) / 9, abs=1e-5)
    assert out["preferred"] == 0 and out["margin"] is None
    assert result["valid_samples"] == 8 and result["score_std"] >= 0
    anchored = score(client, candidates=[SHORT], reference=LONG)
    assert anchored["reference_score"] is not None and len(anchored["scores"]) == 1


def test_scores_do_not_depend_on_candidate_order(client: TestClient) -> None:
    texts = [LONG, SHORT, MEDIUM, LISTED]
    seen: dict[str, set[float]] = {t: set() for t in texts}
    for order in itertools.permutations(texts):
        out = score(client, candidates=list(order), scaling={"ind": 4})
        for text, result in zip(order, out["scores"], strict=True):
            seen[text].add(result["score"])
    assert all(len(scores) == 1 for scores in seen.values()), seen  # 24 orders, one score each


def test_an_unscoreable_candidate_is_null_with_a_reason_never_zero(client: TestClient) -> None:
    out = score(client, candidates=[SHORT, "   ", "x" * 2_001])
    ok, empty, long = out["scores"]
    assert ok["status"] == "ok" and ok["score"] is not None
    assert (empty["status"], empty["reason"], empty["score"], empty["reward"]) == (
        "failed",
        "empty",
        None,
        None,
    )
    assert (long["reason"], long["score"], long["rank"]) == ("too_long", None, None)
    with_fallback = score(client, candidates=[SHORT, ""], reward={"fallback": -1.0})
    assert with_fallback["scores"][1]["reward"] == -1.0 and with_fallback["scores"][1]["fallback"]
    metrics = client.get("/metrics").text
    assert 'pgenrm_candidates_total{reason="empty",status="failed"} 2.0' in metrics
    assert "pgenrm_fallback_rewards_total 1.0" in metrics


def test_all_samples_failed_is_a_502_or_the_fallback_with_its_reason() -> None:
    settings = Settings(max_candidates=4)
    garbage = ScriptedBackend(lambda group, _: ["no chain here"] * group.n)
    with TestClient(create_app(settings, backend=garbage)) as client:
        wait_ready(client)
        failed = client.post(
            "/v1/score",
            json={"user_id": "u", "history": [], "prompt": "p", "candidates": ["a", "b"]},
        )
        assert failed.status_code == 502 and failed.json()["error"]["type"] == "scoring_failed"
        out = client.post(
            "/v1/score",
            json={
                "user_id": "u",
                "history": [],
                "prompt": "p",
                "candidates": ["a", "b"],
                "reward": {"fallback": 0.0},
            },
        ).json()
    assert [
        (s["status"], s["reason"], s["score"], s["reward"], s["fallback"]) for s in out["scores"]
    ] == [("failed", "scoring_failed", None, 0.0, True)] * 2
    assert out["samples"]["ind"]["valid"] == 0 and out["samples"]["ind"]["failures"]


def test_zscore_rewards_are_standardised_within_the_request(client: TestClient) -> None:
    out = score(client, candidates=[LONG, SHORT, MEDIUM], reward={"normalize": "zscore"})
    rewards = [s["reward"] for s in out["scores"]]
    assert sum(rewards) == pytest.approx(0, abs=1e-4)
    assert sum(r * r for r in rewards) / 3 == pytest.approx(1, abs=1e-3)
    best = max(range(3), key=lambda i: out["scores"][i]["score"])
    assert rewards[best] == max(rewards)
