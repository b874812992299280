"""Honest cold start: no history is said so, and no confident margin is made up from nothing."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.helpers import LONG, history_json

TEA = "How long should I steep green tea?"


def score(client: TestClient, **body: Any) -> dict[str, Any]:
    r = client.post("/v1/score", json={"user_id": "u1", **body})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_meaningless_pair_without_history_is_a_cold_start_with_no_confident_margin(
    client: TestClient,
) -> None:
    out = score(client, prompt="x", candidates=["a", "b"], history=[])
    assert out["cold_start"] is True and out["history"]["source"] == "none"
    a, b = (s["score"] for s in out["scores"])
    assert abs(a - b) <= 0.5 and out["margin"] <= 0.5
    # The model's own prior over users leans slightly one way; it must not claim more.
    assert 0.4 <= out["confidence"] <= 0.7


def test_a_clear_pair_with_history_keeps_its_margin_and_is_confident(client: TestClient) -> None:
    out = score(client, prompt=TEA, candidates=[LONG, "idk"], history=history_json("long"))
    assert out["cold_start"] is False and out["preferred"] == 0
    # Three times the cold pair's bound (int8 vectors move a little with their batch: ~1.96-2.0
    # here, so not a knife-edge bound).
    assert out["margin"] >= 1.5
    assert out["confidence"] > 0.9
    cold = score(client, prompt="x", candidates=["a", "b"], history=[])
    assert cold["confidence"] < out["confidence"] - 0.2


def test_confidence_is_of_the_preferred_candidate_whatever_the_order(client: TestClient) -> None:
    forward = score(client, prompt=TEA, candidates=[LONG, "idk"], history=history_json("long"))
    backward = score(client, prompt=TEA, candidates=["idk", LONG], history=history_json("long"))
    assert (forward["preferred"], backward["preferred"]) == (0, 1)
    assert forward["confidence"] == backward["confidence"]


def test_confidence_is_null_with_one_scored_candidate(client: TestClient) -> None:
    one = score(client, prompt=TEA, candidates=[LONG], history=history_json("long"))
    assert one["confidence"] is None and one["margin"] is None and one["cold_start"] is False
    failed = score(client, prompt=TEA, candidates=[LONG, " "], history=history_json("long"))
    assert failed["scores"][1]["status"] == "failed"
    assert failed["confidence"] is None and failed["preferred"] == 0


def test_a_stored_user_is_not_a_cold_start_and_an_unknown_one_is(client: TestClient) -> None:
    put = client.put("/v1/users/ann", json={"history": history_json("long")})
    assert put.status_code == 200, put.text
    stored = score(client, user_id="ann", prompt=TEA, candidates=[LONG, "idk"])
    assert stored["history"]["source"] == "stored" and stored["cold_start"] is False
    unknown = score(
        client, user_id="bob", prompt=TEA, candidates=[LONG, "idk"], unknown_user="cold_start"
    )
    assert unknown["history"]["source"] == "none" and unknown["cold_start"] is True
    assert 0.0 <= unknown["confidence"] <= 1.0


def test_confidence_and_cold_start_are_in_the_openapi_schema(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["ScoreResponse"]
    confidence = schema["properties"]["confidence"]
    numeric = next(t for t in confidence["anyOf"] if t.get("type") == "number")
    assert (numeric["minimum"], numeric["maximum"]) == (0.0, 1.0)
    assert {"type": "null"} in confidence["anyOf"]
    assert "probability" in confidence["description"].lower()
    assert "history" in schema["properties"]["cold_start"]["description"]
