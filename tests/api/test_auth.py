"""API keys: 401 without one, 403 without the scope, tenants walled off, admin closed by default."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.params import load_params
from service.core.config import Settings
from service.core.embedder import Embedder
from tests.helpers import LONG, SHORT, api_keys, bearer, history_json, wait_ready

A = bearer("secret-of-team-a")
B = bearer("secret-of-team-b")
READER = bearer("secret-of-a-scorer")  # team a, score only
OPS = bearer("secret-of-ops")
KEYS = api_keys(
    {"name": "a", "secret": "secret-of-team-a", "tenant": "team-a"},
    {"name": "b", "secret": "secret-of-team-b", "tenant": "team-b"},
    {"name": "a-scorer", "secret": "secret-of-a-scorer", "tenant": "team-a", "scopes": ["score"]},
    {"name": "ops", "secret": "secret-of-ops", "scopes": ["admin"]},
)


def _client(embedder: Embedder, **settings: Any) -> TestClient:
    app = create_app(Settings(**settings), backend=EmbeddedBackend(lambda: embedder, load_params()))
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def keyed(embedder: Embedder) -> Iterator[TestClient]:
    with _client(embedder, api_keys=KEYS) as client:
        wait_ready(client)
        yield client


def score_body(user_id: str = "alice", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "user_id": user_id,
        "prompt": "How long should I steep green tea?",
        "candidates": [LONG, SHORT],
        "scaling": {"ind": 2},
        "return_traces": "none",
    }
    return body | overrides


def user_body() -> dict[str, Any]:
    return {"history": history_json("short")[:2]}


def test_no_key_or_an_unknown_key_is_401_in_the_envelope(keyed: TestClient) -> None:
    for headers in ({}, bearer("not-a-key"), {"Authorization": "Basic YTpi"}):
        r = keyed.post("/v1/score", json=score_body(history=[]), headers=headers)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["type"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"
    assert keyed.get("/v1/users/alice").status_code == 401
    assert keyed.get("/healthz").status_code == 200  # probes stay open


def test_a_key_without_the_scope_is_403(keyed: TestClient) -> None:
    r = keyed.put("/v1/users/alice", json=user_body(), headers=READER)
    assert r.status_code == 403 and r.json()["error"]["type"] == "forbidden"
    assert "users" in r.json()["error"]["message"]
    r = keyed.post("/v1/score", json=score_body(history=[]), headers=OPS)
    assert r.status_code == 403
    assert keyed.post("/v1/score", json=score_body(history=[]), headers=READER).status_code == 200


def test_tenants_cannot_read_score_with_or_delete_each_others_users(keyed: TestClient) -> None:
    assert keyed.put("/v1/users/alice", json=user_body(), headers=A).status_code == 200
    # team b sees no alice: not to read, not to score with her history, not to delete
    r = keyed.get("/v1/users/alice", headers=B)
    assert r.status_code == 404 and "team-a" not in r.text
    r = keyed.post("/v1/score", json=score_body(), headers=B)
    assert r.status_code == 404 and r.json()["error"]["type"] == "unknown_user"
    assert keyed.delete("/v1/users/alice", headers=B).status_code == 404
    patch = {"append": history_json("long")[:1]}
    assert keyed.patch("/v1/users/alice", json=patch, headers=B).status_code == 404
    # team b's own alice is another user; team a's is untouched
    assert keyed.put("/v1/users/alice", json={"history": []}, headers=B).status_code == 200
    mine = keyed.get("/v1/users/alice", headers=A).json()
    assert mine["user_id"] == "alice" and mine["pairs"] == 2 and mine["version"] == 1
    scored = keyed.post("/v1/score", json=score_body(), headers=A)
    assert scored.status_code == 200 and scored.json()["history"]["source"] == "stored"
    # a key of the same tenant shares its users
    assert keyed.post("/v1/score", json=score_body(), headers=READER).status_code == 200
    assert keyed.delete("/v1/users/alice", headers=A).status_code == 200
    assert keyed.get("/v1/users/alice", headers=B).json()["pairs"] == 0


def test_idempotency_keys_do_not_cross_tenants(keyed: TestClient) -> None:
    retry = {"Idempotency-Key": "same-key"}
    first = keyed.post("/v1/score", json=score_body(history=[]), headers=A | retry)
    other = keyed.post(
        "/v1/score", json=score_body("bob", history=[]), headers=B | retry
    )  # a different body under the same key: only a conflict if the tenants shared keys
    assert first.status_code == other.status_code == 200
    assert other.json()["user_id"] == "bob" and "idempotent-replayed" not in other.headers


def test_control_characters_cannot_forge_a_tenant_namespace(keyed: TestClient) -> None:
    r = keyed.put("/v1/users/team-a%1Falice", json=user_body(), headers=B)
    assert r.status_code in (404, 422)
    r = keyed.post("/v1/score", json=score_body("team-a\x1falice"), headers=B)
    assert r.status_code == 422 and r.json()["error"]["field"] == "user_id"


def test_admin_api_needs_an_admin_key(keyed: TestClient, embedder: Embedder) -> None:
    reload = "/v1/admin/prototypes/reload"
    assert keyed.post(reload).status_code == 401
    assert keyed.post(reload, headers=A).status_code == 403
    assert keyed.post(reload, headers=OPS).status_code == 409  # open, but nothing loaded
    for keys in (None, api_keys({"name": "a", "secret": "s"})):  # no keys, or none admin
        with _client(embedder, api_keys=keys) as client:
            r = client.post(reload, headers=bearer("s"))
            assert r.status_code == 403 and "closed" in r.json()["error"]["message"]


def test_without_keys_everyone_is_the_default_tenant(embedder: Embedder) -> None:
    with _client(embedder) as client:
        wait_ready(client)
        assert client.put("/v1/users/carol", json=user_body()).status_code == 200
        assert client.post("/v1/score", json=score_body("carol")).status_code == 200
