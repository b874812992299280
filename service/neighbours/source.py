"""`PrototypeNeighbours`: the engine's `NeighbourSource`, filled from the prototype artefact.

For a user's profile it finds the nearest prototype and the M most similar users in it, never
the user itself, and gives each neighbour's most relevant history pairs (by prompt similarity)
as the few-shot block of a prototype-level sample.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np

from service.core.inputs import PreferencePair, ScoringTask
from service.engine.scaling import Neighbour, NeighbourSource
from service.neighbours.profiles import ProfileBuilder
from service.neighbours.store import PrototypeStore


class PrototypeNeighbours(NeighbourSource):
    def __init__(self, store: PrototypeStore, profiles: ProfileBuilder, history_k: int = 3) -> None:
        self.store = store
        self.profiles = profiles
        self.history_k = history_k

    def forget(self, user_id: str) -> None:
        self.profiles.forget(user_id)

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
            shots = tuple(PreferencePair.from_json(entry.pairs[int(i)]) for i in best)
            label = f"prototype-{hit.prototype}/neighbour-{rank + 1}"
            out.append(Neighbour(label=label, history=shots, similarity=hit.similarity))
        return out
