"""Readiness: 503 with Retry-After until the backend is loaded, then 200."""

from __future__ import annotations

import asyncio
import gc
import threading

from fastapi.testclient import TestClient

from service.app import create_app
from service.core.config import Settings
from service.engine.backend import Completion, SampleGroup
from tests.engine.fakes import ScriptedBackend, chain_text
from tests.helpers import wait_ready


class SlowStart(ScriptedBackend):
    def __init__(self) -> None:
        super().__init__(lambda g, n: [chain_text(4, 6)] * g.n)
        self.release = threading.Event()
        self.loaded = False

    @property
    def ready(self) -> bool:
        return self.loaded

    async def start(self) -> None:
        await asyncio.to_thread(self.release.wait, 30)
        self.loaded = True

    async def generate(self, group: SampleGroup) -> list[Completion]:
        return await super().generate(group)


def test_not_ready_until_loaded() -> None:
    backend = SlowStart()
    with TestClient(create_app(Settings(), backend=backend)) as client:
        r = client.get("/readyz")
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert r.json()["error"]["type"] == "unavailable"
        assert client.get("/healthz").status_code == 200
        score = client.post(
            "/v1/score",
            json={"user_id": "u", "history": [], "prompt": "p", "candidates": ["a", "b"]},
        )
        assert score.status_code == 503 and "loading" in score.json()["error"]["message"]
        backend.release.set()
        wait_ready(client)
        ok = client.post(
            "/v1/score",
            json={"user_id": "u", "history": [], "prompt": "p", "candidates": ["a", "b"]},
        )
        assert ok.status_code == 200 and ok.json()["preferred"] == 1


class BrokenStart(SlowStart):
    async def start(self) -> None:
        raise OSError("embedder weights missing")


def test_failed_start_is_reported() -> None:
    with TestClient(create_app(Settings(), backend=BrokenStart())) as client:
        for _ in range(100):
            r = client.get("/readyz")
            if "start-up failed" in r.text:
                break
        # The error's kind only: its text may carry paths (tests/api/test_no_paths.py).
        assert r.status_code == 503 and "OSError" in r.json()["error"]["message"]


def test_a_workers_app_freezes_what_it_built_and_gives_it_back_when_it_stops() -> None:
    """A worker's app (`owns_process`) freezes what start-up built (gc.freeze, for the
    worker's lifetime); closed before its process ends it must unfreeze it, or every app a
    process runs stays in memory (the test suite reached 18 GB this way)."""
    with TestClient(create_app(Settings(), owns_process=True)) as client:
        wait_ready(client)
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_an_app_that_shares_its_process_freezes_nothing() -> None:
    """An app in a process it does not own (tests, an embedding app) leaves the collector
    alone: freezing would pin the host's objects, and collecting first walks its whole heap."""
    with TestClient(create_app(Settings())) as client:
        wait_ready(client)
        assert gc.get_freeze_count() == 0
    assert gc.get_freeze_count() == 0
