"""Idempotency keys: a retried call is answered once, never scored twice."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from service.app import create_app
from service.core.config import Settings
from tests.engine.fakes import ScriptedBackend, chain_text
from tests.helpers import wait_ready

BODY = {
    "user_id": "u",
    "history": [],
    "prompt": "p",
    "candidates": ["a", "b"],
    "scaling": {"ind": 2},
}


def test_a_retry_with_the_same_key_is_replayed_not_rescored() -> None:
    backend = ScriptedBackend(lambda group, _: [chain_text(4, 6)] * group.n)
    with TestClient(create_app(Settings(), backend=backend)) as client:
        wait_ready(client)
        headers = {"Idempotency-Key": "call-1"}
        with ThreadPoolExecutor(3) as pool:  # the first call and two retries racing it
            answers = list(
                pool.map(lambda _: client.post("/v1/score", json=BODY, headers=headers), range(3))
            )
        later = client.post("/v1/score", json=BODY, headers=headers)
        assert [a.status_code for a in [*answers, later]] == [200] * 4
        assert len(backend.calls) == 1  # scored once
        assert later.headers["idempotent-replayed"] == "true"
        assert len({a.json()["latency_ms"] for a in [*answers, later]}) == 1  # the same answer
        other = client.post("/v1/score", json={**BODY, "prompt": "q"}, headers=headers)
        assert other.status_code == 422 and other.json()["error"]["field"] == "Idempotency-Key"
        client.post("/v1/score", json=BODY)
        assert len(backend.calls) == 2  # without a key every call runs
