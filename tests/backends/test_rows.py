"""The planner's and the posterior's all-samples-at-once draws are the per-sample loops' draws.

An Ind-N call's rubrics and posteriors come from one seeded generator, so a batched draw must
give the loop's numbers to the last bit and leave the generator where the loop left it: the
samples drawn after it, and the scores a caller saw yesterday, depend on both."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from service.backends.embedded._rows import dirichlet_rows, in_order
from service.backends.embedded.params import load_params
from service.backends.embedded.rubric import _criteria, _sample_criteria

F64 = npt.NDArray[np.float64]


def _alphas(rng: np.random.Generator) -> F64:
    """Rows of Dirichlet parameters as the callers make them: a concentration times weights
    that sum to one, plus 1e-3; now and then a row whose every entry is tiny."""
    rows, width = int(rng.integers(1, 9)), int(rng.integers(1, 16))
    weights = rng.dirichlet(np.full(width, 0.3), size=rows)
    alpha: F64 = rng.choice([0.5, 20.0, 200.0]) * weights + 1e-3
    if rng.random() < 0.1:
        alpha[int(rng.integers(rows))] = rng.uniform(1e-3, 0.09, width)  # numpy's other road
    return alpha


def test_dirichlet_rows_draw_what_the_loop_draws_and_leave_the_generator_alike() -> None:
    cases = np.random.default_rng(0)
    for seed in range(400):
        alpha = _alphas(cases)
        looped, batched = np.random.default_rng(seed), np.random.default_rng(seed)
        expected = np.stack([looped.dirichlet(row) for row in alpha])
        assert np.array_equal(dirichlet_rows(batched, alpha), expected)
        assert batched.bit_generator.state == looped.bit_generator.state
        assert looped.random() == batched.random()


def test_in_order_adds_term_after_term() -> None:
    terms = np.random.default_rng(1).lognormal(0.0, 3.0, size=(50, 17, 3))
    expected = terms[:, 0]
    for c in range(1, terms.shape[1]):
        expected = expected + terms[:, c]
    assert np.array_equal(in_order(terms), expected)


def _spreads(rng: np.random.Generator, same_live: bool) -> tuple[npt.NDArray[np.bool_], F64]:
    samples, width = int(rng.integers(1, 10)), int(rng.integers(1, 16))
    spread = rng.lognormal(0.0, 2.0, size=(samples, width))
    dead = rng.random(width) < 0.3
    live = np.broadcast_to(~dead, spread.shape).copy()
    if not same_live:
        live &= rng.random(spread.shape) < 0.8
    if rng.random() < 0.1:
        live[:] = False  # nothing the model weighs: neutral rubrics
    if rng.random() < 0.2:
        spread[:, 0] = spread[:, 1 % width]  # exact ties in the shares
    return live, np.where(live, spread, 0.0)


def test_criteria_for_all_samples_are_each_samples_own() -> None:
    cal = load_params().calibration
    cases = np.random.default_rng(2)
    for seed in range(600):
        live, spread = _spreads(cases, same_live=seed % 3 != 0)
        batched, looped = np.random.default_rng(seed), np.random.default_rng(seed)
        rows, raws, lengths = _criteria(live, spread, cal, batched)
        for b in range(len(live)):
            want_rows = np.zeros(cal.max_criteria, np.intp)
            want_raws = np.zeros(cal.max_criteria)
            rng = looped if b else None
            n = _sample_criteria(live[b], spread[b], cal, rng, want_rows, want_raws)
            assert lengths[b] == n
            assert np.array_equal(rows[b], want_rows) and np.array_equal(raws[b], want_raws)
        assert batched.bit_generator.state == looped.bit_generator.state
