"""No filesystem path in a public response: /readyz (ready, or after a failed start-up) and the
reload endpoint's errors name versions and error kinds; the log says where."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from prototypes.artifact import LATEST
from service.app import create_app
from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.params import load_params
from service.core.config import Settings
from service.core.embedder import Embedder
from service.core.keys import digest
from service.engine.backend import Backend
from tests.helpers import wait_ready
from tests.prototypes.tiny import copy_version, write_tiny_artefact

ADMIN_SECRET = "pgk_test-admin-secret"
ADMIN_KEYS = json.dumps(
    {
        "keys": [
            {"name": "ops", "tenant": "ops", "sha256": digest(ADMIN_SECRET), "scopes": ["admin"]}
        ]
    }
)


def assert_no_path(text: str, *paths: Path) -> None:
    for path in paths:
        for form in {str(path), str(path.resolve())}:
            assert form not in text, f"{form} in {text}"


@pytest.fixture
def embedded(embedder: Embedder) -> EmbeddedBackend:
    return EmbeddedBackend(lambda: embedder, load_params())


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "protos"
    write_tiny_artefact(root)
    return root


@contextmanager
def started(settings: Settings, backend: Backend) -> Iterator[TestClient]:
    with TestClient(create_app(settings, backend=backend), raise_server_exceptions=False) as c:
        yield c


def failed_readyz(client: TestClient) -> str:
    """The /readyz body once start-up has failed (it loads in the background)."""
    for _ in range(600):
        r = client.get("/readyz")
        if "start-up failed" in r.text:
            assert r.status_code == 503 and r.json()["error"]["type"] == "unavailable"
            return r.text
    raise AssertionError(f"start-up did not fail: {r.text}")


def test_readyz_and_reload_errors_name_no_path(
    embedded: EmbeddedBackend, root: Path, tmp_path: Path
) -> None:
    settings = Settings(prototypes_dir=root, prototypes_watch_s=0, api_keys=ADMIN_KEYS)
    admin = {"Authorization": f"Bearer {ADMIN_SECRET}"}
    with started(settings, embedded) as client:
        wait_ready(client)
        ready = client.get("/readyz")
        version = ready.json()["prototypes_version"]
        assert ready.status_code == 200 and version
        assert_no_path(ready.text, tmp_path)

        outside = tmp_path / "elsewhere"
        write_tiny_artefact(outside)
        for escape in (f"../elsewhere/{version}", str(outside / LATEST), "/etc"):
            (root / LATEST).write_text(escape + "\n")
            r = client.post("/v1/admin/prototypes/reload", headers=admin)
            assert r.status_code == 422 and "LATEST does not name" in r.json()["error"]["message"]
            assert_no_path(r.text, tmp_path)
        copy_version(root, version, "v-broken")
        (root / "v-broken" / "manifest.json").write_text("{")
        r = client.post("/v1/admin/prototypes/reload", headers=admin)
        assert r.status_code == 422 and "v-broken: unreadable manifest" in r.text
        assert_no_path(r.text, tmp_path)
        ready = client.get("/readyz")  # still serving the version it had
        assert ready.status_code == 200 and ready.json()["prototypes_version"] == version
        assert_no_path(ready.text, tmp_path)


def _escape_absolute(root: Path) -> None:
    outside = root.parent / "elsewhere"
    version = write_tiny_artefact(outside)
    (root / LATEST).write_text(str(outside / version) + "\n")


def _escape_relative(root: Path) -> None:
    version = write_tiny_artefact(root.parent / "elsewhere")
    (root / LATEST).write_text(f"../elsewhere/{version}\n")


def _no_latest(root: Path) -> None:
    (root / LATEST).unlink()


@pytest.mark.parametrize("spoil", [_escape_absolute, _escape_relative, _no_latest])
def test_an_artefact_refused_at_start_up_is_reported_without_its_path(
    embedded: EmbeddedBackend, root: Path, tmp_path: Path, spoil: Callable[[Path], None]
) -> None:
    spoil(root)
    with started(Settings(prototypes_dir=root, prototypes_watch_s=0), embedded) as client:
        text = failed_readyz(client)
        assert "prototype artefact refused" in text
        assert_no_path(text, tmp_path)


class BrokenStart(EmbeddedBackend):
    def __init__(self, where: Path, embedder: Embedder) -> None:
        super().__init__(lambda: embedder, load_params())
        self.where = where

    async def start(self) -> None:
        raise FileNotFoundError(2, "No such file or directory", str(self.where / "weights.bin"))


def test_a_failed_start_up_names_the_error_kind_not_its_path(
    embedder: Embedder, tmp_path: Path
) -> None:
    with started(Settings(), BrokenStart(tmp_path / "models", embedder)) as client:
        text = failed_readyz(client)
        assert "FileNotFoundError" in text and "server log" in text
        assert_no_path(text, tmp_path)
