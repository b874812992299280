"""MetaRM: predicts a sample's process reward (right outcome AND reasons a human shares) from
the sample alone, so that samples could be weighed without a human critique.

Pure numpy: the features of one sample among its pair's samples, an L2 logistic regression
fitted by Newton steps (a few thousand rows, a dozen features: exact and dependency-free), and
the AUC it is judged by. Training data and evaluation live in `bench.critique`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from service.core.chain import EvaluationChain

SEPARATION = 1.0  # criterion scores this far apart separate the two responses
FEATURES = (
    "sample_margin",
    "agreement_with_samples",
    "agrees_with_ensemble",
    "ensemble_margin",
    "separating_criteria",
    "separating_weight",
    "criteria",
    "length_separates",
    "picks_longer",
)

Vector = npt.NDArray[np.float64]


def features(
    chain: EvaluationChain,
    winners: Sequence[int],
    own: int,
    ensemble: Sequence[float],
    lengths: Sequence[int],
) -> list[float]:
    """One sample's features. `chain` is in candidate order (two candidates), `winners` every
    valid sample's winner (candidate index, this one's included), `own` this sample's winner,
    `ensemble` the aggregate score per candidate, `lengths` the candidates' lengths."""
    overall = chain.overall
    scores = [{s.key: s.score for s in c.scores} for c in chain.candidates]
    separating = [
        c
        for c in chain.criteria
        if c.key in scores[0]
        and c.key in scores[1]
        and abs(scores[0][c.key] - scores[1][c.key]) >= SEPARATION
    ]
    others = max(len(winners) - 1, 1)
    best = int(np.argmax(ensemble))
    return [
        abs(overall[0] - overall[1]) / 9.0,
        (sum(w == own for w in winners) - 1) / others,
        float(own == best),
        abs(ensemble[0] - ensemble[1]) / 9.0,
        len(separating) / 5.0,
        sum(c.weight for c in separating) / 100.0,
        len(chain.criteria) / 5.0,
        float(any(c.key == "length" for c in separating)),
        float(lengths[own] >= lengths[1 - own]),
    ]


@dataclass(frozen=True)
class MetaRM:
    """A fitted scorer: standardisation and logistic-regression weights."""

    mean: Vector
    scale: Vector
    weights: Vector  # intercept first

    def predict(self, x: Sequence[Sequence[float]]) -> Vector:
        """P(process reward) per row of features."""
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
        return _sigmoid(self.weights[0] + z @ self.weights[1:])


def fit(x: Sequence[Sequence[float]], y: Sequence[int], l2: float = 1.0, steps: int = 25) -> MetaRM:
    """L2-regularised logistic regression (intercept unpenalised) by Newton's method."""
    data = np.asarray(x, dtype=np.float64)
    target = np.asarray(y, dtype=np.float64)
    mean = data.mean(axis=0)
    scale = data.std(axis=0)
    scale[scale == 0] = 1.0
    design = np.hstack([np.ones((len(data), 1)), (data - mean) / scale])
    weights = np.zeros(design.shape[1])
    penalty = np.full(design.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(steps):
        p = _sigmoid(design @ weights)
        gradient = design.T @ (p - target) + penalty * weights
        hessian = (
            (design.T * (p * (1 - p))) @ design + np.diag(penalty) + 1e-9 * np.eye(len(weights))
        )
        weights -= np.linalg.solve(hessian, gradient)
    return MetaRM(mean, scale, weights)


def auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Area under the ROC curve (ties count half); NaN with only one class."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    positives, negatives = int(y.sum()), int((~y).sum())
    if not positives or not negatives:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _sigmoid(z: Vector) -> Vector:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))), dtype=np.float64)
