"""MetaRM: features of a sample, the logistic fit and its AUC."""

from __future__ import annotations

import math
import random

import pytest

from service.core.chain import (
    CandidateEvaluation,
    Criterion,
    CriterionScore,
    EvaluationChain,
)
from service.engine.meta_reward import FEATURES, auc, features, fit


def chain(first: float, second: float) -> EvaluationChain:
    return EvaluationChain(
        criteria=(
            Criterion(name="Thoroughness", key="length", weight=60),
            Criterion(name="Clarity", key="clarity", weight=40),
        ),
        candidates=tuple(
            CandidateEvaluation(
                scores=(
                    CriterionScore(criterion="Thoroughness", key="length", score=s),
                    CriterionScore(criterion="Clarity", key="clarity", score=5),
                ),
                overall=s,
            )
            for s in (first, second)
        ),
    )


def test_features_read_the_chain_and_the_population() -> None:
    x = dict(
        zip(FEATURES, features(chain(8, 2), [0, 0, 1], 0, [7.0, 4.0], [300, 100]), strict=True)
    )
    assert x["sample_margin"] == pytest.approx(6 / 9)
    assert x["agreement_with_samples"] == pytest.approx(0.5)  # one of the two others
    assert x["agrees_with_ensemble"] == 1.0
    assert x["separating_criteria"] == pytest.approx(1 / 5)  # clarity does not separate
    assert x["separating_weight"] == pytest.approx(0.6)
    assert x["length_separates"] == 1.0
    assert x["picks_longer"] == 1.0


def test_fit_ranks_an_obviously_good_sample_above_a_bad_one() -> None:
    rng = random.Random(0)
    xs: list[list[float]] = []
    ys: list[int] = []
    for _ in range(200):
        good = rng.random() < 0.5
        agreement = rng.uniform(0.6, 1.0) if good else rng.uniform(0.0, 0.5)
        xs.append([agreement, rng.random()])  # the second feature is noise
        ys.append(int(good))
    model = fit(xs, ys)
    good_p, bad_p = model.predict([[0.95, 0.5], [0.05, 0.5]])
    assert good_p > 0.9 > 0.1 > bad_p
    assert auc(list(model.predict(xs)), ys) > 0.99


def test_auc_counts_ties_half_and_needs_both_classes() -> None:
    assert auc([0.1, 0.9], [0, 1]) == 1.0
    assert auc([0.5, 0.5], [0, 1]) == 0.5
    assert auc([0.9, 0.1], [0, 1]) == 0.0
    assert math.isnan(auc([0.3, 0.4], [1, 1]))
