"""`aggregation: "meta"`: MetaRM's weights change the vote; the default aggregation does not
move; the shipped coefficients load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service.core.chain import CandidateEvaluation, Criterion, CriterionScore, EvaluationChain
from service.engine.aggregate import Sample, mean_scores
from service.engine.meta_aggregate import meta_weights
from service.engine.meta_reward import FEATURES, SHIPPED, MetaRM, features, shipped
from service.engine.parsing import ScoredSample
from service.engine.scaling import Scaling
from service.engine.scorer import ScoringEngine
from tests.engine.fakes import ScriptedBackend, chain_text
from tests.helpers import task


def agreement_lover(steepness: float = 40.0) -> MetaRM:
    """A MetaRM that trusts only a sample's agreement with the other samples (above 0.4)."""
    weights = np.zeros(len(FEATURES) + 1)
    weights[0] = -0.4 * steepness
    weights[1 + FEATURES.index("agreement_with_samples")] = steepness
    return MetaRM(np.zeros(len(FEATURES)), np.ones(len(FEATURES)), weights)


# Two loud samples prefer one answer by 8 points; three quiet ones prefer the other by 1.
LOUD_AND_QUIET = [chain_text(1, 9), chain_text(1, 9), chain_text(6, 5), *[chain_text(6, 5)] * 2]


def engine(meta_rm: MetaRM | None = None) -> ScoringEngine:
    return ScoringEngine(ScriptedBackend(lambda g, n: LOUD_AND_QUIET[: g.n]), meta_rm=meta_rm)


async def test_meta_weights_turn_the_vote_to_the_agreeing_majority() -> None:
    plain = await engine(agreement_lover()).score("u", (), task("a", "b"), Scaling(5, 0))
    meta = await engine(agreement_lover()).score(
        "u", (), task("a", "b"), Scaling(5, 0), aggregation="meta"
    )
    assert plain.preferred != meta.preferred  # the loud pair won the plain mean
    assert meta.aggregation == "meta" and meta.meta_weights is not None
    loud, quiet = meta.meta_weights[0], meta.meta_weights[2]
    assert loud is not None and quiet is not None and quiet > 0.9 > 0.1 > loud
    # the scores are the weighted means, on the same 1-10 scale
    assert meta.scores[meta.preferred] == pytest.approx(6.0, abs=0.05)
    assert meta.ind_scores == meta.scores  # one level: fusing changes nothing


async def test_the_default_aggregation_is_the_plain_mean_untouched() -> None:
    out = await engine(agreement_lover()).score("u", (), task("a", "b"), Scaling(5, 0))
    assert out.aggregation == "mean" and out.meta_weights is None
    assert sorted(out.scores) == pytest.approx([(1 + 1 + 6 * 3) / 5, (9 + 9 + 5 * 3) / 5])


def test_weighted_means_fall_back_to_the_plain_mean_when_every_weight_is_zero() -> None:
    samples = [
        Sample("ind", "self", ScoredSample((2.0, 8.0), "")),
        Sample("ind", "self", ScoredSample((4.0, 6.0), "")),
    ]
    assert mean_scores(samples) == mean_scores(samples, [0.0, 0.0]) == [3.0, 7.0]
    assert mean_scores(samples, [1.0, 3.0]) == pytest.approx([3.5, 6.5])


def test_one_candidate_weighs_every_valid_sample_alike() -> None:
    samples = [Sample("ind", "self", ScoredSample((7.0,), chain_text(7)))]
    assert meta_weights(samples, [7.0], [10], agreement_lover()) == [1.0]


def chain(*overall: float) -> EvaluationChain:
    criteria = (Criterion(name="Depth", key="length", weight=100),)
    return EvaluationChain(
        criteria=criteria,
        candidates=tuple(
            CandidateEvaluation(
                scores=(CriterionScore(criterion="Depth", key="length", score=s),), overall=s
            )
            for s in overall
        ),
    )


def test_features_read_three_candidates_as_the_winner_against_its_runner_up() -> None:
    row = features(chain(3, 9, 7), [1, 1], 1, [3.0, 8.0, 7.5], [5, 50, 500])
    x = dict(zip(FEATURES, row, strict=True))
    assert x["sample_margin"] == pytest.approx(2 / 9)  # 9 against 7, not against 3
    assert x["ensemble_margin"] == pytest.approx(0.5 / 9)
    assert x["agrees_with_ensemble"] == 1.0 and x["picks_longer"] == 0.0
    assert x["length_separates"] == 1.0


def test_the_shipped_coefficients_load_and_predict_probabilities() -> None:
    model = shipped()
    data = json.loads(SHIPPED.read_text(encoding="utf-8"))
    assert data["features"] == list(FEATURES)
    assert 0.5 <= data["auc"] <= 1.0  # fitted, and better than chance on held-out debates
    p = model.predict([[0.5] * len(FEATURES), [0.0] * len(FEATURES)])
    assert all(0.0 < v < 1.0 for v in p)
    again = MetaRM.from_json(model.to_json())
    assert np.allclose(again.weights, model.weights) and np.allclose(again.mean, model.mean)


def test_coefficients_for_other_features_are_refused() -> None:
    data = shipped().to_json()
    with pytest.raises(ValueError, match="coefficients are for"):
        MetaRM.from_json({**data, "features": ["sample_margin"]})
