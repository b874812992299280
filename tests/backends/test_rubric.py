"""The rubric's one-pass arithmetic gives the numbers of the per-sample functions it replaced.

`Rubrics.overall` must equal what a parser reads back from each written chain
(`render.final_scores`), and `rounded_percents` what `render.rounded_weights` gives, to the last
bit: the chain's text states both."""

from __future__ import annotations

import numpy as np
import pytest

from service.backends.embedded.rubric import Rubrics, rounded_percents
from service.engine.render import final_scores, rounded_weights

WIDTH = 10


def _rows(rng: np.random.Generator, samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Padded rows of positive weights of every shape the planner makes: none (a neutral
    rubric), one, ties, near-zero Dirichlet draws, a full row."""
    lengths = rng.integers(0, WIDTH + 1, samples)
    raw = np.zeros((samples, WIDTH))
    for b, n in enumerate(lengths):
        kind = rng.integers(4)
        if n == 0:
            continue
        if kind == 0:  # ties: the remainders' order decides which percents round up
            raw[b, :n] = 1.0
        elif kind == 1:
            raw[b, :n] = rng.dirichlet(np.full(n, 0.01)) + 1e-300
        else:
            raw[b, :n] = rng.gamma(1.0 + 20 * kind, size=n)
    return raw, lengths


def test_rounded_percents_are_rounded_weights_row_by_row() -> None:
    rng = np.random.default_rng(0)
    for _ in range(500):
        raw, lengths = _rows(rng, int(rng.integers(1, 17)))
        percents = rounded_percents(raw, lengths)
        for b, n in enumerate(lengths):
            expected = rounded_weights(raw[b, :n].tolist()) if n else []
            assert percents[b, :n].tolist() == expected
            assert not percents[b, n:].any()  # padding is never shown


@pytest.mark.parametrize("candidates", [1, 2, 5])
def test_overall_is_final_scores_of_each_written_rubric(candidates: int) -> None:
    rng = np.random.default_rng(candidates)
    keys = [f"criterion-{i}" for i in range(14)]
    for _ in range(200):
        samples = int(rng.integers(1, 17))
        raw, lengths = _rows(rng, samples)
        rows = np.stack([rng.permutation(len(keys))[:WIDTH] for _ in range(samples)])
        z = rng.normal(size=(samples, len(keys), candidates))
        scores = np.clip(5.5 + 1.5 * z, 1.0, 10.0).round(1)
        signs = rng.choice([-1.0, 1.0], size=(samples, len(keys)))
        rubrics = Rubrics(keys, rows, rounded_percents(raw, lengths), signs, scores, z)
        overall = rubrics.overall()
        assert len(overall) == len(rubrics) == samples
        for b in range(samples):
            criteria = rubrics.criteria(b)
            assert sum(c.weight for c in criteria) == 100
            assert all(c.weight > 0 for c in criteria)
            expected = final_scores(
                [c.scores.tolist() for c in criteria], [c.weight for c in criteria]
            )
            assert overall[b] == expected  # exactly: the chain's "Final Score" line says it


def test_a_rubric_of_nothing_is_one_neutral_criterion_at_5_5() -> None:
    rubrics = Rubrics(
        ["a"],
        np.zeros((1, WIDTH), np.intp),
        np.zeros((1, WIDTH), np.int64),
        np.ones((1, 1)),
        np.full((1, 1, 2), 9.0),
        np.zeros((1, 1, 2)),
    )
    [criterion] = rubrics.criteria(0)
    assert (criterion.key, criterion.weight, criterion.scores.tolist()) == (
        "neutral",
        100,
        [5.5] * 2,
    )
    assert rubrics.overall() == [(5.5, 5.5)]
