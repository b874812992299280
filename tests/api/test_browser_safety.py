"""What a browser may do with the service: no cross-site simple posts, CORS only when listed,
security headers everywhere, and docs that can be turned off."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.params import load_params
from service.core.config import Settings
from service.core.embedder import Embedder
from tests.api.test_auth import score_body
from tests.helpers import wait_ready

SITE = "https://evil.example"
TOOL = "https://ranker.example"


def _client(embedder: Embedder, **settings: Any) -> TestClient:
    app = create_app(Settings(**settings), backend=EmbeddedBackend(lambda: embedder, load_params()))
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def client(embedder: Embedder) -> Iterator[TestClient]:
    with _client(embedder) as c:
        wait_ready(c)
        yield c


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
def test_only_json_bodies_are_read(client: TestClient, content_type: str | None) -> None:
    """The types a page may post cross-site without a preflight are refused, unread."""
    headers = {"content-type": content_type} if content_type else {}
    body = json.dumps(score_body(history=[])).encode()
    r = client.post("/v1/score", content=body, headers=headers | {"origin": SITE})
    assert r.status_code == 415 and r.json()["error"]["type"] == "unsupported_media_type"
    r = client.put("/v1/users/u", content=b'{"history": []}', headers=headers)
    assert r.status_code == 415
    ok = client.post("/v1/score", content=body, headers={"content-type": "application/json"})
    assert ok.status_code == 200


def test_no_cors_by_default(client: TestClient) -> None:
    r = client.post("/v1/score", json=score_body(history=[]), headers={"origin": SITE})
    assert "access-control-allow-origin" not in r.headers
    preflight = client.options(
        "/v1/score",
        headers={"origin": SITE, "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_allows_only_the_listed_origins(embedder: Embedder) -> None:
    with _client(embedder, cors_origins=TOOL) as client:
        wait_ready(client)
        ask = {
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type",
        }
        allowed = client.options("/v1/score", headers={"origin": TOOL} | ask)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == TOOL
        refused = client.options("/v1/score", headers={"origin": SITE} | ask)
        assert refused.headers.get("access-control-allow-origin") != SITE
        r = client.post("/v1/score", json=score_body(history=[]), headers={"origin": TOOL})
        assert r.headers["access-control-allow-origin"] == TOOL
    with pytest.raises(ValueError, match="list the origins"):
        Settings(cors_origins="*")


def test_security_headers_on_every_response(client: TestClient) -> None:
    for r in (
        client.get("/healthz"),
        client.get("/no/such/page"),
        client.post("/v1/score", json=score_body(history=[])),
        client.get("/docs"),
    ):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    strict = client.get("/healthz").headers["content-security-policy"]
    assert "default-src 'self'" in strict and "unsafe-inline" not in strict


def test_docs_can_be_turned_off(embedder: Embedder) -> None:
    with _client(embedder, docs_enabled=False) as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert client.get(path).status_code == 404
    with _client(embedder) as client:
        assert client.get("/openapi.json").status_code == 200
        assert "HTTPBearer" in client.get("/openapi.json").json()["components"]["securitySchemes"]
