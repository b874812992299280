from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.params import load_params
from service.core.config import Settings
from service.core.embedder import Embedder
from tests.helpers import wait_ready


@pytest.fixture
def settings() -> Settings:
    return Settings(max_candidates=4, max_history=5, max_text_chars=2_000, max_body_bytes=50_000)


@pytest.fixture
def client(embedder: Embedder, settings: Settings) -> Iterator[TestClient]:
    """The real app on the embedded backend (the session's MiniLM, so no reload per test)."""
    app = create_app(settings, backend=EmbeddedBackend(lambda: embedder, load_params()))
    with TestClient(app, raise_server_exceptions=False) as c:
        wait_ready(c)
        yield c
