"""Nearest prototype, then the most similar users inside it: FAISS over user profiles.

Small sets use exact search: the nearest prototype by inner product, then an exact scan of its
members. Above `IVF_THRESHOLD` users the index is an IVF whose coarse quantizer holds the
learnt prototypes, so its inverted lists ARE the prototypes' members and `nprobe=1` searches
only the nearest one (PGENRM.md's design note); `nprobe` widens to the next prototypes when the
nearest holds too few users. Vectors are L2-normalised, so inner product is cosine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
IVF_THRESHOLD = 20_000


@dataclass(frozen=True)
class Hit:
    row: int  # user row in the artefact
    similarity: float
    prototype: int


class ProfileIndex:
    def __init__(self, prototypes: F32, profiles: F32, assignment: I64, ivf: Any = None) -> None:
        self.prototypes = np.ascontiguousarray(prototypes, dtype=np.float32)
        self.profiles = np.ascontiguousarray(profiles, dtype=np.float32)
        self.assignment = assignment.astype(np.int64)
        self.members = [np.flatnonzero(self.assignment == j) for j in range(len(self.prototypes))]
        self._ivf = ivf

    @property
    def kind(self) -> str:
        return "ivf" if self._ivf is not None else "flat"

    @classmethod
    def build(
        cls, prototypes: F32, profiles: F32, assignment: I64, *, ivf: bool | None = None
    ) -> ProfileIndex:
        use_ivf = len(profiles) > IVF_THRESHOLD if ivf is None else ivf
        if not use_ivf:
            return cls(prototypes, profiles, assignment)
        import faiss

        d = prototypes.shape[1]
        quantizer = faiss.IndexFlatIP(d)
        quantizer.add(np.ascontiguousarray(prototypes, dtype=np.float32))
        index = faiss.IndexIVFFlat(quantizer, d, len(prototypes), faiss.METRIC_INNER_PRODUCT)
        index.is_trained = True  # the learnt prototypes are the coarse centroids
        index.add(np.ascontiguousarray(profiles, dtype=np.float32))  # list = nearest prototype
        return cls(prototypes, profiles, assignment, index)

    def nearest_prototype(self, query: F32) -> int:
        return int(np.argmax(self.prototypes @ query.astype(np.float32)))

    def search(self, query: F32, m: int, exclude: set[int] | None = None) -> list[Hit]:
        """The m most similar users in the nearest prototype(s), best first, skipping `exclude`."""
        exclude = exclude or set()
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        hits: list[Hit] = []
        if self._ivf is not None:
            for nprobe in _widening(len(self.prototypes)):
                self._ivf.nprobe = nprobe
                scores, rows = self._ivf.search(q, m + len(exclude))
                hits = [
                    Hit(int(r), float(s), int(self.assignment[r]))
                    for s, r in zip(scores[0], rows[0], strict=True)
                    if r >= 0 and int(r) not in exclude
                ][:m]
                if len(hits) >= m or nprobe >= len(self.prototypes):
                    return hits
            return hits
        for j in np.argsort(-(self.prototypes @ q[0])):
            members = self.members[int(j)]
            members = members[[int(r) not in exclude for r in members]] if exclude else members
            if members.size:
                sims = self.profiles[members] @ q[0]
                best = np.argsort(-sims)[: m - len(hits)]
                hits += [Hit(int(members[i]), float(sims[i]), int(j)) for i in best]
            if len(hits) >= m:
                break
        return hits[:m]

    def write(self, path: str) -> None:
        if self._ivf is not None:
            import faiss

            faiss.write_index(self._ivf, path)

    @classmethod
    def read(
        cls, prototypes: F32, profiles: F32, assignment: I64, path: str | None
    ) -> ProfileIndex:
        if path is None:
            return cls(prototypes, profiles, assignment)
        import faiss

        return cls(prototypes, profiles, assignment, faiss.read_index(path))


def _widening(k: int) -> list[int]:
    steps, n = [], 1
    while n < k:
        steps.append(n)
        n *= 2
    return [*steps, k]
