"""The prototype artefact on disk, shared by the learning job and the server.

One directory per version under a root, plus a `LATEST` file naming the newest complete one;
the learn job writes a version into a temporary directory and renames it into place before
updating `LATEST`, so a server never sees half an artefact. Every file's SHA-256 is in the
manifest and checked on load.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from prototypes.index import ProfileIndex

FORMAT = 1
LATEST = "LATEST"
F32 = npt.NDArray[np.float32]
# One history pair as JSON: {"context": [{"role", "content"}, ...], "chosen": str, "rejected": str}.
# The artefact stores pairs as the rows gave them; the server turns them into its own types.
JSONPair = dict[str, Any]


class ArtifactError(ValueError):
    """Unreadable, incomplete or mismatched artefact: the message says which and why."""


@dataclass(frozen=True)
class UserEntry:
    user_id: str
    prototype: int
    pairs: tuple[JSONPair, ...]
    pair_prompts: F32  # (n_pairs, d): embeddings of each pair's prompt, to pick relevant shots


@dataclass(frozen=True)
class Artifact:
    version: str
    manifest: dict[str, Any]
    prototypes: F32
    users: list[UserEntry]
    index: ProfileIndex
    row_of: dict[str, int]  # user id -> row

    @property
    def embedder(self) -> tuple[str, int]:
        return self.manifest["embedder"]["name"], int(self.manifest["embedder"]["dim"])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checked(pair: object) -> JSONPair:
    if not isinstance(pair, dict):
        raise ValueError("a history pair is not a JSON object")
    ok = (
        isinstance(pair.get("chosen"), str)
        and isinstance(pair.get("rejected"), str)
        and isinstance(pair.get("context"), list)
        and all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in pair["context"])
    )
    if not ok:
        raise ValueError("a history pair lacks context, chosen or rejected")
    return pair


def write_artifact(
    root: Path,
    *,
    manifest: dict[str, Any],
    prototypes: F32,
    prototypes_init: F32,
    profiles: F32,
    users: Sequence[UserEntry],
    index: ProfileIndex,
) -> Path:
    """Write a new version under `root` and point LATEST at it; returns its directory."""
    root.mkdir(parents=True, exist_ok=True)
    version = time.strftime("v%Y%m%d-%H%M%S", time.gmtime()) + f"-{os.getpid()}"
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        np.save(staging / "prototypes.npy", prototypes.astype(np.float32))
        np.save(staging / "prototypes_init.npy", prototypes_init.astype(np.float32))
        np.save(staging / "profiles.npy", profiles.astype(np.float32))
        offsets = np.cumsum([0, *(len(u.pairs) for u in users)])
        prompts = np.concatenate([u.pair_prompts for u in users]) if users else np.zeros((0, 1))
        np.save(staging / "pair_prompts.npy", prompts.astype(np.float16))
        with gzip.open(staging / "users.jsonl.gz", "wt", encoding="utf-8") as handle:
            for i, u in enumerate(users):
                row = {
                    "user_id": u.user_id,
                    "prototype": u.prototype,
                    "offset": int(offsets[i]),
                    "pairs": list(u.pairs),
                }
                handle.write(json.dumps(row) + "\n")
        if index.kind == "ivf":
            index.write(str(staging / "index.faiss"))
        files = {p.name: _sha256(p) for p in sorted(staging.iterdir())}
        full = {
            **manifest,
            "format": FORMAT,
            "version": version,
            "index": index.kind,
            "files": files,
        }
        (staging / "manifest.json").write_text(json.dumps(full, indent=2, sort_keys=True))
        target = root / version
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    pointer = root / f".{LATEST}.tmp"
    pointer.write_text(version + "\n")
    pointer.replace(root / LATEST)  # atomic on POSIX
    return target


def latest_version(root: Path) -> str | None:
    try:
        return (root / LATEST).read_text().strip() or None
    except FileNotFoundError:
        return None


def read_artifact(root: Path, version: str | None = None) -> Artifact:
    version = version or latest_version(root)
    if version is None:
        raise ArtifactError(
            f"{root}: no prototype artefact (no {LATEST} file); run `pgenrm prototypes learn`"
        )
    folder = root / version
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ArtifactError(f"{folder}: unreadable manifest: {error}") from error
    if manifest.get("format") != FORMAT:
        raise ArtifactError(f"{folder}: artefact format {manifest.get('format')}, need {FORMAT}")
    for name, digest in manifest.get("files", {}).items():
        path = folder / name
        if not path.exists() or _sha256(path) != digest:
            raise ArtifactError(f"{folder}: {name} is missing or fails its checksum")
    try:
        prototypes = np.load(folder / "prototypes.npy")
        profiles = np.load(folder / "profiles.npy")
        prompts = np.load(folder / "pair_prompts.npy").astype(np.float32)
        users = []
        with gzip.open(folder / "users.jsonl.gz", "rt", encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                pairs = tuple(_checked(p) for p in row["pairs"])
                start = row["offset"]
                users.append(
                    UserEntry(
                        row["user_id"],
                        int(row["prototype"]),
                        pairs,
                        prompts[start : start + len(pairs)],
                    )
                )
    except (OSError, ValueError, KeyError) as error:
        raise ArtifactError(f"{folder}: corrupt artefact: {error}") from error
    assignment = np.array([u.prototype for u in users], dtype=np.int64)
    index_path = folder / "index.faiss"
    index = ProfileIndex.read(
        prototypes, profiles, assignment, str(index_path) if index_path.exists() else None
    )
    return Artifact(
        version=version,
        manifest=manifest,
        prototypes=prototypes,
        users=users,
        index=index,
        row_of={u.user_id: i for i, u in enumerate(users)},
    )
