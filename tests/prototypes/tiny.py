"""A small valid prototype artefact written straight to disk (no learning, no embedder)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from prototypes.artifact import LATEST, UserEntry, write_artifact
from prototypes.index import ProfileIndex

EMBEDDER = ("minilm", 384)  # what the bundled embedder calls itself


def write_tiny_artefact(root: Path, users: int = 4) -> str:
    """One version with `users` users over 2 prototypes under `root`; returns its name."""
    rng = np.random.default_rng(0)
    dim = EMBEDDER[1]
    prototypes = rng.normal(size=(2, dim)).astype(np.float32)
    prototypes /= np.linalg.norm(prototypes, axis=1, keepdims=True)
    profiles = prototypes[[i % 2 for i in range(users)]] + 0.1 * rng.normal(size=(users, dim))
    profiles = (profiles / np.linalg.norm(profiles, axis=1, keepdims=True)).astype(np.float32)
    assignment = np.array([i % 2 for i in range(users)], dtype=np.int64)
    pair = {
        "context": [{"role": "user", "content": "How long to steep tea?"}],
        "chosen": "Three minutes.",
        "rejected": "It depends on a great many things.",
    }
    entries = [
        UserEntry(f"user-{i}", int(assignment[i]), (pair,), np.zeros((1, dim), np.float32))
        for i in range(users)
    ]
    target = write_artifact(
        root,
        manifest={"embedder": {"name": EMBEDDER[0], "dim": dim}},
        prototypes=prototypes,
        prototypes_init=prototypes,
        profiles=profiles,
        users=entries,
        index=ProfileIndex.build(prototypes, profiles, assignment, ivf=False),
    )
    return target.name


def copy_version(root: Path, version: str, new: str, *, point: bool = True) -> None:
    """A copy of `version` named `new` (its manifest says so); LATEST points at it if `point`."""
    shutil.copytree(root / version, root / new)
    manifest = json.loads((root / new / "manifest.json").read_text())
    (root / new / "manifest.json").write_text(json.dumps({**manifest, "version": new}))
    if point:
        (root / LATEST).write_text(new + "\n")
