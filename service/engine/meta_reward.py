"""MetaRM: predicts a sample's process reward (right outcome AND reasons a human shares) from
the sample alone, so that samples can be weighed without a human critique.

Pure numpy: the features of one sample among its request's samples, an L2 logistic regression
fitted by Newton steps (a few thousand rows, a dozen features: exact and dependency-free), the
AUC it is judged by, and the fitted coefficients as JSON. `pgenrm train-meta` fits them offline
(`service.offline.meta_training`); the shipped ones (`data/meta_rm.json`) serve
`aggregation: "meta"` (`service.engine.meta_aggregate`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
SHIPPED = Path(__file__).with_name("data") / "meta_rm.json"

Vector = npt.NDArray[np.float64]


def features(
    chain: EvaluationChain,
    winners: Sequence[int],
    own: int,
    ensemble: Sequence[float],
    lengths: Sequence[int],
) -> list[float]:
    """One sample's features. `chain` is in candidate order, `winners` every valid sample's
    winner (candidate index, this one's included), `own` this sample's winner, `ensemble` the
    aggregate score per candidate, `lengths` the candidates' lengths. With more than two
    candidates the sample is read as its winner against its own runner-up (for two: the pair)."""
    overall = chain.overall
    runner = max((i for i in range(len(overall)) if i != own), key=lambda i: (overall[i], -i))
    scores = [{s.key: s.score for s in chain.candidates[i].scores} for i in (own, runner)]
    separating = [
        c
        for c in chain.criteria
        if c.key in scores[0]
        and c.key in scores[1]
        and abs(scores[0][c.key] - scores[1][c.key]) >= SEPARATION
    ]
    others = max(len(winners) - 1, 1)
    ranked = sorted(ensemble, reverse=True)
    return [
        abs(overall[own] - overall[runner]) / 9.0,
        (sum(w == own for w in winners) - 1) / others,
        float(own == int(np.argmax(ensemble))),
        (ranked[0] - ranked[1]) / 9.0,
        len(separating) / 5.0,
        sum(c.weight for c in separating) / 100.0,
        len(chain.criteria) / 5.0,
        float(any(c.key == "length" for c in separating)),
        float(lengths[own] >= lengths[runner]),
    ]


def winner(chain: EvaluationChain) -> int:
    """The candidate a chain ranks first (the lowest index among ties)."""
    overall = chain.overall
    return max(range(len(overall)), key=lambda i: (overall[i], -i))


def in_candidate_order(chain: EvaluationChain, order: Sequence[int] | None) -> EvaluationChain:
    """`chain` with its candidates in the request's order (`order`: position -> index)."""
    if order is None:
        return chain
    placed = list(chain.candidates)
    for position, index in enumerate(order):
        placed[index] = chain.candidates[position]
    return chain.model_copy(update={"candidates": tuple(placed)})


def top_criteria(chain: EvaluationChain, keep: int) -> EvaluationChain:
    """The two-candidate chain with only its `keep` criteria that pull the candidates apart
    most (weight x score difference), so its arguments are as few as a human's reasons; the
    overall scores (the verdict) are kept as they are."""
    if len(chain.candidates) != 2:
        return chain
    rows = [{s.criterion: s.score for s in c.scores} for c in chain.candidates]

    def pull(name: str, weight: float) -> float:
        a, b = rows[0].get(name), rows[1].get(name)
        return 0.0 if a is None or b is None else weight * abs(a - b)

    ranked = sorted(chain.criteria, key=lambda c: -pull(c.name, c.weight))
    kept = {c.name for c in ranked[:keep]}
    candidates = tuple(
        c.model_copy(update={"scores": tuple(s for s in c.scores if s.criterion in kept)})
        for c in chain.candidates
    )
    criteria = tuple(c for c in chain.criteria if c.name in kept)
    return chain.model_copy(update={"criteria": criteria, "candidates": candidates})


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

    def to_json(self, **about: Any) -> dict[str, Any]:
        """The coefficients by feature name, and `about` (what it was fitted on, its AUC)."""
        return {
            "features": list(FEATURES),
            "intercept": float(self.weights[0]),
            "weights": dict(zip(FEATURES, map(float, self.weights[1:]), strict=True)),
            "mean": dict(zip(FEATURES, map(float, self.mean), strict=True)),
            "scale": dict(zip(FEATURES, map(float, self.scale), strict=True)),
            **about,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MetaRM:
        """Refuses coefficients for other features: they would weigh the wrong numbers."""
        if list(data.get("features", ())) != list(FEATURES):
            raise ValueError(f"MetaRM coefficients are for {data.get('features')}, not {FEATURES}")

        def vector(key: str) -> Vector:
            return np.array([float(data[key][f]) for f in FEATURES], dtype=np.float64)

        weights = np.concatenate([[float(data["intercept"])], vector("weights")])
        return cls(vector("mean"), vector("scale"), weights)


@functools.cache
def shipped() -> MetaRM:
    """The coefficients `pgenrm train-meta` wrote into the package (read once)."""
    return MetaRM.from_json(json.loads(SHIPPED.read_text(encoding="utf-8")))


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
