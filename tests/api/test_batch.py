"""/v1/score/batch: results in order, each item with its own status; one bad item fails alone."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.helpers import LONG, SHORT, history_json


def item(**extra: Any) -> dict[str, Any]:
    return {
        "user_id": "u1",
        # All four pairs: three barely move the calibrated model off the population's taste
        # for longer answers (a short history is trusted as its population's are).
        "history": history_json("short"),
        "prompt": "How long should I steep green tea?",
        "candidates": [LONG, SHORT],
        "return_traces": "none",
        **extra,
    }


def test_items_in_order_with_their_own_status(client: TestClient) -> None:
    items = [
        item(),
        item(candidates=[]),  # invalid: no candidates
        item(user_id="nobody", history=None),  # unknown user
        item(candidates=[SHORT]),
        {"not": "a score request"},
    ]
    r = client.post("/v1/score/batch", json={"items": items})
    assert r.status_code == 200, r.text
    out = r.json()
    assert [x["index"] for x in out["results"]] == [0, 1, 2, 3, 4]
    assert [x["status"] for x in out["results"]] == [200, 422, 404, 200, 422]
    assert (out["ok"], out["failed"]) == (2, 3)
    assert out["results"][1]["error"]["field"] == "items[1].candidates"
    assert out["results"][2]["error"]["type"] == "unknown_user"
    assert out["results"][0]["response"]["preferred"] == 1
    alone = client.post("/v1/score", json=item()).json()
    assert [s["score"] for s in out["results"][0]["response"]["scores"]] == [
        s["score"] for s in alone["scores"]
    ]


def test_a_batch_may_carry_a_group(client: TestClient) -> None:
    group = {"id": "step-1", "size": 2}
    items = [item(candidates=[LONG], group=group), item(candidates=[SHORT], group=group)]
    out = client.post("/v1/score/batch", json={"items": items}).json()
    assert [x["response"]["group"]["arrived"] for x in out["results"]] == [2, 2]
    assert {x["response"]["scores"][0]["rank"] for x in out["results"]} == {1, 2}


def test_batch_limits_are_settings(client: TestClient) -> None:
    r = client.post("/v1/score/batch", json={"items": []})
    assert r.status_code == 422 and r.json()["error"]["field"] == "items"
    too_many = client.post("/v1/score/batch", json={"items": [item()] * 600})
    assert too_many.status_code in (413, 422)  # over the body limit or PGENRM_BATCH_MAX_ITEMS
