"""Calibrate how far to trust a short history, on the training users themselves.

Experts are fitted on `train` rows only; then every `val` row is scored through the production
inference (`usermodel.infer`) twice: with a history of k of that user's `train` rows (k drawn
from `HISTORY_SIZES`) and with none. Among the calibrations (population prior, weight of the
user's own history model, posterior temperature) under which a history never costs more than
`TOLERANCE` of val accuracy against no history, in any dataset, the one with the best mean of the
datasets' val accuracies wins. So a population whose histories do not separate its users (real
crowds mostly agree) keeps the population's scores, and one whose users differ is personalised:
how far a history moves the score is learnt where it can be measured. Test rows are never read.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from service.backends.embedded.feedback import emphasis
from service.backends.embedded.params import Calibration, EmbeddedParams, Expert
from service.backends.embedded.usermodel import ExpertBank, history_evidence, infer
from service.backends.embedded.views import TextViews

HISTORY_SIZES = (1, 3, 8)
TOLERANCE = 0.005  # a history may cost at most this much val accuracy, per dataset
FEEDBACK_GAINS = (0.0, 0.5, 1.0, 2.0, 4.0)
GRID: dict[str, tuple[float, ...]] = {
    "population_bias": (-2.0, 0.0, 2.0, 4.0, 6.0, 8.0),
    "individual_bias": (-4.0, -2.0, 0.0),
    "temperature": (0.25, 0.5, 1.0),
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
    max_rows: int = 3000,
) -> tuple[Calibration, dict[str, Any]]:
    """The safe calibration with the best val accuracy, and a report of the search."""
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
    cases: list[_Case] = []
    for n, i in enumerate(val):
        pool = pools[(corpus.dataset[i], corpus.rows[i].user_id)]
        k = min(HISTORY_SIZES[n % len(HISTORY_SIZES)], len(pool))
        hist = rng.choice(pool, size=k, replace=False)
        pair = np.r_[corpus.chosen[i], corpus.rejected[i]]
        for kk, texts in ((k, np.r_[corpus.chosen[hist], corpus.rejected[hist], pair]), (0, pair)):
            views = _views(corpus, texts.astype(np.int64))
            scores = bank.view_scores(views)
            evidence = history_evidence(bank, views, scores, kk)
            reasons = [corpus.rows[h].feedback for h in hist] if kk else []
            cases.append(_Case(corpus.dataset[i], kk, views, scores, evidence, emphasis(reasons)))
    results = [
        _judge(bank, cases, values, _with(base.calibration, values))
        for values in itertools.product(*GRID.values())
    ]
    default = tuple(getattr(base.calibration, name) for name in GRID)
    safe = [r for r in results if r.worst_cost <= TOLERANCE]
    # Among the best, prefer the default, so noise alone does not move the calibration; with
    # no safe calibration, the one whose history costs least.
    pool_ = safe or [min(results, key=lambda r: r.worst_cost)]
    best_score = max(r.score for r in pool_)
    best = next((r for r in pool_ if r.score == best_score and r.values == default), None) or next(
        r for r in pool_ if r.score == best_score
    )
    chosen = _with(base.calibration, best.values)
    # Then how much the criteria named in users' reasons gain, under the same rule.
    gains = [_judge(bank, cases, (g,), replace(chosen, feedback_gain=g)) for g in FEEDBACK_GAINS]
    safe_gains = [g for g in gains if g.worst_cost <= max(TOLERANCE, best.worst_cost)]
    gain = max(safe_gains or gains[:1], key=lambda g: (g.score, -g.values[0]))
    report = {
        "val_rows": len(val),
        "history_sizes": list(HISTORY_SIZES),
        "tolerance": TOLERANCE,
        "candidates": len(results),
        "safe_candidates": len(safe),
        "best": dict(zip(GRID, best.values, strict=True)),
        "best_val_accuracy": {d: round(a, 4) for d, a in best.with_history.items()},
        "best_val_accuracy_no_history": {d: round(a, 4) for d, a in best.without.items()},
        "feedback_gain": gain.values[0],
        "val_accuracy_by_feedback_gain": {
            str(g.values[0]): {d: round(a, 4) for d, a in g.with_history.items()} for g in gains
        },
    }
    return replace(chosen, feedback_gain=gain.values[0]), report


@dataclass(frozen=True)
class _Case:
    dataset: str
    k: int
    views: TextViews
    scores: dict[str, Any]
    evidence: Any
    emphasis: npt.NDArray[np.float64]  # what the history's reasons name


@dataclass(frozen=True)
class _Result:
    values: tuple[float, ...]
    with_history: dict[str, float]  # dataset -> val accuracy with a history
    without: dict[str, float]  # dataset -> val accuracy with none

    @property
    def score(self) -> float:
        return float(np.mean(list(self.with_history.values())))

    @property
    def worst_cost(self) -> float:
        """The most val accuracy a history costs in any dataset (negative: it helps)."""
        return max(self.without[d] - a for d, a in self.with_history.items())


def _judge(
    bank: ExpertBank, cases: list[_Case], values: tuple[float, ...], calibration: Calibration
) -> _Result:
    tuned = bank.with_calibration(calibration)
    right: dict[tuple[str, bool], list[int]] = defaultdict(list)
    for case in cases:
        counts = np.ones(case.k, np.int64)
        model = infer(tuned, case.views, case.scores, case.evidence, counts, None, case.emphasis)
        utility = np.sum(list(model.contributions.values()), axis=0)
        right[(case.dataset, case.k > 0)].append(int(utility[2 * case.k] > utility[2 * case.k + 1]))
    datasets = sorted({d for d, _ in right})
    return _Result(
        values,
        {d: float(np.mean(right[(d, True)] or [0])) for d in datasets},
        {d: float(np.mean(right[(d, False)] or [0])) for d in datasets},
    )


def _with(calibration: Calibration, values: tuple[float, ...]) -> Calibration:
    population_bias, individual_bias, temperature = values
    return replace(
        calibration,
        population_bias=population_bias,
        individual_bias=individual_bias,
        temperature=temperature,
    )
