"""Which rows each expert learns from: one per training user, or per cluster of similar users
of a dataset with more users than experts to spare, then the pooled population and each
dataset's own. Calibration asks for the same groups over the rows it does not hold out."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from service.offline.embedded_training.training import Corpus, TrainConfig

F64 = npt.NDArray[np.float64]
Group = tuple[str, str, npt.NDArray[np.int64]]  # (label, kind, row indices) of one expert


def expert_groups(
    corpus: Corpus, config: TrainConfig, rows: npt.NDArray[np.bool_] | None = None
) -> list[Group]:
    """(label, kind, row indices) per expert, over `rows` (default: all): one per user, or per
    cluster of similar users of the same dataset where there are more users than experts to
    spare; then the pooled population and, with several datasets, each dataset's own.

    Users of different datasets never share a cluster (a crowd's worker and a domain persona
    have nothing to pool). Datasets with few users keep one expert each; the others share what
    is left of `max_experts`, in proportion to their users."""
    keep = np.ones(len(corpus.rows), bool) if rows is None else rows
    by_user: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, row in enumerate(corpus.rows):
        if keep[i]:
            by_user[(corpus.dataset[i], row.user_id)].append(i)
    per_dataset: dict[str, list[npt.NDArray[np.int64]]] = defaultdict(list)
    for (dataset, _), ix in by_user.items():
        if len(ix) >= config.min_pairs:
            per_dataset[dataset].append(np.array(ix))
    budget = _budget({d: len(users) for d, users in per_dataset.items()}, config.max_experts)
    out: list[Group] = []
    for dataset, users in per_dataset.items():
        if len(users) <= budget[dataset]:
            out += [(f"{dataset}/profile-{n + 1}", "user", ix) for n, ix in enumerate(users)]
            continue
        # Cluster the dataset's users by their mean preference direction in content space.
        directions = np.stack([corpus.diff(ix)[1].mean(axis=0) for ix in users])
        directions /= np.linalg.norm(directions, axis=1, keepdims=True) + 1e-12
        assignment = _kmeans(directions, budget[dataset], config.seed)
        for j in range(budget[dataset]):
            members = [ix for ix, a in zip(users, assignment, strict=True) if a == j]
            if members:
                out.append((f"{dataset}/cluster-{j + 1}", "cluster", np.concatenate(members)))
    return out + _populations(corpus, config, keep)


def _populations(corpus: Corpus, config: TrainConfig, keep: npt.NDArray[np.bool_]) -> list[Group]:
    """The pooled population and each dataset's own, under the same prior: a history (or
    nothing) tells which population a user belongs to long before it could tell the user apart
    from it."""
    rng = np.random.default_rng(config.seed)

    def capped(index: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        if index.size <= config.max_population_rows:
            return index
        return np.sort(rng.choice(index, config.max_population_rows, replace=False))

    out: list[Group] = [("population", "population", capped(np.flatnonzero(keep)))]
    names = np.array(corpus.dataset)
    if len(set(corpus.dataset)) > 1:
        for name in dict.fromkeys(corpus.dataset):
            out.append(
                (f"{name}/population", "population", capped(np.flatnonzero(keep & (names == name))))
            )
    return out


def _budget(users: dict[str, int], total: int) -> dict[str, int]:
    """Experts per dataset: all of its users while they fit an even share, the rest split."""
    budget: dict[str, int] = {}
    left = dict(users)
    while left:
        share = max(1, (total - sum(budget.values())) // len(left))
        small = {d: n for d, n in left.items() if n <= share}
        if not small:
            rest = total - sum(budget.values())
            weight = sum(left.values())
            for d, n in left.items():
                budget[d] = max(1, round(rest * n / weight))
            break
        budget |= small
        for d in small:
            del left[d]
    return budget


def _kmeans(x: F64, k: int, seed: int) -> npt.NDArray[np.int64]:
    import faiss

    km = faiss.Kmeans(
        x.shape[1], k, niter=30, seed=seed, spherical=True, verbose=False, min_points_per_centroid=1
    )
    km.train(x.astype(np.float32))
    _, assignment = km.index.search(x.astype(np.float32), 1)
    return np.asarray(assignment.ravel(), np.int64)
