"""Per-row numpy calls done for every row at once, with the per-row calls' exact arithmetic.

An Ind-8 call plans eight rubrics: as a loop of one `Generator.dirichlet` per sample that was
much of the planner's time. `dirichlet_rows` makes the same draws, to the bit, in one call, and
leaves the generator where the loop would, so whatever is drawn after it is unchanged too;
tests/backends/test_rows.py checks it against the loop.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


def in_order(terms: F64) -> F64:
    """The sum over axis 1, term after term as Python's `sum` adds (numpy's own `sum` pairs
    terms up, which rounds differently from a reader's running sum; `accumulate` does not)."""
    total: F64 = np.add.accumulate(terms, axis=1)[:, -1]
    return total


def dirichlet_rows(rng: np.random.Generator, alpha: F64) -> F64:
    """`rng.dirichlet(row)` for each row of `alpha` in turn. numpy draws a gamma variate per
    entry, adds them in order and scales by the reciprocal of the sum; one `standard_gamma`
    over the whole matrix draws the same variates in the same order. numpy takes another road
    when every entry of a row is below 0.1: then the loop runs."""
    if not alpha.size or (np.maximum.reduce(alpha, axis=1) < 0.1).any():
        return np.stack([rng.dirichlet(row) for row in alpha]) if len(alpha) else alpha.copy()
    gammas = rng.standard_gamma(alpha)
    scale = 1.0 / in_order(gammas)
    out: F64 = gammas * scale[:, None]
    return out
