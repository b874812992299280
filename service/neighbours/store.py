"""`PrototypeStore`: the prototype artefact the server currently serves, and its hot reload.

A reload reads the new version aside and swaps one reference, so requests in flight keep the
artefact they took; a watcher polls `LATEST` and reloads when it names a new version. `LATEST`
may only name a version directory inside the root (`prototypes.artifact.version_dir`). Errors
carry no filesystem path (clients see them); the log says where.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from prototypes.artifact import Artifact, ArtifactError, latest_version, read_artifact

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
                f"version {artifact.version} was learnt with embedder {artifact.embedder}, "
                f"the service embeds with {self.embedder}: relearn it or set PGENRM_EMBEDDER",
                self.root / artifact.version,
            )
        return artifact

    async def reload(self) -> tuple[str | None, str]:
        """Load LATEST (if new) and swap it in; returns (previous version, current version)."""
        async with self._lock:
            previous = self.current.version if self.current else None
            try:
                version = latest_version(self.root)
                if version is None:
                    raise ArtifactError("no LATEST file in the prototypes directory", self.root)
                if version != previous:
                    self.current = await asyncio.to_thread(self._read, version)
                    log.info("prototype artefact %s loaded (was %s)", version, previous)
            except ArtifactError as error:
                log.error("prototype artefact at %s refused: %s", error.path or self.root, error)
                raise
            return previous, version

    def watch(self, interval_s: float) -> None:
        """Reload whenever LATEST names a new version (polled)."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(interval_s)
                current = self.current.version if self.current else None
                try:
                    if latest_version(self.root) not in (None, current):
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
