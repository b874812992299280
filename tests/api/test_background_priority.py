"""Expensive calls run at background priority: their embedding batches wait for cheaper calls'
and run on lowered-priority threads (service/core/priority.py)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient

from service.api._cost import score_cost
from service.api.schemas.score import ScoreRequest
from service.app import create_app
from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.params import load_params
from service.core.config import Settings
from service.core.embedder import Embedder, SentenceTransformerEmbedder
from tests.helpers import wait_ready


def fresh_body(pairs: int) -> dict[str, Any]:
    """New text every time, so the embedder cannot answer from its cache."""
    word = uuid.uuid4().hex
    return {
        "user_id": "alice",
        "prompt": f"How do I {word}?",
        "candidates": [f"Short {word}.", f"A longer answer about {word}, with details."],
        "history": [
            {"prompt": f"q{i} {word}", "chosen": f"yes {i} {word}", "rejected": f"no {i} {word}"}
            for i in range(pairs)
        ],
        "scaling": {"ind": 2},
        "return_traces": "none",
    }


def background_batches(embedder: Embedder) -> int:
    assert isinstance(embedder, SentenceTransformerEmbedder)
    return embedder._split.background_batches + embedder._plain.background_batches


def test_only_expensive_calls_run_at_background_priority(embedder: Embedder) -> None:
    settings = Settings()
    small, large = fresh_body(2), fresh_body(40)
    threshold = score_cost(ScoreRequest.model_validate(large), settings)
    assert score_cost(ScoreRequest.model_validate(small), settings) < threshold
    backend = EmbeddedBackend(lambda: embedder, load_params(), background_nice=5)
    app = create_app(Settings(expensive_cost=threshold), backend=backend)
    with TestClient(app) as client:
        wait_ready(client)
        before = background_batches(embedder)
        assert client.post("/v1/score", json=small).status_code == 200
        assert background_batches(embedder) == before  # a cheap call stays in the foreground
        assert client.post("/v1/score", json=large).status_code == 200
        # 80 history texts + 2 candidates in background chunks of 4
        assert background_batches(embedder) - before >= 80 // 4
