"""GET /ui: three static files any browser may load, under the strict CSP, holding no data and
no inline code; everything the page shows comes through the API and its keys."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.params import load_params
from service.core.config import Settings
from service.core.embedder import Embedder
from tests.api.test_auth import score_body
from tests.helpers import api_keys, wait_ready

ASSETS = {
    "/ui": "text/html",
    "/ui/app.js": "text/javascript",
    "/ui/app.css": "text/css",
}


@pytest.mark.parametrize(("path", "media_type"), ASSETS.items())
def test_the_page_and_its_assets_are_served_under_the_strict_policy(
    client: TestClient, path: str, media_type: str
) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(media_type)
    policy = r.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "cdn" not in policy
    assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-cache"


def test_nothing_else_under_ui_and_not_in_the_api_schema(client: TestClient) -> None:
    for path in ("/ui/index.html", "/ui/../pyproject.toml", "/ui/static/app.js"):
        assert client.get(path).status_code == 404
    assert not any(p.startswith("/ui") for p in client.get("/openapi.json").json()["paths"])


def test_the_page_has_no_inline_code_and_loads_nothing_from_elsewhere(client: TestClient) -> None:
    html = client.get("/ui").text
    assert re.findall(r"<script\b[^>]*>", html) == ['<script src="ui/app.js" defer>']
    assert "<style" not in html and not re.search(r"\sstyle\s*=", html)
    assert not re.search(r"\son[a-z]+\s*=", html)  # no inline event handlers
    for path in ASSETS:
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]", client.get(path).text), path
    css = client.get("/ui/app.css").text
    assert "@import" not in css and "url(" not in css and "@font-face" not in css


def test_the_script_never_parses_text_as_markup(client: TestClient) -> None:
    """API answers and report files go in with textContent: nothing a user or a model wrote can
    become markup, and the CSP would block what inline code got through anyway."""
    script = client.get("/ui/app.js").text
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink
    assert "new Function" not in script and 'setAttribute("style"' not in script


def test_a_keyed_server_serves_the_shell_but_no_data_without_a_key(embedder: Embedder) -> None:
    """A navigation cannot send a bearer header, so the shell is open; the calls it makes are not."""
    keys = api_keys({"name": "ui", "secret": "s3cret"})
    app = create_app(
        Settings(api_keys=keys), backend=EmbeddedBackend(lambda: embedder, load_params())
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_ready(client)
        for path in ASSETS:
            r = client.get(path)
            assert r.status_code == 200 and "s3cret" not in r.text
        refused = client.post("/v1/score", json=score_body(history=[]))
        assert refused.status_code == 401
        assert "needs an API key" in refused.json()["error"]["message"]
        assert client.get("/v1/users/playground").status_code == 401
        ok = client.post(
            "/v1/score", json=score_body(history=[]), headers={"Authorization": "Bearer s3cret"}
        )
        assert ok.status_code == 200
