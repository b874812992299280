"""`win_probability`: calibrated log-odds where a backend has them, smoothed votes where not."""

from __future__ import annotations

import math

import numpy as np
import pytest

from service.engine.aggregate import Sample, win_probability
from service.engine.backend import SampleGroup, Utility
from service.engine.parsing import ScoredSample
from service.engine.scaling import Neighbour, Scaling
from service.engine.scorer import ScoringEngine
from tests.engine.fakes import ListNeighbours, ScriptedBackend, chain_text
from tests.helpers import prefers, task


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


async def test_an_llm_backend_counts_agreeing_samples_with_laplace_smoothing() -> None:
    scores = [{"a": 8, "b": 4}, {"a": 7, "b": 5}, {"a": 3, "b": 6}]  # 2 of 3 prefer "a"

    def script(group: SampleGroup, call: int) -> list[str]:  # in the order presented
        return [chain_text(*(s[c] for c in group.task.candidates)) for s in scores[: group.n]]

    engine = ScoringEngine(ScriptedBackend(script))
    out = await engine.score("u", prefers("short"), task("a", "b"), Scaling(3, 0))
    assert out.preferred == 0
    assert win_probability(out.samples, 0, 1) == pytest.approx((2 + 1) / (3 + 2))
    one = await engine.score("u", prefers("short"), task("a", "b"), Scaling(1, 0))
    assert win_probability(one.samples, 0, 1) == pytest.approx(2 / 3)  # never 1 from one vote


async def test_ties_count_half_and_levels_fuse_like_the_scores() -> None:
    def script(group: SampleGroup, call: int) -> list[str]:
        return [chain_text(6, 6) if group.level == "ind" else chain_text(9, 2)] * group.n

    neighbours = ListNeighbours([Neighbour("n1", prefers("long"), 0.9)])
    engine = ScoringEngine(ScriptedBackend(script), neighbours)
    out = await engine.score("u", prefers("short"), task("a", "b"), Scaling(2, 1))
    ind, pro = (1 + 1) / (2 + 2), (1 + 1) / (1 + 2)  # 2 ties; 1 win
    assert win_probability(out.samples, 0, 1) == pytest.approx((ind + pro) / 2)
    assert win_probability(out.samples, 0, 1, 1.0, 0.0) == pytest.approx(ind)


def test_calibrated_samples_average_their_mixture_probabilities_in_request_order() -> None:
    # Presented as (b, a): position 0 is candidate 1. Two hypotheses disagree about them.
    utility = Utility(weights=np.array([0.75, 0.25]), values=np.array([[2.0, 0.0], [-1.0, 1.0]]))
    shown = ScoredSample((7.0, 4.0), "unused")
    sample = Sample("ind", "self", shown, order=(1, 0), utility=utility)
    expected = 0.75 * sigmoid(2.0) + 0.25 * sigmoid(-2.0)  # P(candidate 1 beats candidate 0)
    assert win_probability([sample], 1, 0) == pytest.approx(expected)
    assert win_probability([sample], 0, 1) == pytest.approx(1 - expected)
    other = Sample(
        "ind", "self", shown, order=(1, 0), utility=Utility(np.ones(1), np.zeros((1, 2)))
    )
    assert win_probability([sample, other], 1, 0) == pytest.approx((expected + 0.5) / 2)


def test_no_valid_sample_has_no_probability() -> None:
    assert win_probability([], 0, 1) is None
