"""Group assembly in one process: per-sample calls scored together, in one plan."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.params import load_params
from service.core.config import Settings
from service.core.embedder import Embedder
from tests.engine.fakes import Counting
from tests.helpers import history_json, wait_ready

ROLLOUTS = [f"Steep it for {n} minutes{'; taste as you go' * (n % 3)}." for n in range(1, 9)]


@pytest.fixture
def counted(embedder: Embedder) -> Iterator[tuple[TestClient, Counting]]:
    backend = Counting(EmbeddedBackend(lambda: embedder, load_params()))
    app = create_app(Settings(group_wait_s=1.0), backend=backend)
    with TestClient(app) as client:
        wait_ready(client)
        yield client, backend


def member(text: str, group: str, size: int, **extra: Any) -> dict[str, Any]:
    return {
        "user_id": "u1",
        "history": history_json("short")[:3],
        "prompt": "How long should I steep green tea?",
        "candidates": [text],
        "group": {"id": group, "size": size},
        "scaling": {"ind": 4},
        "return_traces": "none",
        **extra,
    }


def send_all(client: TestClient, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with ThreadPoolExecutor(len(bodies)) as pool:
        responses = list(pool.map(lambda b: client.post("/v1/score", json=b), bodies))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    return [r.json() for r in responses]


def test_a_group_of_calls_is_one_plan_and_each_gets_its_own_reward(
    counted: tuple[TestClient, Counting],
) -> None:
    client, backend = counted
    answers = send_all(client, [member(t, "g1", 8) for t in ROLLOUTS])
    assert len(backend.calls) == 1 and backend.calls[0].n == 4  # one Ind-4 chain set for all 8
    assert len(backend.calls[0].task.candidates) == 8
    for answer in answers:
        assert answer["group"] == {
            "id": "g1",
            "size": 8,
            "arrived": 8,
            "partial": False,
            "candidates": 8,
        }
        assert len(answer["scores"]) == 1 and answer["scores"][0]["status"] == "ok"
    assert sorted(a["scores"][0]["rank"] for a in answers) == list(range(1, 9))
    # the same as one call scoring all eight: each rollout's score does not depend on its caller
    together = client.post(
        "/v1/score", json={**member(ROLLOUTS[0], "x", 1), "candidates": ROLLOUTS, "group": None}
    ).json()
    by_text = {a["scores"][0]["score"] for a in answers}
    assert by_text == {s["score"] for s in together["scores"]}


def test_a_short_group_is_scored_after_the_wait_and_flagged_partial(
    counted: tuple[TestClient, Counting],
) -> None:
    client, backend = counted
    answers = send_all(client, [member(t, "g2", 8) for t in ROLLOUTS[:5]])
    assert len(backend.calls) == 1 and len(backend.calls[0].task.candidates) == 5
    assert all(a["group"]["arrived"] == 5 and a["group"]["partial"] for a in answers)
    assert 'pgenrm_groups_total{outcome="partial"} 5.0' in client.get("/metrics").text


def test_a_member_that_disagrees_with_its_group_fails_alone(
    counted: tuple[TestClient, Counting],
) -> None:
    client, _ = counted
    bodies = [member(t, "g3", 3) for t in ROLLOUTS[:3]]
    bodies[2]["prompt"] = "Something else entirely?"
    groups = client.app.state.pgenrm.score_service.groups  # type: ignore[attr-defined]
    with ThreadPoolExecutor(3) as pool:
        first = [pool.submit(client.post, "/v1/score", json=b) for b in bodies[:2]]
        # the group's first member leads: let the two agreeing ones join before the odd one
        while sum(len(g.members) for g in groups._pending.values()) < 2:
            threading.Event().wait(0.01)
        odd = pool.submit(client.post, "/v1/score", json=bodies[2])
        responses = [f.result() for f in (*first, odd)]
    assert [r.status_code for r in responses] == [200, 200, 422]
    assert responses[2].json()["error"]["field"] == "prompt"
    assert responses[0].json()["group"]["candidates"] == 2


def test_group_zscores_are_within_the_group(counted: tuple[TestClient, Counting]) -> None:
    client, _ = counted
    bodies = [member(t, "g4", 4, reward={"normalize": "zscore"}) for t in ROLLOUTS[:4]]
    rewards = [a["scores"][0]["reward"] for a in send_all(client, bodies)]
    assert sum(rewards) == pytest.approx(0, abs=1e-4)
