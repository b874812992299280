"""Calibrate how far to trust a short history, on the training users themselves.

The rows are split the way test rows differ from a user's history (`held_out`): a third of each
dataset's debates (`topic`) where rows name them, else a third of its prompts, all of their
rows, as the test split holds out debates or prompts. (Holding out only the `val` rows left
hh_rlhf_relabeled 409 rows, about 136 per history size: too few to tell its calibrations
apart.) Experts are fitted on the rest only; then every held-out row is scored through the
production inference (`usermodel.infer`) twice: with a history of k of that user's other rows
(k drawn from `HISTORY_SIZES`) and with none. Among the calibrations (population prior, weight
of the user's own history model, posterior temperature) under which a history of any size
never costs more than `TOLERANCE` of held-out accuracy against no history, in any dataset, the
one with the best mean of the datasets' accuracies wins; then each dataset picks its own trust
under the same rule on its own rows. So a population whose histories do not separate its users
(real crowds mostly agree) keeps the population's scores, and one whose users differ is
personalised: how far a history moves the score is learnt where it can be measured. Test rows
are never read.
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
TOLERANCE = 0.005  # a history may cost at most this much accuracy, per dataset and size
HELD_GROUPS = 1 / 3  # of a dataset's debates or prompts, held out to calibrate on (at least one)
MAX_ROWS_PER_DATASET = 1500
FEEDBACK_GAINS = (0.0, 0.5, 1.0, 2.0, 4.0)
GRID: dict[str, tuple[float, ...]] = {
    "population_bias": (-2.0, 0.0, 2.0, 4.0, 6.0, 8.0),
    "individual_bias": (-4.0, -2.0, 0.0),
    # 0 ignores the history's likelihoods: the scores stay the population's.
    "temperature": (0.0, 0.25, 0.5, 1.0, 2.0, 4.0),
}


def _views(corpus: Any, texts: npt.NDArray[np.int64]) -> TextViews:
    return TextViews(
        style=corpus.style[texts],
        content=corpus.content[texts],
        wording=sp.csr_matrix(corpus.wording[texts]),
    )


def held_out(corpus: Any, seed: int = 0) -> npt.NDArray[np.bool_]:
    """Per row: held out to calibrate on (True) or fitted on. A third of each dataset's groups
    are held out whole: its debates where every row names one (`topic`), else its prompts
    (every user's row on a held-out prompt). A dataset with fewer than two groups holds out
    its `val` rows."""
    rng = np.random.default_rng(seed)
    held = np.array([row.split == "val" for row in corpus.rows])
    for dataset in dict.fromkeys(corpus.dataset):
        mine = [i for i, d in enumerate(corpus.dataset) if d == dataset]
        topics = [corpus.rows[i].extras.get("topic") for i in mine]
        if all(t is not None for t in topics):
            group = [str(t) for t in topics]
        else:
            group = [corpus.rows[i].as_pair().prompt for i in mine]
        named = sorted(set(group))
        if len(named) < 2:
            continue
        chosen = set(rng.permutation(named)[: max(1, round(HELD_GROUPS * len(named)))])
        for i, g in zip(mine, group, strict=True):
            held[i] = g in chosen
    return held


def calibrate(
    corpus: Any,
    fit: Callable[
        [Sequence[tuple[str, str, npt.NDArray[np.int64]]]],
        tuple[tuple[Expert, ...], tuple[Expert, ...]],
    ],
    groups_for: Callable[[npt.NDArray[np.bool_]], Sequence[tuple[str, str, npt.NDArray[np.int64]]]],
    base: EmbeddedParams,
    *,
    seed: int = 0,
) -> tuple[Calibration, dict[str, Any]]:
    """The safe calibration with the best held-out accuracy, and a report of the search.

    `groups_for(rows)` gives the experts' row groups over those rows only (users clustered
    again without the held-out rows, so no expert has seen them)."""
    held = held_out(corpus, seed)
    groups = [g for g in groups_for(~held) if g[2].size >= 2]
    experts, identifiers = fit(groups)
    bank = ExpertBank(replace(base, experts=experts, identifiers=identifiers))
    pools: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, row in enumerate(corpus.rows):
        if not held[i]:
            pools[(corpus.dataset[i], row.user_id)].append(i)
    rng = np.random.default_rng(seed)
    candidates: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(corpus.rows):
        if held[i] and pools[(corpus.dataset[i], row.user_id)]:
            candidates[corpus.dataset[i]].append(i)
    if not candidates:
        return base.calibration, {"skipped": "no held-out rows with a history"}
    val = [
        int(i) for rows in candidates.values() for i in rng.permutation(rows)[:MAX_ROWS_PER_DATASET]
    ]
    cases: list[_Case] = []
    for i in val:
        # Each row with a history of every size (as many of the user's other pairs as there
        # are, up to it), each counted for the size whose trust serves it; its no-history twin
        # once, for all of them. Paired per size, on all the rows.
        pool = pools[(corpus.dataset[i], corpus.rows[i].user_id)]
        histories: dict[int, npt.NDArray[np.int64]] = {}
        for size in HISTORY_SIZES:
            k = min(size, len(pool))
            served = max(s for s in HISTORY_SIZES if s <= k)
            histories.setdefault(served, rng.choice(pool, size=k, replace=False))
        for served, hist in histories.items():
            cases.append(_case(corpus, bank, i, hist, (served,)))
        cases.append(_case(corpus, bank, i, np.zeros(0, np.int64), tuple(histories)))
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
    # Then each dataset's own trust in a history, its population prior included (it weighs the
    # population experts once a history is given; a call without one is scored by `best`), under
    # the same rule on its own rows: each history is held to the no-history score as served.
    # Per history size too: one pair may be safe to trust less than eight (hh_rlhf_relabeled's
    # held-out rows: at 1 pair every informative trust cost 1-2 points, at 8 it gained 5-9).
    cells = sorted({(d, s) for d, s, given in best.by_size if given})
    own = {(d, s): _pick(results, d, best, s) for d, s in cells}
    chosen = replace(
        _with(base.calibration, best.values),
        by_population=tuple((d, s, *_trust_values(r)) for (d, s), r in own.items()),
    )
    mixed = _judge(bank, cases, best.values, chosen)
    # Then how much the criteria named in users' reasons gain, under the same rule.
    gains = [_judge(bank, cases, (g,), replace(chosen, feedback_gain=g)) for g in FEEDBACK_GAINS]
    safe_gains = [g for g in gains if g.worst_cost <= max(TOLERANCE, mixed.worst_cost)]
    gain = max(safe_gains or gains[:1], key=lambda g: (g.score, -g.values[0]))
    report = {
        "held_out_rows": {d: len(rows) for d, rows in candidates.items()},
        "cases": len(val),
        "history_sizes": list(HISTORY_SIZES),
        "tolerance": TOLERANCE,
        "candidates": len(results),
        "safe_candidates": len(safe),
        "best": dict(zip(GRID, best.values, strict=True)),
        "best_worst_cost": round(best.worst_cost, 4),
        "best_accuracy": {d: round(a, 4) for d, a in best.with_history.items()},
        "best_accuracy_no_history": {d: round(a, 4) for d, a in best.without.items()},
        "best_cost_by_history_size": {f"{d}@{k}": round(c, 4) for (d, k), c in best.costs.items()},
        "by_population": {
            f"{d}@{s}": dict(zip(GRID, r.values, strict=True)) for (d, s), r in own.items()
        },
        "by_population_accuracy": {d: round(a, 4) for d, a in mixed.with_history.items()},
        "by_population_cost_by_history_size": {
            f"{d}@{k}": round(c, 4) for (d, k), c in mixed.costs.items()
        },
        "feedback_gain": gain.values[0],
        "accuracy_by_feedback_gain": {
            str(g.values[0]): {d: round(a, 4) for d, a in g.with_history.items()} for g in gains
        },
    }
    return replace(chosen, feedback_gain=gain.values[0]), report


def _case(
    corpus: Any, bank: ExpertBank, row: int, hist: npt.NDArray[np.int64], sizes: tuple[int, ...]
) -> _Case:
    """Held-out row `row` with the history rows `hist` (none: its no-history twin)."""
    pair = np.r_[corpus.chosen[row], corpus.rejected[row]]
    texts = np.r_[corpus.chosen[hist], corpus.rejected[hist], pair].astype(np.int64)
    views = _views(corpus, texts)
    scores = bank.view_scores(views)
    evidence = history_evidence(bank, views, scores, hist.size)
    reasons = emphasis([corpus.rows[h].feedback for h in hist])
    return _Case(corpus.dataset[row], sizes, hist.size, views, scores, evidence, reasons)


def _pick(results: Sequence[_Result], dataset: str, baseline: _Result, size: int) -> _Result:
    """The setting with the best accuracy on `dataset`'s histories of `size` among those under
    which such a history costs at most TOLERANCE against `baseline`'s no-history accuracy of
    the same rows; with none, the one that costs least."""

    def cost(r: _Result) -> float:
        return r.costs_against(baseline)[(dataset, size)]

    def accuracy(r: _Result) -> float:
        return r.by_size[(dataset, size, True)]

    safe = [r for r in results if cost(r) <= TOLERANCE]
    if safe:
        return max(safe, key=accuracy)
    return min(results, key=lambda r: (cost(r), -accuracy(r)))


@dataclass(frozen=True)
class _Case:
    dataset: str
    sizes: tuple[int, ...]  # the HISTORY_SIZES it is counted for (its no-history twin: all)
    k: int  # the history given, or 0 for its no-history twin
    views: TextViews
    scores: dict[str, Any]
    evidence: Any
    emphasis: npt.NDArray[np.float64]  # what the history's reasons name


@dataclass(frozen=True)
class _Result:
    values: tuple[float, ...]
    with_history: dict[str, float]  # dataset -> held-out accuracy with a history
    without: dict[str, float]  # dataset -> held-out accuracy with none
    by_size: dict[tuple[str, int, bool], float]  # (dataset, size, history given) -> accuracy

    def costs_against(self, baseline: _Result) -> dict[tuple[str, int], float]:
        """(dataset, size) -> the accuracy a history of that size costs against `baseline`'s
        score of the same rows without it (negative: it helps)."""
        return {
            (d, s): baseline.by_size[(d, s, False)] - accuracy
            for (d, s, given), accuracy in self.by_size.items()
            if given
        }

    @property
    def costs(self) -> dict[tuple[str, int], float]:
        return self.costs_against(self)

    @property
    def score(self) -> float:
        return float(np.mean(list(self.with_history.values())))

    @property
    def worst_cost(self) -> float:
        """The most accuracy a history of any one size costs in any dataset (negative: it
        helps), each measured on the same rows with and without it."""
        return max(self.costs.values())


def _judge(
    bank: ExpertBank, cases: list[_Case], values: tuple[float, ...], calibration: Calibration
) -> _Result:
    tuned = bank.with_calibration(calibration)
    right: dict[tuple[str, int, bool], list[int]] = defaultdict(list)
    for case in cases:
        counts = np.ones((1, case.k), np.int64)
        model = infer(tuned, case.views, case.scores, case.evidence, counts, None, case.emphasis)
        utility = model.parts[0].sum(axis=0)
        won = int(utility[2 * case.k] > utility[2 * case.k + 1])
        for size in case.sizes:
            right[(case.dataset, size, case.k > 0)].append(won)
    datasets = sorted({d for d, _, _ in right})

    def mean(given: bool, dataset: str) -> float:
        hits = [x for (d, _, g), v in right.items() if d == dataset and g == given for x in v]
        return float(np.mean(hits or [0]))

    return _Result(
        values,
        {d: mean(True, d) for d in datasets},
        {d: mean(False, d) for d in datasets},
        {key: float(np.mean(hits)) for key, hits in right.items()},
    )


def _trust_values(result: _Result) -> tuple[float, float, float]:
    population_bias, individual_bias, temperature = result.values
    return population_bias, individual_bias, temperature


def _with(calibration: Calibration, values: tuple[float, ...]) -> Calibration:
    population_bias, individual_bias, temperature = values
    return replace(
        calibration,
        population_bias=population_bias,
        individual_bias=individual_bias,
        temperature=temperature,
    )
