"""Malformed requests: each gets a 4xx with the one error envelope naming the field; none 5xx."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.test_score import body

LONG_TEXT = "x" * 2_001  # the fixture's max_text_chars is 2,000

CASES: list[tuple[str, Any, int, str]] = [
    ("missing user_id", {k: v for k, v in body().items() if k != "user_id"}, 422, "user_id"),
    ("empty user_id", body(user_id=""), 422, "user_id"),
    (
        "missing candidates",
        {k: v for k, v in body().items() if k != "candidates"},
        422,
        "candidates",
    ),
    ("no candidates", body(candidates=[]), 422, "candidates"),
    ("group of size zero", body(group={"id": "g", "size": 0}), 422, "group.size"),
    ("group above limit", body(group={"id": "g", "size": 100_000}), 422, "group.size"),
    ("bad reward normalisation", body(reward={"normalize": "softmax"}), 422, "reward.normalize"),
    ("bad unknown_user", body(unknown_user="guess"), 422, "unknown_user"),
    ("unknown aggregation", body(aggregation="vote"), 422, "aggregation"),
    ("empty reference", body(reference=""), 422, "reference"),
    ("non-string candidate", body(candidates=["fine", 42]), 422, "candidates[1]"),
    ("candidates not a list", body(candidates="a, b"), 422, "candidates"),
    ("too many candidates", body(candidates=["a", "b", "c", "d", "e"]), 422, "candidates"),
    ("unknown top-level key", body(temperature=0.7), 422, "temperature"),
    (
        "unknown history key",
        body(history=[{"prompt": "q", "chosen": "a", "rejected": "b", "score": 1}]),
        422,
        "history[0].score",
    ),
    (
        "history answer bad role",
        body(
            history=[{"prompt": "q", "chosen": {"role": "user", "content": "a"}, "rejected": "b"}]
        ),
        422,
        "history[0].chosen",
    ),
    (
        "history answer empty",
        body(
            history=[
                {"prompt": "q", "chosen": {"role": "assistant", "content": ""}, "rejected": "b"}
            ]
        ),
        422,
        "history[0].chosen",
    ),
    (
        "history chosen missing",
        body(history=[{"prompt": "q", "rejected": "b"}]),
        422,
        "history[0].chosen",
    ),
    ("history not a list", body(history={"prompt": "q"}), 422, "history"),
    (
        "history too long",
        body(history=[{"prompt": "q", "chosen": "a", "rejected": "b"}] * 6),
        422,
        "history",
    ),
    ("both prompt and context", body(context=[{"role": "user", "content": "hi"}]), 422, "prompt"),
    ("neither prompt nor context", body(prompt=None), 422, "prompt"),
    ("empty prompt", body(prompt="   "), 422, "prompt"),
    (
        "history without prompt",
        body(history=[{"chosen": "a", "rejected": "b"}]),
        422,
        "history[0].prompt",
    ),
    (
        "context ends with assistant",
        body(prompt=None, context=[{"role": "assistant", "content": "hi"}]),
        422,
        "context",
    ),
    (
        "bad role",
        body(prompt=None, context=[{"role": "robot", "content": "hi"}]),
        422,
        "context[0].role",
    ),
    ("oversize reference", body(reference=LONG_TEXT), 422, "reference"),
    (
        "oversize history text",
        body(history=[{"prompt": "q", "chosen": LONG_TEXT, "rejected": "b"}]),
        422,
        "history[0].chosen",
    ),
    ("negative ind", body(scaling={"ind": -1}), 422, "scaling.ind"),
    ("ind above limit", body(scaling={"ind": 1000}), 422, "scaling.ind"),
    ("zero samples", body(scaling={"ind": 0, "pro": 0}), 422, "scaling"),
    # a client error, not a 502: no prototype artefact is loaded in these tests
    ("pro without prototypes", body(scaling={"ind": 0, "pro": 1}), 422, "scaling.pro"),
    ("bad return_traces", body(return_traces="everything"), 422, "return_traces"),
    ("body is a list", [body()], 422, "body"),
]


@pytest.mark.parametrize(("name", "payload", "status", "field"), CASES, ids=[c[0] for c in CASES])
def test_malformed_request_gets_envelope(
    client: TestClient, name: str, payload: Any, status: int, field: str
) -> None:
    r = client.post("/v1/score", json=payload)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"type", "message", "field", "details"}
    assert error["field"] == field, error
    assert error["message"] and field in error["message"]


def test_at_least_twenty_kinds() -> None:
    assert len(CASES) >= 20


def test_not_json(client: TestClient) -> None:
    r = client.post("/v1/score", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "malformed_body"


def test_body_too_large(client: TestClient) -> None:
    r = client.post(
        "/v1/score", content=b" " * 60_000, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["error"]["field"] == "body"


def test_unknown_route_and_wrong_method(client: TestClient) -> None:
    assert client.get("/v1/nope").json()["error"]["type"] == "not_found"
    r = client.get("/v1/score")
    assert r.status_code == 405 and r.json()["error"]["type"] == "method_not_allowed"
