"""Stored users: the lifecycle, scoring with a stored history, forgetting, and restarts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.params import load_params
from service.core.config import Settings
from service.core.embedder import Embedder
from service.testing.redis_process import RedisServer
from tests.fixtures import redis_server
from tests.helpers import LONG, SHORT, history_json, wait_ready

PROMPT = "How long should I steep green tea?"


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    yield from redis_server()


def app_client(embedder: Embedder, **settings: Any) -> TestClient:
    backend = EmbeddedBackend(lambda: embedder, load_params())
    return TestClient(create_app(Settings(**settings), backend=backend))


def score(client: TestClient, user: str, **extra: Any) -> dict[str, Any]:
    body = {"user_id": user, "prompt": PROMPT, "candidates": [LONG, SHORT], **extra}
    r = client.post("/v1/score", json={**body, "return_traces": "none"})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_lifecycle_versions_attributes_and_caps(embedder: Embedder, tmp_path: Path) -> None:
    with app_client(embedder, state_dir=tmp_path, max_stored_pairs=5) as client:
        put = client.put(
            "/v1/users/ann", json={"history": history_json("short")[:3], "attributes": {"c": 1}}
        )
        assert put.status_code == 200 and put.json()["version"] == 1 and put.json()["pairs"] == 3
        patch = client.patch(
            "/v1/users/ann",
            json={"append": history_json("long")[:4], "attributes": {"c": None, "seg": "b"}},
        ).json()
        assert (patch["version"], patch["pairs"], patch["dropped"]) == (2, 5, 2)
        assert patch["attributes"] == {"seg": "b"}
        got = client.get("/v1/users/ann").json()
        assert got["version"] == 2 and len(got["history"]) == 5
        assert got["history"][-1]["chosen"] == history_json("long")[3]["chosen"]
        too_many = client.put("/v1/users/ann", json={"history": history_json("short") * 2})
        assert too_many.status_code == 422 and too_many.json()["error"]["field"] == "history"
        assert client.patch("/v1/users/nobody", json={"append": []}).status_code == 404
        assert client.get("/v1/users/nobody").json()["error"]["type"] == "not_found"


def test_patch_with_a_key_appends_once_and_metrics_name_the_route(
    embedder: Embedder, tmp_path: Path
) -> None:
    with app_client(embedder, state_dir=tmp_path) as client:
        client.put("/v1/users/ann", json={"history": []})
        append = {"append": history_json("long")[:1]}
        for _ in range(2):  # a retry of the same append
            r = client.patch("/v1/users/ann", json=append, headers={"Idempotency-Key": "a-1"})
            assert r.status_code == 200 and r.json()["pairs"] == 1
        assert client.get("/v1/users/ann").json()["version"] == 2  # appended once
        client.get("/no/such/path")
        metrics = client.get("/metrics").text
    assert 'route="/v1/users/{user_id}",status="200"' in metrics
    assert "ann" not in metrics  # a template, never the user id
    assert 'route="unmatched",status="404"' in metrics


def test_stored_history_scores_like_inline_history(embedder: Embedder, tmp_path: Path) -> None:
    history = history_json("short")[:3]
    with app_client(embedder, state_dir=tmp_path) as client:
        wait_ready(client)
        client.put("/v1/users/ann", json={"history": history})
        stored = score(client, "ann")
        inline = score(client, "ann", history=history)
    assert stored["history"] == {"source": "stored", "version": 1, "pairs": 3}
    assert inline["history"] == {"source": "inline", "version": None, "pairs": 3}
    assert [s["score"] for s in stored["scores"]] == [s["score"] for s in inline["scores"]]


def test_delete_forgets_the_user_and_what_was_cached(embedder: Embedder, tmp_path: Path) -> None:
    with app_client(embedder, state_dir=tmp_path) as client:
        wait_ready(client)
        client.put("/v1/users/ann", json={"history": history_json("short")[:3]})
        score(client, "ann")  # caches the persona derived from the stored history
        gone = client.delete("/v1/users/ann")
        assert gone.status_code == 200 and gone.json()["cached_entries_dropped"] >= 1
        after = client.post(
            "/v1/score", json={"user_id": "ann", "prompt": PROMPT, "candidates": [LONG, SHORT]}
        )
        assert after.status_code == 404 and after.json()["error"]["type"] == "unknown_user"
        cold = score(client, "ann", unknown_user="cold_start")
        assert cold["history"] == {"source": "none", "version": None, "pairs": 0}
        assert client.delete("/v1/users/ann").status_code == 404


def test_sqlite_users_survive_a_restart(embedder: Embedder, tmp_path: Path) -> None:
    with app_client(embedder, state_dir=tmp_path) as client:
        client.put("/v1/users/ann", json={"history": history_json("long")[:2]})
    with app_client(embedder, state_dir=tmp_path) as client:
        got = client.get("/v1/users/ann").json()
    assert got["pairs"] == 2 and got["version"] == 1
    assert (tmp_path / "users.sqlite3").exists()


def test_redis_users_survive_a_restart_and_are_shared(
    embedder: Embedder, tmp_path: Path, redis: RedisServer
) -> None:
    with app_client(embedder, state_dir=tmp_path, redis_url=redis.url) as client:
        client.put("/v1/users/ann", json={"history": history_json("long")[:2]})
    with app_client(embedder, state_dir=tmp_path, redis_url=redis.url) as client:
        got = client.get("/v1/users/ann").json()
        wait_ready(client)
        assert score(client, "ann")["history"]["source"] == "stored"
    assert got["pairs"] == 2
    assert not (tmp_path / "users.sqlite3").exists()  # Redis, not the SQLite file
