"""/get_reward speaks OpenRLHF's remote reward-model contract exactly."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.openrlhf import plain_prompt, response_of
from tests.helpers import history_json

CHATML_PROMPT = (
    "<|im_start|>system\nYou are helpful.<|im_end|>\n"
    "<|im_start|>user\nHow long should I steep green tea?<|im_end|>\n<|im_start|>assistant\n"
)
ROLLOUTS = [
    "About 2 minutes at 80 °C.",
    "Green tea is delicate: use water at 70-80 °C and steep for one to three minutes.",
    "Three minutes.",
    "Steep it briefly, two minutes or so, and taste; re-steep the leaves twice.",
]


def test_templates_and_special_tokens_are_taken_apart() -> None:
    query = CHATML_PROMPT + ROLLOUTS[0] + "<|im_end|><|endoftext|><|endoftext|>"
    assert response_of(query, CHATML_PROMPT) == ROLLOUTS[0]
    assert plain_prompt(CHATML_PROMPT) == "How long should I steep green tea?"
    llama3 = (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert plain_prompt(llama3) == "Hi there?"
    assert plain_prompt("plain question") == "plain question"
    with pytest.raises(ValueError, match="does not contain"):
        response_of("something else", CHATML_PROMPT)


def test_one_call_per_rollout_of_a_group_with_json_labels(client: TestClient) -> None:
    client.put("/v1/users/ann", json={"history": history_json("short")})  # all four pairs
    label = json.dumps({"user_id": "ann", "group_id": "step7-p3", "group_size": 4})

    def post(rollout: str) -> Any:
        body = {
            "query": [CHATML_PROMPT + rollout + "<|im_end|>"],
            "prompts": [CHATML_PROMPT],
            "labels": [label],
        }
        return client.post("/get_reward", json=body)

    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(post, ROLLOUTS))
    for r in responses:
        assert r.status_code == 200, r.text
        out = r.json()
        assert set(out) == {"rewards", "scores", "extra_logs"}
        assert len(out["rewards"]) == 1 and isinstance(out["rewards"][0], float)
        assert len(out["scores"]) == 1 and 0.0 <= out["scores"][0] <= 1.0
        assert out["rewards"][0] == pytest.approx(out["scores"][0], abs=1e-5)  # unit reward
        for name, values in out["extra_logs"].items():
            assert len(values) == 1 and isinstance(values[0], int | float), name
        assert out["extra_logs"]["pgenrm_group_arrived"] == [4.0]
        assert out["extra_logs"]["pgenrm_valid_samples"][0] >= 1
    # the shorter-loving user's rewards rank the short rollouts first
    rewards = {roll: r.json()["rewards"][0] for roll, r in zip(ROLLOUTS, responses, strict=True)}
    assert rewards[ROLLOUTS[2]] > rewards[ROLLOUTS[1]]


def test_empty_lists_get_empty_lists(client: TestClient) -> None:
    r = client.post("/get_reward", json={"query": [], "prompts": [], "labels": []})
    assert r.status_code == 200
    out = r.json()
    assert out["rewards"] == [] and out["scores"] == []
    assert all(v == [] for v in out["extra_logs"].values())


def test_plain_labels_several_samples_and_clear_errors(client: TestClient) -> None:
    client.put("/v1/users/bo", json={"history": history_json("long")[:3]})
    body = {
        "query": [CHATML_PROMPT + r for r in ROLLOUTS[:2]],
        "prompts": [CHATML_PROMPT] * 2,
        "labels": ["bo", "bo"],
    }
    out = client.post("/get_reward", json=body).json()
    assert len(out["rewards"]) == 2 and out["rewards"][1] > out["rewards"][0]
    no_label = client.post("/get_reward", json={**body, "labels": ["", "bo"]})
    assert no_label.status_code == 422 and no_label.json()["error"]["field"] == "labels[0]"
    uneven = client.post("/get_reward", json={**body, "prompts": [CHATML_PROMPT]})
    assert uneven.status_code == 422
