"""`prototypes learn` end to end on a fixture, the artefact on disk, and neighbour retrieval."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from prototypes.artifact import ArtifactError, latest_version, read_artifact
from prototypes.index import ProfileIndex
from prototypes.learn import LearnConfig
from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.params import load_params
from service.core.embedder import Embedder
from service.core.inputs import PreferencePair
from service.neighbours.profiles import ProfileBuilder
from service.neighbours.source import PrototypeNeighbours
from service.neighbours.store import PrototypeStore
from service.offline.prototype_learning.job import JobConfig, learn_job
from tests.helpers import LONG, SHORT, prefers, synthetic_rows, task, write_jsonl

pytestmark = pytest.mark.slow  # real subprocesses or learning: the full tier only

USERS = ("terse-a", "terse-b", "terse-c", "verbose-a", "verbose-b", "verbose-c")


@pytest.fixture(scope="module")
def backend(embedder: Embedder) -> EmbeddedBackend:
    b = EmbeddedBackend(lambda: embedder, load_params())
    asyncio.run(b.start())  # the backend holds no loop-bound state
    return b


@pytest.fixture(scope="module")
def artefact(tmp_path_factory: pytest.TempPathFactory, backend: EmbeddedBackend) -> Path:
    return learn_fixture_artefact(tmp_path_factory.mktemp("protos"), backend)


def learn_fixture_artefact(root: Path, backend: EmbeddedBackend) -> Path:
    rows = synthetic_rows(per_user=12, test_per_user=2, users=USERS)
    data = write_jsonl(root / "rows.jsonl", rows)
    # 3x the paper's lr converges in 2 epochs; at 10x the prototypes drift off their members.
    config = JobConfig(learn=LearnConfig(k=2, epochs=2, lr=3e-3))
    job = learn_job([data], root / "artefact", backend, backend.embedder, config, progress=False)
    asyncio.run(job)
    return root / "artefact"


def test_artefact_tree_and_manifest(artefact: Path) -> None:
    version = latest_version(artefact)
    assert version is not None
    files = sorted(p.name for p in (artefact / version).iterdir())
    assert files == [
        "manifest.json",
        "pair_prompts.npy",
        "profiles.npy",
        "prototypes.npy",
        "prototypes_init.npy",
        "users.jsonl.gz",
    ]
    manifest = json.loads((artefact / version / "manifest.json").read_text())
    assert manifest["format"] == 1 and manifest["version"] == version
    assert manifest["embedder"] == {"name": "minilm", "dim": 384}
    assert manifest["k"] == 2 and manifest["index"] == "flat"
    assert manifest["counts"]["users"] == 6 and manifest["counts"]["analyses"] == 72
    assert manifest["splits_used"] == ["train", "val"] and len(manifest["data"][0]["sha256"]) == 64
    assert set(manifest["files"]) == set(files) - {"manifest.json"}
    assert {"l_cent", "l_tr", "rho", "history_k"} <= set(manifest["hyper_parameters"])
    assert manifest["analysis_backend"]["name"] == "embedded"
    prototypes = np.load(artefact / version / "prototypes.npy")
    assert prototypes.shape == (2, 384) and np.allclose(
        np.linalg.norm(prototypes, axis=1), 1, atol=1e-4
    )


def test_users_with_the_same_taste_share_a_prototype(artefact: Path) -> None:
    art = read_artifact(artefact)
    by_user = {u.user_id: u.prototype for u in art.users}
    assert len({by_user[u] for u in USERS[:3]}) == 1 and len({by_user[u] for u in USERS[3:]}) == 1
    assert by_user["terse-a"] != by_user["verbose-a"]


async def test_a_user_never_appears_among_its_own_neighbours(
    artefact: Path, backend: EmbeddedBackend
) -> None:
    store, source = await neighbour_source(artefact, backend, history_k=3)
    assert source.version == latest_version(artefact)
    for user in USERS:
        found = await source.neighbours(user, (), task(LONG, SHORT), m=5)
        rows = [store.current.row_of[u.user_id] for u in store.current.users]  # type: ignore[union-attr]
        assert len(found) == 5 and all(len(n.history) == 3 for n in found)
        assert all(user not in n.label for n in found)  # labels never carry user ids
        stored = store.current.users[store.current.row_of[user]].pairs  # type: ignore[union-attr]
        own = {PreferencePair.from_json(p) for p in stored}
        assert all(set(n.history).isdisjoint(own) for n in found), user
        assert rows
    # The nearest prototype's users come first: a terse user's first neighbours are terse too.
    first = await source.neighbours("terse-a", (), task(LONG, SHORT), m=2)
    terse_users = [u for u in store.current.users if u.user_id.startswith("terse")]  # type: ignore[union-attr]
    terse_pairs = {PreferencePair.from_json(p) for u in terse_users for p in u.pairs}
    assert all(set(n.history) <= terse_pairs for n in first)


async def test_unknown_users_are_placed_by_their_history_or_the_prompt(
    artefact: Path, backend: EmbeddedBackend
) -> None:
    _, source = await neighbour_source(artefact, backend, history_k=2)
    by_history = await source.neighbours("newcomer", prefers("short"), task(LONG, SHORT), m=2)
    cold = await source.neighbours("stranger", (), task(LONG, SHORT), m=2)
    assert len(by_history) == 2 and len(cold) == 2


def test_corrupt_or_mismatched_artefacts_are_clear_errors(artefact: Path, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no prototype artefact"):
        read_artifact(tmp_path)
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(artefact, copy)
    version = latest_version(copy)
    (copy / str(version) / "profiles.npy").write_bytes(b"tampered")
    with pytest.raises(ArtifactError, match="checksum"):
        read_artifact(copy)


async def test_embedder_mismatch_is_refused(artefact: Path) -> None:
    store = PrototypeStore(artefact, ("Qwen3-Embedding-0.6B", 1024))
    with pytest.raises(ArtifactError, match="PGENRM_EMBEDDER"):
        await store.reload()


def test_ivf_search_matches_exact_search_inside_the_nearest_prototype() -> None:
    rng = np.random.default_rng(0)
    prototypes = rng.normal(size=(8, 32)).astype(np.float32)
    prototypes /= np.linalg.norm(prototypes, axis=1, keepdims=True)
    profiles = (prototypes[rng.integers(0, 8, 2000)] + 0.3 * rng.normal(size=(2000, 32))).astype(
        np.float32
    )
    profiles /= np.linalg.norm(profiles, axis=1, keepdims=True)
    assignment = np.argmax(profiles @ prototypes.T, axis=1)
    flat = ProfileIndex.build(prototypes, profiles, assignment, ivf=False)
    ivf = ProfileIndex.build(prototypes, profiles, assignment, ivf=True)
    assert ivf.kind == "ivf" and flat.kind == "flat"
    for q in profiles[:50]:
        exact = [h.row for h in flat.search(q, 8, exclude={0})]
        approx = [h.row for h in ivf.search(q, 8, exclude={0})]
        assert exact == approx and 0 not in approx


async def neighbour_source(
    artefact: Path, backend: EmbeddedBackend, history_k: int
) -> tuple[PrototypeStore, PrototypeNeighbours]:
    store = PrototypeStore(artefact, ("minilm", 384))
    await store.reload()
    return store, PrototypeNeighbours(store, ProfileBuilder(backend, backend.embedder), history_k)
