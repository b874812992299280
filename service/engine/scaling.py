"""Test-time user-based scaling: which samples to draw (Ind-N, Pro-M) and how to fuse them.

Ind-N is one group of N samples over the user's own history (one request with `n=N` on an LLM
backend, so the prefill is shared). Pro-M is M groups of one sample, each over a similar user's
history. `NeighbourSource` is the seam the prototype index fills; without one, Pro-M has no
neighbours and the request says so.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from service.core.inputs import PreferencePair, ScoringTask, history_fingerprint
from service.engine.backend import SampleGroup


@dataclass(frozen=True, slots=True)
class Scaling:
    ind: int
    pro: int


@dataclass(frozen=True, slots=True)
class Neighbour:
    """A similar user's history, found through the user's nearest prototype."""

    label: str  # opaque, never another user's id
    history: tuple[PreferencePair, ...]
    similarity: float


class NeighbourSource(ABC):
    """Finds the M users most similar to this one (never the user itself)."""

    @property
    @abstractmethod
    def version(self) -> str | None:
        """The prototype artefact version, or None when none is loaded."""

    @abstractmethod
    async def neighbours(
        self, user_id: str, history: Sequence[PreferencePair], task: ScoringTask, m: int
    ) -> list[Neighbour]: ...

    def forget(self, user_id: str) -> None:  # noqa: B027 - optional hook
        """Drop whatever this source derived from the user's history (their profile)."""


class NoNeighbours(NeighbourSource):
    """No prototype artefact loaded: prototype-level scaling is unavailable."""

    @property
    def version(self) -> str | None:
        return None

    async def neighbours(
        self, user_id: str, history: Sequence[PreferencePair], task: ScoringTask, m: int
    ) -> list[Neighbour]:
        return []


def derive_seed(user_id: str, history: Sequence[PreferencePair], task: ScoringTask) -> int:
    """A seed fixed by the request's content, so the same request always scores the same."""
    parts = [user_id, history_fingerprint(history), *(m.content for m in task.context)]
    parts += [f"\x1e{candidate}" for candidate in task.candidates]
    digest = hashlib.sha256("".join(parts).encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def canonical_order(candidates: Sequence[str]) -> tuple[int, ...]:
    """Candidate indices in an order fixed by their texts alone (position -> request index).

    The engine presents candidates in this order, so the same set in any order is presented,
    sampled and seeded identically: scores never depend on the order a caller listed them in,
    and an LLM's position bias cannot favour whoever came first."""

    def digest(i: int) -> bytes:
        return hashlib.blake2b(
            candidates[i].encode("utf-8", "surrogatepass"), digest_size=8
        ).digest()

    return tuple(sorted(range(len(candidates)), key=lambda i: (digest(i), candidates[i], i)))


def rotation(task: ScoringTask, shift: int) -> tuple[ScoringTask, tuple[int, ...] | None]:
    """The task with its candidates rotated by `shift`, and position -> candidate index."""
    k = len(task.candidates)
    if shift % k == 0:
        return task, None
    order = tuple((p + shift) % k for p in range(k))
    return ScoringTask(task.context, tuple(task.candidates[i] for i in order)), order


def plan_groups(
    user_id: str,
    history: tuple[PreferencePair, ...],
    task: ScoringTask,
    scaling: Scaling,
    neighbours: Sequence[Neighbour],
    seed: int,
    *,
    rotate: bool = False,
) -> list[SampleGroup]:
    """One Ind group of N samples (one request, shared prefill) and one group per neighbour.

    With `rotate`, candidate positions are balanced to cancel position bias: Ind-N is split
    over min(N, K) cyclic rotations (the history prefix is still shared) and the j-th
    neighbour's sample uses rotation j.
    """
    groups = []
    k = len(task.candidates)
    if scaling.ind > 0:
        parts = min(scaling.ind, k) if rotate else 1
        for j in range(parts):
            n = scaling.ind // parts + (1 if j < scaling.ind % parts else 0)
            shown, order = rotation(task, j)
            groups.append(
                SampleGroup("ind", user_id, history, shown, n, seed + 104_723 * j, order=order)
            )
    for j, neighbour in enumerate(neighbours[: scaling.pro]):
        shown, order = rotation(task, j if rotate else 0)
        groups.append(
            SampleGroup(
                "pro",
                user_id,
                neighbour.history,
                shown,
                1,
                seed + 7919 * (j + 1),
                neighbour.label,
                order=order,
            )
        )
    return groups


def fuse(
    ind: Sequence[float] | None, pro: Sequence[float] | None, w_ind: float, w_pro: float
) -> list[float]:
    """Paper Eq. 9 as released: w_ind*mean(ind) + w_pro*mean(pro), renormalised over the sides
    that produced a valid sample (one side alone keeps its own scale)."""
    sides = [(w_ind, ind), (w_pro, pro)]
    present = [(w, s) for w, s in sides if s is not None and w > 0]
    if not present:
        present = [(1.0, s) for _, s in sides if s is not None]
    total = sum(w for w, _ in present)
    if not present or total <= 0:
        raise ValueError("fuse() needs at least one side with scores")
    width = len(present[0][1])
    return [sum(w * s[i] for w, s in present) / total for i in range(width)]
