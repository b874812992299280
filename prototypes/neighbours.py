"""Prototype-level scaling at serving time: the artefact store and the `NeighbourSource`.

`PrototypeStore` holds the current artefact and swaps in a new one atomically (a reload builds
the new artefact aside and replaces one reference; requests in flight keep the one they took).
`PrototypeNeighbours` finds, for a user's profile, the nearest prototype and the M most similar
users in it, never the user itself, and gives each neighbour's most relevant history pairs
(by prompt similarity) as the few-shot block of a prototype-level sample.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from prototypes.artifact import Artifact, ArtifactError, latest_version, read_artifact
from prototypes.profiles import ProfileBuilder
from service.engine.inputs import PreferencePair, ScoringTask
from service.engine.scaling import Neighbour, NeighbourSource

log = logging.getLogger("pgenrm.prototypes")


class PrototypeStore:
    def __init__(self, root: Path, embedder: tuple[str, int]) -> None:
        self.root = root
        self.embedder = embedder
        self.current: Artifact | None = None
        self._lock = asyncio.Lock()
        self._watch: asyncio.Task[None] | None = None

    def _read(self, version: str | None) -> Artifact:
        artifact = read_artifact(self.root, version)
        if artifact.embedder != self.embedder:
            raise ArtifactError(
                f"{self.root}/{artifact.version} was learnt with embedder {artifact.embedder}, "
                f"the service embeds with {self.embedder}: relearn it or set PGENRM_EMBEDDER"
            )
        return artifact

    async def reload(self) -> tuple[str | None, str]:
        """Load LATEST (if new) and swap it in; returns (previous version, current version)."""
        async with self._lock:
            previous = self.current.version if self.current else None
            version = latest_version(self.root)
            if version is None:
                raise ArtifactError(f"{self.root}: no LATEST artefact")
            if version != previous:
                self.current = await asyncio.to_thread(self._read, version)
                log.info("prototype artefact %s loaded (was %s)", version, previous)
            return previous, version

    def watch(self, interval_s: float) -> None:
        """Reload whenever LATEST names a new version (polled)."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(interval_s)
                current = self.current.version if self.current else None
                if latest_version(self.root) not in (None, current):
                    try:
                        await self.reload()
                    except ArtifactError as error:
                        log.error("prototype reload failed, keeping %s: %s", current, error)

        if self._watch is None:
            self._watch = asyncio.create_task(loop())

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch


class PrototypeNeighbours(NeighbourSource):
    def __init__(self, store: PrototypeStore, profiles: ProfileBuilder, history_k: int = 3) -> None:
        self.store = store
        self.profiles = profiles
        self.history_k = history_k

    @property
    def version(self) -> str | None:
        return self.store.current.version if self.store.current else None

    async def neighbours(
        self, user_id: str, history: Sequence[PreferencePair], task: ScoringTask, m: int
    ) -> list[Neighbour]:
        artifact = self.store.current  # one snapshot for the whole request
        if artifact is None or m <= 0:
            return []
        row = artifact.row_of.get(user_id)
        if row is not None:
            query = artifact.index.profiles[row]
        elif history:
            query = await self.profiles.profile(user_id, history)
        else:
            query = await self.profiles.cold_profile(task)
        if query is None:
            query = await self.profiles.cold_profile(task)
        hits = artifact.index.search(query, m, exclude={row} if row is not None else None)
        prompt = (await asyncio.to_thread(self.profiles.embedder.encode, [task.prompt]))[0]
        out = []
        for rank, hit in enumerate(hits):
            entry = artifact.users[hit.row]
            relevance = entry.pair_prompts @ prompt if len(entry.pairs) else np.zeros(0)
            best = np.argsort(-relevance)[: self.history_k]
            shots = tuple(entry.pairs[int(i)] for i in best)
            label = f"prototype-{hit.prototype}/neighbour-{rank + 1}"
            out.append(Neighbour(label=label, history=shots, similarity=hit.similarity))
        return out
