"""The prototype artefact on disk, shared by the learning job and the server.

One directory per version under a root, plus a `LATEST` file naming the newest complete one;
the learn job writes a version into a temporary directory and renames it into place before
updating `LATEST`, so a server never sees half an artefact. Every file's SHA-256 is in the
manifest and checked on load. `LATEST` (and the manifest's file names) may only name plain
entries inside the root: a pointer to `../..`, an absolute path or a symlink out is refused.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
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
# Readable by every user: the serving user is rarely the one that ran the learn job.
_DIR_MODE = 0o755
_FILE_MODE = 0o644
F32 = npt.NDArray[np.float32]
# One history pair as JSON: {"context": [{"role", "content"}, ...], "chosen": str, "rejected": str}.
# The artefact stores pairs as the rows gave them; the server turns them into its own types.
JSONPair = dict[str, Any]


# A version (or a file in one) is one plain name: no separators, no `..`, not hidden (staging
# directories are).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


class ArtifactError(ValueError):
    """Unreadable, incomplete or mismatched artefact: the message says which and why.

    The message names versions and file names, never a filesystem path, because it reaches
    API clients (/readyz, the reload endpoint); `path` says where, for the log.
    """

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


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
    """Write a new version under `root` and point LATEST at it; returns its directory.

    Whatever the writer's umask, the version is readable by everyone (directories 0755, files
    0644): the gateways that mount it run as another user (uid 10001 in the image) than the
    learn job, and mkdtemp's 0700 would lock them out."""
    if not root.is_dir():
        root.mkdir(parents=True)
        root.chmod(_DIR_MODE)
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
        for path in staging.iterdir():
            path.chmod(_FILE_MODE)
        staging.chmod(_DIR_MODE)
        target = root / version
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    pointer = root / f".{LATEST}.tmp"
    pointer.write_text(version + "\n")
    pointer.chmod(_FILE_MODE)
    pointer.replace(root / LATEST)  # atomic on POSIX
    return target


def latest_version(root: Path) -> str | None:
    """What LATEST says, unchecked (`version_dir` checks it before anything is read)."""
    try:
        return (root / LATEST).read_text().strip() or None
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise ArtifactError(f"{LATEST} is unreadable ({_why(error, root)})", root) from error


def version_dir(root: Path, version: str) -> Path:
    """The directory of `version`, which must be a version directory directly inside `root`:
    LATEST (or a caller) naming `../..`, an absolute path or a symlink out is refused."""
    folder = root / version  # for the log only until checked
    if not _NAME.fullmatch(version):  # its text is a path: the message must not repeat it
        raise ArtifactError(
            f"{LATEST} does not name a version directory (one plain name inside the prototypes "
            "directory, written by `pgenrm prototypes learn`)",
            folder,
        )
    if folder.resolve().parent != root.resolve():
        raise ArtifactError(f"version {version} leads outside the prototypes directory", folder)
    return folder


def _why(error: BaseException, root: Path) -> str:
    """An error's text without the paths it may carry (an OSError's names its file)."""
    if isinstance(error, OSError):
        return error.strerror or type(error).__name__
    text = f"{type(error).__name__}: {error}"
    for prefix in {str(root.resolve()), str(root)}:
        text = text.replace(prefix, "<prototypes>")
    return text


def read_artifact(root: Path, version: str | None = None) -> Artifact:
    version = version or latest_version(root)
    if version is None:
        raise ArtifactError(
            f"no prototype artefact (no {LATEST} file); run `pgenrm prototypes learn`", root
        )
    folder = version_dir(root, version)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ArtifactError(
            f"version {version}: unreadable manifest ({_why(error, root)})", folder
        ) from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ArtifactError(f"version {version}: artefact format {found}, need {FORMAT}", folder)
    files = manifest.get("files", {})
    if not isinstance(files, dict):
        raise ArtifactError(f"version {version}: the manifest's file list is not a mapping", folder)
    for name, digest in files.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ArtifactError(f"version {version}: the manifest lists a file outside it", folder)
        path = folder / name
        if not path.is_file() or _sha256(path) != digest:
            raise ArtifactError(
                f"version {version}: {name} is missing or fails its checksum", folder
            )
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
        raise ArtifactError(
            f"version {version}: corrupt artefact ({_why(error, root)})", folder
        ) from error
    assignment = np.array([u.prototype for u in users], dtype=np.int64)
    index_path = folder / "index.faiss"
    try:
        index = ProfileIndex.read(
            prototypes, profiles, assignment, str(index_path) if index_path.exists() else None
        )
    except (RuntimeError, OSError, ValueError) as error:  # faiss says RuntimeError
        raise ArtifactError(
            f"version {version}: unreadable index ({_why(error, root)})", folder
        ) from error
    return Artifact(
        version=version,
        manifest=manifest,
        prototypes=prototypes,
        users=users,
        index=index,
        row_of={u.user_id: i for i, u in enumerate(users)},
    )
