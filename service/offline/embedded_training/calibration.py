"""Calibrate how far to trust a short history, on the training users themselves.

Experts are fitted on `train` rows only; then, for each `val` row, a history of k of that
user's `train` rows (k drawn from `HISTORY_SIZES`) is scored through the production inference
(`usermodel.infer`), and the calibration (population prior, weight of the user's own history
model, posterior temperature) with the best `val` accuracy wins. Test rows are never read.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from service.backends.embedded.params import Calibration, EmbeddedParams, Expert
from service.backends.embedded.usermodel import ExpertBank, history_evidence, infer
from service.backends.embedded.views import TextViews

HISTORY_SIZES = (1, 3, 8)
GRID: dict[str, tuple[float, ...]] = {
    "population_bias": (0.0, -2.0, -4.0),
    # The user's own history model keeps a voice: users unlike every training user need it,
    # and val rows (users the experts know) cannot show that.
    "individual_bias": (-2.0, 0.0),
    "temperature": (0.5, 1.0, 2.0),
}


def _views(corpus: Any, texts: npt.NDArray[np.int64]) -> TextViews:
    return TextViews(
        style=corpus.style[texts],
        content=corpus.content[texts],
        wording=sp.csr_matrix(corpus.wording[texts]),
    )


def calibrate(
    corpus: Any,
    fit: Callable[
        [Sequence[tuple[str, str, npt.NDArray[np.int64]]]],
        tuple[tuple[Expert, ...], tuple[Expert, ...]],
    ],
    groups: Sequence[tuple[str, str, npt.NDArray[np.int64]]],
    base: EmbeddedParams,
    *,
    seed: int = 0,
    max_rows: int = 1500,
) -> tuple[Calibration, dict[str, Any]]:
    """The calibration with the best val accuracy, and a report of the search."""
    split = np.array([r.split for r in corpus.rows])
    train_groups = [(label, kind, ix[split[ix] == "train"]) for label, kind, ix in groups]
    train_groups = [g for g in train_groups if g[2].size >= 2]
    experts, identifiers = fit(train_groups)
    bank = ExpertBank(replace(base, experts=experts, identifiers=identifiers))
    pools: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, row in enumerate(corpus.rows):
        if row.split == "train":
            pools[(corpus.dataset[i], row.user_id)].append(i)
    rng = np.random.default_rng(seed)
    val = [
        i
        for i, row in enumerate(corpus.rows)
        if row.split == "val" and len(pools[(corpus.dataset[i], row.user_id)]) >= 1
    ]
    if not val:
        return base.calibration, {"skipped": "no val rows with a train history"}
    val = [int(i) for i in rng.permutation(val)[:max_rows]]
    cases = []
    for n, i in enumerate(val):
        pool = pools[(corpus.dataset[i], corpus.rows[i].user_id)]
        k = min(HISTORY_SIZES[n % len(HISTORY_SIZES)], len(pool))
        hist = rng.choice(pool, size=k, replace=False)
        texts = np.r_[
            corpus.chosen[hist], corpus.rejected[hist], corpus.chosen[i], corpus.rejected[i]
        ]
        views = _views(corpus, texts.astype(np.int64))
        scores = bank.view_scores(views)
        cases.append((views, scores, history_evidence(bank, views, scores, k), k))
    results = []
    for values in itertools.product(*GRID.values()):
        cal = _with(base.calibration, values)
        tuned = bank.with_calibration(cal)
        correct = 0
        for views, scores, evidence, k in cases:
            model = infer(tuned, views, scores, evidence, np.ones(k, np.int64))
            utility = np.sum(list(model.contributions.values()), axis=0)
            correct += int(utility[2 * k] > utility[2 * k + 1])
        results.append((correct / len(cases), values))
    default = tuple(getattr(base.calibration, name) for name in GRID)
    best_accuracy = max(acc for acc, _ in results)
    # Among the best, prefer the default, so noise alone does not move the calibration.
    best = next((v for a, v in results if a == best_accuracy and v == default), None) or next(
        v for a, v in results if a == best_accuracy
    )
    report = {
        "val_rows": len(cases),
        "history_sizes": list(HISTORY_SIZES),
        "best": dict(zip(GRID, best, strict=True)),
        "best_val_accuracy": round(best_accuracy, 4),
        "default_val_accuracy": round(next(a for a, v in results if v == default), 4),
    }
    return _with(base.calibration, best), report


def _with(calibration: Calibration, values: tuple[float, ...]) -> Calibration:
    population_bias, individual_bias, temperature = values
    return replace(
        calibration,
        population_bias=population_bias,
        individual_bias=individual_bias,
        temperature=temperature,
    )
