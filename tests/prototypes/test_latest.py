"""LATEST names a version directory inside the artefact root, nothing else; errors name no path."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from prototypes.artifact import LATEST, ArtifactError, read_artifact
from service.neighbours.store import PrototypeStore
from tests.prototypes.tiny import EMBEDDER, copy_version, write_tiny_artefact


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path, str]:
    """(root with one valid version, a valid artefact outside it, the root's version)."""
    root, outside = tmp_path / "protos", tmp_path / "elsewhere"
    version = write_tiny_artefact(root)
    write_tiny_artefact(outside)
    return root, outside, version


REFUSED = r"LATEST does not name|outside the prototypes"
Escape = Callable[[Path, Path], str]  # (root, outside) -> what LATEST says


def _outside_version(outside: Path) -> Path:
    return next(p for p in outside.iterdir() if p.is_dir() and not p.name.startswith("."))


def _symlink(root: Path, outside: Path) -> str:
    (root / "linked").symlink_to(_outside_version(outside), target_is_directory=True)
    return "linked"


ESCAPES: dict[str, Escape] = {
    "relative": lambda root, outside: f"../{outside.name}/{_outside_version(outside).name}",
    "absolute": lambda root, outside: str(_outside_version(outside)),
    "dot-dot": lambda root, outside: "..",
    "etc": lambda root, outside: "../../../../../../etc",
    "hidden": lambda root, outside: ".staging-x",
    "symlink out": _symlink,
}


def _assert_no_path(error: BaseException, *paths: Path) -> None:
    for path in paths:
        for form in {str(path), str(path.resolve())}:
            assert form not in str(error), f"{form} in {error}"


@pytest.mark.parametrize("escape", list(ESCAPES))
async def test_latest_outside_the_root_is_refused_at_load(
    trees: tuple[Path, Path, str], tmp_path: Path, escape: str
) -> None:
    root, outside, _ = trees
    (root / LATEST).write_text(ESCAPES[escape](root, outside) + "\n")
    with pytest.raises(ArtifactError, match=REFUSED) as e:
        read_artifact(root)
    _assert_no_path(e.value, tmp_path)
    store = PrototypeStore(root, EMBEDDER)
    with pytest.raises(ArtifactError, match=REFUSED) as e:
        await store.reload()
    _assert_no_path(e.value, tmp_path)
    assert store.current is None


@pytest.mark.parametrize("escape", list(ESCAPES))
async def test_latest_outside_the_root_is_refused_at_reload(
    trees: tuple[Path, Path, str], tmp_path: Path, escape: str
) -> None:
    root, outside, version = trees
    store = PrototypeStore(root, EMBEDDER)
    assert await store.reload() == (None, version)
    (root / LATEST).write_text(ESCAPES[escape](root, outside) + "\n")
    with pytest.raises(ArtifactError) as e:
        await store.reload()
    _assert_no_path(e.value, tmp_path)
    assert store.current is not None and store.current.version == version  # still serving it


async def test_the_watcher_keeps_serving_past_a_bad_latest_and_takes_the_next_good_one(
    trees: tuple[Path, Path, str],
) -> None:
    root, outside, version = trees
    store = PrototypeStore(root, EMBEDDER)
    await store.reload()
    (root / LATEST).write_text(ESCAPES["relative"](root, outside) + "\n")
    store.watch(0.02)
    try:
        await asyncio.sleep(0.2)  # several polls over the bad LATEST; the watcher survives them
        assert store.current is not None and store.current.version == version
        copy_version(root, version, f"{version}-next")
        deadline = time.monotonic() + 30  # a generous safety limit, not a latency bound
        while store.current.version != f"{version}-next":
            assert time.monotonic() < deadline, "the watcher never loaded the good version"
            await asyncio.sleep(0.02)
    finally:
        await store.close()


def test_a_manifest_naming_a_file_outside_its_version_is_refused(
    trees: tuple[Path, Path, str], tmp_path: Path
) -> None:
    root, _, version = trees
    manifest_path = root / version / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["../../elsewhere/LATEST"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="lists a file outside it") as e:
        read_artifact(root)
    _assert_no_path(e.value, tmp_path)


def test_broken_artefacts_are_reported_without_paths(
    trees: tuple[Path, Path, str], tmp_path: Path
) -> None:
    root, _, version = trees
    empty = tmp_path / "empty"
    with pytest.raises(ArtifactError, match="no prototype artefact") as e:
        read_artifact(empty)
    _assert_no_path(e.value, tmp_path)
    copy_version(root, version, "v-missing")
    (root / "v-missing" / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="v-missing: unreadable manifest") as e:
        read_artifact(root)
    _assert_no_path(e.value, tmp_path)
    copy_version(root, version, "v-tampered")
    (root / "v-tampered" / "profiles.npy").write_bytes(b"tampered")
    with pytest.raises(ArtifactError, match="checksum") as e:
        read_artifact(root)
    _assert_no_path(e.value, tmp_path)
    copy_version(root, version, "v-corrupt")
    manifest = json.loads((root / "v-corrupt" / "manifest.json").read_text())
    (root / "v-corrupt" / "users.jsonl.gz").write_bytes(b"not gzip")
    manifest["files"].pop("users.jsonl.gz")
    (root / "v-corrupt" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="corrupt artefact") as e:
        read_artifact(root)
    _assert_no_path(e.value, tmp_path)


async def test_an_embedder_mismatch_names_the_version_not_the_path(
    trees: tuple[Path, Path, str], tmp_path: Path
) -> None:
    root, _, version = trees
    store = PrototypeStore(root, ("Qwen3-Embedding-0.6B", 1024))
    with pytest.raises(ArtifactError, match=f"version {version} .*PGENRM_EMBEDDER") as e:
        await store.reload()
    _assert_no_path(e.value, tmp_path)
