"""`pgenrm serve` with a prototype artefact: versions reported, cold start, hot reload under load."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from prototypes.artifact import LATEST, latest_version
from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.params import load_params
from service.core.embedder import Embedder
from service.testing.server_process import served as served_process
from tests.helpers import LONG, SHORT, api_keys, bearer, history_json
from tests.prototypes.test_artifact import learn_fixture_artefact

pytestmark = pytest.mark.slow  # real subprocesses or learning: the full tier only

TOKEN = "test-admin-token"
TRAINER = bearer("test-trainer-key")


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
) -> Iterator[tuple[str, Path]]:
    backend = EmbeddedBackend(lambda: embedder, load_params())
    asyncio.run(backend.start())
    root = learn_fixture_artefact(tmp_path_factory.mktemp("served"), backend)
    env = {
        "PGENRM_PROTOTYPES_DIR": str(root),
        "PGENRM_PROTOTYPES_WATCH_S": "0",
        "PGENRM_API_KEYS": api_keys(
            {"name": "ops", "secret": TOKEN, "scopes": ["admin"]},
            # The hot-reload test sends as fast as the server answers: this key's limits must
            # not be what it meets (a quiet machine passed the default rate: 429s).
            {
                "name": "trainer",
                "secret": "test-trainer-key",
                "scopes": ["score"],
                "limits": {"requests_per_s": 1e6, "cost_per_minute": 10**12},
            },
        ),
    }
    with served_process(env) as url:
        yield url, root


def body(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "user_id": "terse-a",
        "history": history_json("short")[:3],
        "prompt": "How long should I steep green tea?",
        "candidates": [LONG, SHORT],
        "scaling": {"ind": 2, "pro": 2},
        "return_traces": "none",
    }
    return base | overrides


def test_versions_are_reported_and_pro_samples_run(served: tuple[str, Path]) -> None:
    url, root = served
    ready = httpx.get(f"{url}/readyz").json()
    assert ready["prototypes_version"] == latest_version(root)
    out = httpx.post(f"{url}/v1/score", json=body(), headers=TRAINER, timeout=30).json()
    assert out["prototypes_version"] == latest_version(root)
    assert out["samples"]["pro"] == {"requested": 2, "valid": 2, "failed": 0, "failures": {}}
    traces = httpx.post(
        f"{url}/v1/score", json=body(return_traces="samples"), headers=TRAINER, timeout=30
    ).json()
    sources = [s["source"] for s in traces["traces"]["samples"] if s["level"] == "pro"]
    assert len(sources) == 2 and all(s.startswith("prototype-") for s in sources)
    assert not any("terse" in s or "verbose" in s for s in sources)  # no user ids leak


def test_cold_start_is_prototype_level_only(served: tuple[str, Path]) -> None:
    url, _ = served
    out = httpx.post(
        f"{url}/v1/score",
        json=body(user_id="brand-new", history=[], scaling=None),
        headers=TRAINER,
        timeout=30,
    ).json()
    assert out["cold_start"] is True
    assert out["samples"]["ind"]["requested"] == 0 and out["samples"]["pro"]["valid"] == 4


def test_reload_needs_an_admin_key(served: tuple[str, Path]) -> None:
    url, _ = served
    r = httpx.post(f"{url}/v1/admin/prototypes/reload")
    assert r.status_code == 401 and r.json()["error"]["type"] == "unauthorized"
    r = httpx.post(f"{url}/v1/admin/prototypes/reload", headers=TRAINER)
    assert r.status_code == 403 and r.json()["error"]["type"] == "forbidden"


async def test_hot_reload_under_concurrent_requests_drops_nothing(served: tuple[str, Path]) -> None:
    url, root = served
    old = latest_version(root)
    assert old is not None
    new = f"{old}-next"
    shutil.copytree(root / old, root / new)
    manifest = json.loads((root / new / "manifest.json").read_text())
    (root / new / "manifest.json").write_text(json.dumps({**manifest, "version": new}))
    statuses: list[int] = []
    versions: list[str] = []
    stop = asyncio.Event()

    async with httpx.AsyncClient(timeout=60) as client:

        async def hammer(i: int) -> None:
            while not stop.is_set():
                r = await client.post(
                    f"{url}/v1/score", json=body(user_id=f"u{i % 5}"), headers=TRAINER
                )
                statuses.append(r.status_code)
                if r.status_code == 200:
                    versions.append(r.json()["prototypes_version"])

        workers = [asyncio.create_task(hammer(i)) for i in range(8)]
        await asyncio.sleep(1.0)
        (root / LATEST).write_text(new + "\n")
        reload = await client.post(
            f"{url}/v1/admin/prototypes/reload", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*workers)
    assert reload.status_code == 200 and reload.json() == {
        "previous": old,
        "version": new,
        "changed": True,
    }
    assert statuses and set(statuses) == {200}, (
        f"{len(statuses)} requests, statuses {set(statuses)}"
    )
    assert old in versions and new in versions and versions[-1] == new
