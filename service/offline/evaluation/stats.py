"""Accuracy accounting for pairwise evaluation: both orders, ties wrong, bootstrap interval."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

TIE_EPSILON = 1e-9


@dataclass
class PairResult:
    """One test pair judged in both candidate orders: [chosen, rejected] then [rejected, chosen]."""

    user_id: str
    tags: dict[str, str]
    correct: list[bool] = field(default_factory=list)
    tie: list[bool] = field(default_factory=list)
    failed: list[bool] = field(default_factory=list)  # the score itself failed (counts wrong)
    samples_requested: int = 0
    samples_failed: int = 0  # includes samples_skipped
    samples_skipped: int = 0  # Pro samples never sent: fewer neighbours than M

    def add(self, chosen_score: float | None, rejected_score: float | None) -> None:
        if chosen_score is None or rejected_score is None:
            self.correct.append(False)
            self.tie.append(False)
            self.failed.append(True)
            return
        tie = abs(chosen_score - rejected_score) <= TIE_EPSILON
        self.correct.append(not tie and chosen_score > rejected_score)
        self.tie.append(tie)
        self.failed.append(False)

    @property
    def accuracy(self) -> float:
        return sum(self.correct) / len(self.correct)


def bootstrap_ci(
    values: Sequence[float], *, seed: int = 0, resamples: int = 2000, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (scipy), resampling pairs."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return (float("nan"), float("nan"))
    if np.all(data == data[0]):
        return (float(data[0]), float(data[0]))
    from scipy.stats import bootstrap

    result = bootstrap(
        (data,),
        np.mean,
        n_resamples=resamples,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))


def _accuracy(pairs: Sequence[PairResult]) -> float:
    judged = [c for p in pairs for c in p.correct]
    return sum(judged) / len(judged) if judged else float("nan")


def summarise(
    pairs: Sequence[PairResult], *, seed: int = 0, by: str | None = None
) -> dict[str, Any]:
    """The report's numbers; accuracies are fractions in [0, 1]."""
    per_user: dict[str, list[PairResult]] = defaultdict(list)
    for p in pairs:
        per_user[p.user_id].append(p)
    user_acc = {u: _accuracy(ps) for u, ps in sorted(per_user.items())}
    judgements = sum(len(p.correct) for p in pairs)
    requested = sum(p.samples_requested for p in pairs)
    skipped = sum(p.samples_skipped for p in pairs)
    sent = requested - skipped
    out: dict[str, Any] = {
        "accuracy": _accuracy(pairs),
        "ci95": list(bootstrap_ci([p.accuracy for p in pairs], seed=seed)),
        "macro_accuracy": float(np.mean(list(user_acc.values()))) if user_acc else float("nan"),
        "per_user": user_acc,
        "tie_rate": sum(sum(p.tie) for p in pairs) / judgements if judgements else 0.0,
        # Of the samples sent; samples never sent for lack of neighbours are counted apart.
        "parse_failure_rate": (sum(p.samples_failed for p in pairs) - skipped) / sent
        if sent
        else 0.0,
        "neighbour_shortfall_rate": skipped / requested if requested else 0.0,
        "scoring_failure_rate": (
            sum(sum(p.failed) for p in pairs) / judgements if judgements else 0.0
        ),
        "consistent_rate": (
            sum(all(p.correct) or not any(p.correct) for p in pairs) / len(pairs) if pairs else 0.0
        ),
        "pairs": len(pairs),
        "judgements": judgements,
    }
    if by is not None:
        out["by"] = slice_accuracy(pairs, lambda p: p.tags.get(by, "(missing)"))
        out["by_pairs"] = {
            k: sum(1 for p in pairs if p.tags.get(by, "(missing)") == k) for k in out["by"]
        }
    return out


def slice_accuracy(
    pairs: Sequence[PairResult], key: Callable[[PairResult], str]
) -> dict[str, float]:
    groups: dict[str, list[PairResult]] = defaultdict(list)
    for p in pairs:
        groups[key(p)].append(p)
    return {k: _accuracy(v) for k, v in sorted(groups.items())}
