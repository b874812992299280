"""User profile embeddings: what prototype learning clusters and what retrieval queries with.

A profile is the L2-normalised mean embedding of the user's preference analyses: for each of
(up to `max_pairs` of) their pairs, the backend writes an evaluation chain for that pair with
a few of the user's other pairs as history, and its PART 1 analysis (persona and rubric) is
embedded. The learn job and the server build profiles with this one class, so queries and the
index live in the same space. A user with no history is queried by the prompt and candidates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from service.core.chain import EvaluationChain
from service.core.embedder import Embedder
from service.core.inputs import PreferencePair, ScoringTask, history_fingerprint
from service.core.lru import LRU
from service.engine.backend import Backend, SampleGroup
from service.engine.cache import Caches, user_key
from service.engine.parsing import parse_chain

F32 = npt.NDArray[np.float32]
log = logging.getLogger("pgenrm.profiles")


def cold_query_text(task: ScoringTask) -> str:
    return "\n".join([f"Question: {task.prompt}", *(f"Answer: {c}" for c in task.candidates)])


class ProfileBuilder:
    def __init__(
        self,
        backend: Backend,
        embedder: Embedder,
        *,
        history_k: int = 3,
        max_pairs: int = 4,
        cache_size: int = 10_000,
        caches: Caches | None = None,
    ) -> None:
        self.caches = caches  # shared store (Redis) for profiles, next to the local LRU
        self.backend = backend
        self.embedder = embedder
        self.history_k = history_k
        self.max_pairs = max_pairs
        self._cache: LRU[str, F32] = LRU(cache_size)

    async def analysis(
        self, user_id: str, pairs: Sequence[PreferencePair], index: int
    ) -> str | None:
        """PART 1 of the chain for pair `index`, judged with the user's next pairs as history."""
        target = pairs[index]
        others = [p for i, p in enumerate(pairs) if i != index]
        history = tuple((others[index:] + others[:index])[: self.history_k])
        task = ScoringTask(target.context, (target.chosen, target.rejected))
        group = SampleGroup("ind", user_id, history, task, 1, seed=index)
        try:
            completions = await self.backend.generate(group)
        except Exception:  # one unreadable example must not sink a profile (or a learn job)
            log.exception("analysis failed for one example of a user")
            return None
        if not completions:
            return None
        chain = parse_chain(completions[0].text, 2, completions[0].finish_reason)
        if isinstance(chain, EvaluationChain) and chain.analysis.strip():
            return chain.analysis
        return None

    def embed_profile(self, analyses: Sequence[str]) -> F32 | None:
        if not analyses:
            return None
        vectors = self.embedder.encode(list(analyses))
        mean = vectors.mean(axis=0)
        norm = float(np.linalg.norm(mean))
        return (mean / norm).astype(np.float32) if norm > 0 else None

    async def profile(self, user_id: str, pairs: Sequence[PreferencePair]) -> F32 | None:
        """The profile of a user with this history (cached by user and history)."""
        key = f"{user_id}\x1f{history_fingerprint(pairs)}"
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        shared_key = user_key(
            "profile", user_id, history_fingerprint(pairs), self.backend.model, self.embedder.name
        )
        if self.caches is not None:
            [raw] = await self.caches.lookup("profile", [shared_key])
            if raw is not None and len(raw) == 4 * self.embedder.dim:
                shared: F32 = np.frombuffer(raw, dtype=np.float32).copy()
                self._cache.put(key, shared)
                return shared
        chosen = range(min(len(pairs), self.max_pairs))
        analyses = await asyncio.gather(*(self.analysis(user_id, pairs, i) for i in chosen))
        vector = await asyncio.to_thread(self.embed_profile, [a for a in analyses if a])
        if vector is not None:
            self._cache.put(key, vector)
            if self.caches is not None:
                await self.caches.remember({shared_key: vector.astype(np.float32).tobytes()})
        return vector

    def forget(self, user_id: str) -> int:
        """Drop this user's profiles held in memory (the shared cache is the caller's)."""
        prefix = f"{user_id}\x1f"
        return self._cache.discard_where(lambda key: key.startswith(prefix))

    async def cold_profile(self, task: ScoringTask) -> F32:
        vectors = await asyncio.to_thread(self.embedder.encode, [cold_query_text(task)])
        return np.asarray(vectors[0], dtype=np.float32)
